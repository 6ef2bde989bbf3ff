"""What a batch transform job and the model's handler agree on: formats, filters, bad rows.

Pure constants and tiny pure functions, shared by the runtime (inference/handler.py in its
batch mode, inference/batch.py, inference/batch_split.py) and the infrastructure that
declares the job (pipelines/batch_pipeline.py, the stack's component). Nothing here imports
anything but the standard library, so the split job's bundle and the plan can both use it.

Sources (AWS SageMaker Developer Guide):

- "Associate Prediction Results with Input Records" (batch-transform-data-processing):
  InputFilter / JoinSource / OutputFilter; for CSV "each row is taken as a JSON array, so
  only index based JSONPaths can be applied, e.g. $[0], $[1:]"; negative indexes are
  supported ("A -1 index refers to the last element"); with JoinSource "Input" a CSV
  output row is "the joined input data ... followed by the transformed data", and a JSON
  lines output record is the input object with the handler's answer under
  ``SageMakerOutput``; text/csv needs SplitType and AssembleWith "Line"; CSV may not embed
  newlines.
- "Capture data from batch transform job" (model-monitor-data-capture-batch): the capture
  layout and GenerateInferenceId (see CAPTURE_* below).
- CreateTransformJob (API reference): BatchStrategy MultiRecord, MaxPayloadInMB (0 to 100;
  MaxPayloadInMB x MaxConcurrentTransforms may not exceed 100 MB), Environment (variables
  set in the model's container: how MLOPS_BAD_ROWS reaches the handler).
- "Use Batch Transform" (batch-transform): one ``<input object>.out`` per input object under
  S3OutputPath, records in the input's order.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

# --- formats ----------------------------------------------------------------------------------

CSV: Final = "text/csv"
JSON_LINES: Final = "application/jsonlines"
CONTENT_TYPES: Final = (CSV, JSON_LINES)

# CSV input: no header; column 0 a record id (any text without commas, quotes or newlines),
# then the model's features in training order (manifest.json: categorical, then numeric),
# e.g. ``c-0001,KS,415,no,yes,128,25,265.1,...``.
#
# JSON lines input: one object per line, the id beside the features, e.g.
# ``{"id": "c-0001", "features": {"state": "KS", "area_code": "415", ...}}``. The id is any
# JSON string or number; "SageMakerOutput" is reserved by SageMaker for the join.
ID_FIELD: Final = "id"
FEATURES_FIELD: Final = "features"
JOIN_FIELD: Final = "SageMakerOutput"  # where JoinSource "Input" puts the answer (JSON)

# --- what the handler answers per row, in batch mode --------------------------------------

# One output line per input line, always, so SageMaker's join pairs them up. CSV: these
# columns; ``error`` is empty for a scored row, ``label`` and both probabilities are empty
# for a bad row. ``detail`` never holds commas, quotes or newlines (see safe_detail), so
# the row stays plain RFC 4180 CSV for SageMaker's join and OutputFilter.
CSV_OUTPUT_COLUMNS: Final = ("label", "probability_negative", "probability_positive", "error",
                             "detail")  # fmt: skip
# JSON lines: {"label": "yes", "probabilities": {"no": 0.1, "yes": 0.9}, "error": null}
# or, for a bad row, {"label": null, "probabilities": null, "error": "<reason>",
# "detail": "<what is wrong>"}.
JSON_OUTPUT_KEYS: Final = ("label", "probabilities", "error", "detail")

# --- DataProcessing (CreateTransformJob), per input format -----------------------------------

SPLIT_TYPE: Final = "Line"
BATCH_STRATEGY: Final = "MultiRecord"
ASSEMBLE_WITH: Final = "Line"
JOIN_SOURCE: Final = "Input"
# CSV: drop the id column before the model; keep the id and the handler's five columns,
# counted from the end so the filter does not depend on the model's feature count.
CSV_INPUT_FILTER: Final = "$[1:]"
CSV_OUTPUT_FILTER: Final = "$[0,-5,-4,-3,-2,-1]"
# JSON lines: the model sees only the features object; the output keeps the id and answer.
JSON_INPUT_FILTER: Final = "$.features"
JSON_OUTPUT_FILTER: Final = "$['id','SageMakerOutput']"
# Largest mini-batch SageMaker sends (MB = 2**20 bytes here, the local runner's reading);
# one record larger than this fails the job. The API allows 0 to 100.
DEFAULT_MAX_PAYLOAD_MB: Final = 6
MAX_PAYLOAD_MB_LIMIT: Final = 100
# What the transform job writes: S3OutputPath/<input key relative to the input prefix>.out
OUTPUT_SUFFIX: Final = ".out"


def data_processing(content_type: str) -> dict[str, str]:
    """CreateTransformJob's DataProcessing for the input format (botocore shape names)."""
    if content_type == CSV:
        return {"InputFilter": CSV_INPUT_FILTER, "JoinSource": JOIN_SOURCE,
                "OutputFilter": CSV_OUTPUT_FILTER}  # fmt: skip
    if content_type == JSON_LINES:
        return {"InputFilter": JSON_INPUT_FILTER, "JoinSource": JOIN_SOURCE,
                "OutputFilter": JSON_OUTPUT_FILTER}  # fmt: skip
    raise ValueError(f"content type {content_type!r} is not one of {', '.join(CONTENT_TYPES)}")


