"""``mlops batch``: batch inference over files, with the model's own handler.

``--local`` runs inference/batch.py on this machine: the same handler, formats, bad-row
policy and output layout as the stack's transform job (inference/batch_contract.py).
``--stack`` runs the stack's batch pipeline (``<prefix>-batch``) over an S3 prefix and
follows it to its end (mlops/commands/batch_stack.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from inference.batch_contract import CONTENT_TYPES, BadRows
from mlops.commands.common import (
    EndpointUrlOption,
    ProfileOption,
    ProjectDirOption,
    RegionOption,
    console,
    fail,
)

LOCAL_MODEL = Path("runs/local/model")
BAD_ROWS = tuple(mode.value for mode in BadRows)


def _choice(allowed: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in allowed:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)}")
        return value

    return check


def batch_command(
    input_dir: Annotated[
        str,
        typer.Option(
            "--input",
            help="Folder of input files (CSV or JSON lines, one record a line); with "
            "--stack, an s3:// prefix of the stack's data bucket.",
        ),
    ],
    output_dir: Annotated[
        str,
        typer.Option(
            "--output",
            help="Where transform/, predictions/, errors/, capture/ and summary.json go; "
            "with --stack, an s3:// prefix under the artifacts bucket's batch/output/ (each "
            "run writes below <output>/<execution id>/).",
        ),
    ],
    local: Annotated[
        bool, typer.Option("--local", help="Run on this machine with the local model.")
    ] = False,
    stack: Annotated[
        str | None,
        typer.Option(
            "--stack",
            "-s",
            help="Run the stack's batch pipeline (its served model) and follow it to the end.",
        ),
    ] = None,
    poll_seconds: Annotated[
        float, typer.Option(min=0.1, help="With --stack: seconds between status checks.")
    ] = 15.0,
    profile: ProfileOption = None,
    region: RegionOption = None,
    endpoint_url: EndpointUrlOption = None,
    project_dir: ProjectDirOption = None,
    model_dir: Annotated[
        Path, typer.Option("--model-dir", help="Model directory from `mlops train`.")
    ] = LOCAL_MODEL,
    content_type: Annotated[
        str,
        typer.Option(
            "--content-type",
            callback=_choice(CONTENT_TYPES),
            help="text/csv (id, then the features in training order, no header) or "
            'application/jsonlines ({"id": ..., "features": {...}} a line).',
        ),
    ] = "text/csv",
    bad_rows: Annotated[
        str,
        typer.Option(
            "--bad-rows",
            callback=_choice(BAD_ROWS),
            help="fail: stop at the first bad row, naming its file and line; errors: score "
            "the rest and list bad rows under errors/.",
        ),
    ] = "errors",
    max_payload_mb: Annotated[
        int,
        typer.Option(
            "--max-payload-mb", min=1, max=100, help="Mini-batch size, as MaxPayloadInMB."
        ),
    ] = 6,
    capture: Annotated[
        bool,
        typer.Option(
            "--capture/--no-capture",
            help="Write batch capture manifests under capture/ (for `mlops drift --capture`).",
        ),
    ] = True,
) -> None:
    """Score every file in a folder with the trained model, as a SageMaker batch transform.

    With --stack, the stack's settings (mlops:batch) set the format, bad-row policy,
    payload and capture; the options for those apply to --local only.

    Exit codes: 0 done (bad rows, if any, are listed under errors/); 1 the run stopped (a
    bad row under --bad-rows fail, a missing input or model, a failed pipeline run); 2 bad
    arguments.
    """
    if stack is not None:
        if local:
            fail("pass --local or --stack, not both")
        _run_on_stack(
            stack,
            input_dir,
            output_dir,
            poll_seconds=poll_seconds,
            profile=profile,
            region=region,
            endpoint_url=endpoint_url,
            project_dir=project_dir,
        )
        return
    if not local:
        fail("pass --local to run on this machine, or --stack STACK to run on a stack")
    _run_local(
        model_dir,
        Path(input_dir),
        Path(output_dir),
        content_type,
        bad_rows,
        max_payload_mb,
        capture,
    )


def _run_local(
    model_dir: Path,
    input_dir: Path,
    output_dir: Path,
    content_type: str,
    bad_rows: str,
    max_payload_mb: int,
    capture: bool,
) -> None:
    from inference import batch
    from mlops.commands.progress import Display

    try:
        with Display(console) as display:
            result = batch.run(
                model_dir,
                input_dir,
                output_dir,
                content_type=content_type,
                bad_rows=BadRows(bad_rows),
                max_payload_mb=max_payload_mb,
                progress=display.counter("scoring", "bytes"),
                capture=capture,
            )
    except batch.BatchError as exc:
        fail(str(exc))
    summary = result.summary
    rate = summary.rows / result.seconds if result.seconds > 0 else 0.0
    console.print(
        f"{summary.files} file(s), {summary.rows:,} row(s): {summary.scored:,} scored, "
        f"{summary.errors:,} error(s) in {result.seconds:.1f} s ({rate:,.0f} rows/s)",
        markup=False,
        highlight=False,
    )
    for reason, count in summary.errors_by_reason:
        console.print(f"  {reason}: {count:,}", markup=False, highlight=False)
    console.print(
        f"predictions: {result.predictions}\nerrors: {result.errors}\n"
        f"summary: {result.summary_file}"
        + (f"\ncapture: {result.capture}" if result.capture else ""),
        markup=False,
        highlight=False,
    )


def _run_on_stack(
    stack: str,
    input_uri: str,
    output_uri: str,
    *,
    poll_seconds: float,
    profile: str | None,
    region: str | None,
    endpoint_url: str | None,
    project_dir: Path | None,
) -> None:
    import time

    from infra.aws_session import stack_session
    from infra.naming import BucketPurpose
    from mlops.commands import batch_stack
    from mlops.commands.common import aws_errors, aws_target
    from pipelines import batch_layout as layout
    from pipelines.runner import PipelineRunError
    from promotion.aws import Stage

    settings, aws = aws_target(
        stack, project_dir, profile=profile, region=region, endpoint_url=endpoint_url
    )
    if not settings.batch.enabled:
        fail(f"{stack} has no batch pipeline: set mlops:batch enabled: true and deploy")
    with aws_errors(aws):
        session = stack_session(aws)
        account = settings.account_id or str(
            session.client("sts", endpoint_url=aws.endpoint_url).get_caller_identity()["Account"]
        )
        stage = Stage(settings, account)
        target = batch_stack.BatchTarget(
            pipeline_name=stage.naming.batch_pipeline,
            data_bucket=stage.bucket(BucketPurpose.DATA),
            artifacts_bucket=stage.bucket(BucketPurpose.ARTIFACTS),
        )
        try:
            batch_stack.check_uris(input_uri, output_uri, target)
            with console.status(f"following {target.pipeline_name}"):
                result = batch_stack.run(
                    session.client("sagemaker", endpoint_url=aws.endpoint_url),
                    session.client("s3", endpoint_url=aws.endpoint_url),
                    target,
                    input_uri,
                    output_uri,
                    poll_seconds=poll_seconds,
                    sleep=time.sleep,
                    on_event=lambda line: console.print(f"  {line}", soft_wrap=True),
                )
        except (batch_stack.BatchStackError, PipelineRunError) as exc:
            fail(str(exc))
    if not result.succeeded:
        fail(
            f"{target.pipeline_name} {result.status.lower()}: "
            f"{result.failure_reason or 'no reason given'} (outputs: {result.run_uri}/)"
        )
    console.print(f"[green]{target.pipeline_name} succeeded[/]")
    summary = result.summary
    if summary is not None:
        console.print(
            f"{summary.files} file(s), {summary.rows:,} row(s): {summary.scored:,} scored, "
            f"{summary.errors:,} error(s)",
            markup=False,
            highlight=False,
        )
        for reason, count in summary.errors_by_reason:
            console.print(f"  {reason}: {count:,}", markup=False, highlight=False)
        folders: tuple[str, ...] = (layout.PREDICTIONS_FOLDER, layout.ERRORS_FOLDER)
    else:
        # Bad rows "fail": no split step; the transform output holds every row, scored.
        folders = (layout.TRANSFORM_FOLDER,)
    for name in folders:
        console.print(
            f"{name}: {result.folder(name)}", markup=False, highlight=False, soft_wrap=True
        )
