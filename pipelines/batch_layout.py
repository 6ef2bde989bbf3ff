"""The batch pipeline's parameters and output layout, without the SageMaker SDK.

What ``mlops batch --stack`` needs to start a run and find its results, kept apart from
pipelines/batch_pipeline.py so the CLI does not import the SDK to read three names.

    <OutputUri>/<execution id>/transform/    the transform job's <input>.out files
    <OutputUri>/<execution id>/predictions/  scored rows (bad rows "errors" only)
    <OutputUri>/<execution id>/errors/       bad rows, and summary.json (ditto)
"""

from __future__ import annotations

from typing import Final

INPUT_URI: Final = "InputUri"
OUTPUT_URI: Final = "OutputUri"
TRANSFORM_FOLDER: Final = "transform"
PREDICTIONS_FOLDER: Final = "predictions"
ERRORS_FOLDER: Final = "errors"
