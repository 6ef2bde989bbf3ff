"""``mlops batch --stack``: run the stack's batch pipeline over an S3 prefix, to its end.

Starts ``<prefix>-batch`` (infra/components/batch_pipeline.py) with InputUri and OutputUri,
follows it with pipelines/runner.py, and reads the split step's summary.json. Clients are
injected (the CLI passes the stack session's), so tests drive it with a scripted fake:
moto has no ListPipelineExecutionSteps.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from inference import batch_contract as contract
from infra.naming import BATCH_OUTPUT_PREFIX
from pipelines import batch_layout as layout
from pipelines.runner import PipelineRunner
from training import uri


class BatchStackError(Exception):
    """The run cannot start as asked; the message says why and what to pass instead."""


@dataclass(frozen=True)
class BatchTarget:
    """Where the stack's batch pipeline may read and write (its execution role's grants)."""

    pipeline_name: str
    data_bucket: str
    artifacts_bucket: str

    @property
    def output_root(self) -> str:
        return f"s3://{self.artifacts_bucket}/{BATCH_OUTPUT_PREFIX}"


@dataclass(frozen=True)
class BatchSummary:
    files: int
    rows: int
    scored: int
    errors: int
    errors_by_reason: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class BatchRun:
    arn: str
    status: str
    failure_reason: str
    # <OutputUri>/<execution id>: transform/, and with a split predictions/ and errors/.
    run_uri: str
    # None: no split step ran (bad rows "fail"), or it wrote no summary.
    summary: BatchSummary | None

    @property
    def succeeded(self) -> bool:
        return self.status == "Succeeded"

    def folder(self, name: str) -> str:
        return uri.join(self.run_uri, name) + "/"


def check_uris(input_uri: str, output_uri: str, target: BatchTarget) -> tuple[str, str]:
    """(InputUri, OutputUri) as the pipeline takes them, or why the jobs could not use them."""
    for flag, value in (("--input", input_uri), ("--output", output_uri)):
        if not uri.is_s3(value):
            raise BatchStackError(f"{flag} {value!r} is not an s3:// URI")
        try:
            bucket, _ = uri.split(value)
        except uri.UriError as exc:
            raise BatchStackError(f"{flag}: {exc}") from None
        if not bucket:
            raise BatchStackError(f"{flag} {value!r} has no bucket")
    bucket, key = uri.split(input_uri)
    if bucket != target.data_bucket or not key:
        raise BatchStackError(
            f"--input {input_uri!r} is not a prefix of the stack's data bucket: the batch "
            f"model's role reads s3://{target.data_bucket}/ (e.g. "
            f"s3://{target.data_bucket}/batch/input/)"
        )
    if not (output_uri.rstrip("/") + "/").startswith(target.output_root):
        raise BatchStackError(
            f"--output {output_uri!r} is not under {target.output_root}: the only prefix the "
            "batch jobs may write"
        )
    prefix = input_uri if input_uri.endswith("/") else input_uri + "/"
    return prefix, output_uri.rstrip("/")


def execution_id(arn: str) -> str:
    """The execution's ID: the last part of arn:...:pipeline/<name>/execution/<id>."""
    return arn.rsplit("/", 1)[-1]


def run(
    sagemaker: Any,
    s3: Any,
    target: BatchTarget,
    input_uri: str,
    output_uri: str,
    *,
    poll_seconds: float,
    sleep: Callable[[float], None],
    on_event: Callable[[str], None],
) -> BatchRun:
    """Start the pipeline, follow it to its end and read its summary (if it has one)."""
    inputs, outputs = check_uris(input_uri, output_uri, target)
    runner = PipelineRunner(sagemaker, target.pipeline_name, poll_seconds=poll_seconds, sleep=sleep)
    arn = runner.start({layout.INPUT_URI: inputs, layout.OUTPUT_URI: outputs})
    on_event(f"started {target.pipeline_name}: {arn}")
    result = runner.follow(arn, on_event=on_event)
    folder = uri.join(outputs, execution_id(arn))
    summary = None
    if result.succeeded:
        summary = read_summary(s3, uri.join(folder, layout.ERRORS_FOLDER, contract.SUMMARY_FILE))
    return BatchRun(arn, result.status, result.failure_reason, folder, summary)


def read_summary(s3: Any, summary_uri: str) -> BatchSummary | None:
    """The split step's summary.json; None where there is none (no split step ran)."""
    bucket, key = uri.split(summary_uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    document = json.loads(body)
    return BatchSummary(
        files=int(document["files"]),
        rows=int(document["rows"]),
        scored=int(document["scored"]),
        errors=int(document["errors"]),
        errors_by_reason=tuple(sorted(document.get("errors_by_reason", {}).items())),
    )