def accept(content_type: str) -> str:
    """TransformOutput.Accept: the handler answers in the input's format (the join needs it)."""
    data_processing(content_type)  # refuses an unknown type
    return content_type


# --- bad rows ---------------------------------------------------------------------------------

# Set in the model container by the transform job (CreateTransformJob Environment). Unset, the
# handler is an endpoint's, unchanged. Set, the handler is in batch mode: it takes one record
# per line (text/csv, application/jsonlines) and answers one line per record.
BAD_ROWS_ENV: Final = "MLOPS_BAD_ROWS"


class BadRows(StrEnum):
    # The mini-batch is refused with a 400 whose message names the bad line within it
    # ("line 3 of the mini-batch: ...") and its reason; SageMaker fails the job and its
    # data log names the input object. Nothing is written for that object.
    FAIL = "fail"
    # Every line is answered; a bad one with empty predictions, an error reason and a
    # detail. The split step (batch_split.py) then parts predictions from errors.
    ERRORS = "errors"


def bad_rows_mode(value: str | None) -> BadRows | None:
    """The handler's mode from MLOPS_BAD_ROWS: None (endpoint) when unset or empty."""
    if not value:
        return None
    try:
        return BadRows(value.strip().lower())
    except ValueError:
        raise ValueError(
            f"{BAD_ROWS_ENV}={value!r} is not one of {', '.join(m.value for m in BadRows)}"
        ) from None


# Reasons a row is bad; the error column and the summary count rows under these.
EMPTY_LINE: Final = "empty_line"
NOT_UTF8: Final = "not_utf8"
BAD_CSV: Final = "bad_csv"  # a quote the csv module cannot parse
WRONG_COLUMN_COUNT: Final = "wrong_column_count"
BAD_JSON: Final = "bad_json"  # the line is not JSON
BAD_SHAPE: Final = "bad_shape"  # JSON, but not an object (or features not an object)
UNKNOWN_COLUMN: Final = "unknown_column"
MISSING_COLUMN: Final = "missing_column"
MISSING_VALUE: Final = "missing_value"  # empty, or JSON null
NOT_A_NUMBER: Final = "not_a_number"
NOT_FINITE: Final = "not_finite"  # NaN or infinity
NOT_TEXT: Final = "not_text"  # a categorical JSON value that is not a string
REASONS: Final = (EMPTY_LINE, NOT_UTF8, BAD_CSV, WRONG_COLUMN_COUNT, BAD_JSON, BAD_SHAPE,
                  UNKNOWN_COLUMN, MISSING_COLUMN, MISSING_VALUE, NOT_A_NUMBER, NOT_FINITE,
                  NOT_TEXT)  # fmt: skip
# A category the model never saw is not an error: its encoder ignores it (all-zero one-hot,
# training/features.py), as the endpoint does.


def safe_detail(text: str, limit: int = 200) -> str:
    """``text`` fit for the CSV detail column: no delimiter, quote or line break, bounded."""
    cleaned = text.replace(",", ";").replace('"', "'").replace("\r", " ").replace("\n", " ")
    return cleaned[:limit]


# --- the split step ---------------------------------------------------------------------------

# Written by inference/batch_split.py (and inference/batch.py locally): scored rows under the
# predictions prefix (<name>.out, the transform output minus the error columns), bad rows
# under the errors prefix (<name>.errors.jsonl: {"file", "line", "id", "error", "detail"})
# and the run's summary next to them.
ERRORS_SUFFIX: Final = ".errors.jsonl"
SUMMARY_FILE: Final = "summary.json"
SPLIT_SCRIPT: Final = "batch_split.py"  # python3 bundle_runner.py batch_split.py --input ...

# --- batch capture (DataCaptureConfig of CreateTransformJob) ----------------------------------

# SageMaker writes manifests, not capture records: under DestinationS3Uri, "input/" and
# "output/", each below a yyyy/mm/dd/hh prefix of the job's start (UTC); a manifest is a
# JSON array ``[{"prefix": "s3://<input prefix>/"}, "a.csv", "b.csv", ...]`` naming the
# objects the job read (input) or wrote (output). Model Monitor then reads those objects
# with the monitoring job's DatasetFormat (BatchTransformInput). monitoring/batch_capture.py
# expands them the same way for the kit's drift and quality jobs.
CAPTURE_INPUT: Final = "input"
CAPTURE_OUTPUT: Final = "output"
CAPTURE_HOUR_FORMAT: Final = "%Y/%m/%d/%H"
MANIFEST_PREFIX_KEY: Final = "prefix"
# GenerateInferenceId appends an inference id and time to every output record; the records
# here carry their own ids (ground truth joins on them), and where the two extra columns
# land relative to OutputFilter's negative indexes is not documented: leave it off.
GENERATE_INFERENCE_ID: Final = False
