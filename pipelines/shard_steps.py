"""Pipeline pieces of a monitoring job run over N instances: list, summarise, merge.

The three steps (monitoring/shards.py has the job side):

    List<Job>Window (1 instance, network): the window's files -> <run>/shards/capture.manifest,
        window.json (and the drift job's baseline copy)
    Summarise<Job> (N instances, network isolated): the manifest, ShardedByS3Key, downloaded
        to each instance -> <run>/shards/summaries/summary-<host>.json
    the job's own step (1 instance, network): every summary -> the report and metrics

Scratch files live under the run's report prefix (``<report prefix>/<execution id>/shards``),
which the job roles already write; summarise and merge wait for the step before them
explicitly, since their inputs are S3 URIs of the execution, not step properties.
"""

from __future__ import annotations

from typing import Any

from pipelines import sdk
from pipelines.spec import PROCESSING_ROOT

with sdk.sdk_environment():
    from sagemaker.core.shapes import ProcessingInput, ProcessingS3Input
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join

SHARDS_FOLDER = "shards"
MANIFEST_NAME = "capture.manifest"
WINDOW_NAME = "window.json"  # monitoring.shards.WINDOW_FILE
SUMMARIES_FOLDER = "summaries"
BASELINE_FOLDER = "baseline"  # monitoring.drift_shards.BASELINE_FOLDER
CAPTURE_DIR = f"{PROCESSING_ROOT}/input/capture"
WINDOW_DIR = f"{PROCESSING_ROOT}/input/window"
BASELINE_DIR = f"{PROCESSING_ROOT}/input/baseline"
SUMMARIES_INPUT_DIR = f"{PROCESSING_ROOT}/input/summaries"
SUMMARIES_OUTPUT_DIR = f"{PROCESSING_ROOT}/output/summaries"


def run_uri(report_prefix: str, *parts: str) -> Any:
    """``<report prefix>/<execution id>/shards/<parts>``: this execution's scratch files."""
    return Join(
        on="/",
        values=[report_prefix, ExecutionVariables.PIPELINE_EXECUTION_ID, SHARDS_FOLDER, *parts],
    )


def manifest_input(name: str, manifest_uri: Any, local_path: str, *, sharded: bool) -> Any:
    """A ManifestFile input: the objects it lists, each instance's share when ``sharded``.

    ShardedByS3Key gives each of N instances about 1/N of the objects; with fewer objects
    than instances some get none (SageMaker API reference, S3DataSource /
    S3DataDistributionType), which the summarise modes accept.
    """
    return ProcessingInput(
        input_name=name,
        s3_input=ProcessingS3Input(
            s3_uri=manifest_uri,
            local_path=local_path,
            s3_data_type="ManifestFile",
            s3_input_mode="File",
            s3_data_distribution_type="ShardedByS3Key" if sharded else "FullyReplicated",
        ),
    )


def scaled(processor: Any, instance_count: int) -> Any:
    """``processor`` on ``instance_count`` instances (pipelines.processing builds one)."""
    processor.instance_count = instance_count
    return processor
