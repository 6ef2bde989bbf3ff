"""``mlops drift``: the drift job on a window of endpoint data capture, from the command line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from mlops.commands.common import (
    EndpointUrlOption,
    ProfileOption,
    ProjectDirOption,
    RegionOption,
    aws_errors,
    aws_target,
    fail,
)

if TYPE_CHECKING:
    from infra.aws_session import AwsTarget
    from infra.config.settings import Settings

LOCAL_CAPTURE = "runs/local/capture"
LOCAL_BASELINE = "runs/local/model"
LOCAL_OUTPUT = "runs/local/drift"


def drift_command(
    stack: Annotated[
        str | None,
        typer.Option(
            "--stack",
            "-s",
            help="Run on a deployed stack's capture, served model and metrics namespace, with "
            "its account settings; the other options override.",
        ),
    ] = None,
    capture: Annotated[
        str | None,
        typer.Option(
            "--capture",
            help=f"Data capture folder or s3:// prefix (default: {LOCAL_CAPTURE}, or the "
            "stack's capture).",
        ),
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            help="baseline.json, model dir, model.tar.gz (local or s3://) or model package "
            f"ARN (default: {LOCAL_BASELINE}, or the stack's served package).",
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            help=f"Folder or s3:// prefix for drift.json/.html (default: {LOCAL_OUTPUT}).",
        ),
    ] = None,
    window_hours: Annotated[float, typer.Option(help="Hours of capture to compare.")] = 24.0,
    min_records: Annotated[
        int,
        typer.Option(help="Fewer capture records in the window exit 3 (0: empty is fine)."),
    ] = 1,
    end: Annotated[
        str | None, typer.Option(help="Window end, ISO 8601 (default: now, UTC).")
    ] = None,
    psi_threshold: Annotated[float, typer.Option(help="PSI at which a feature drifts.")] = 0.2,
    ks_alpha: Annotated[float, typer.Option(help="Significance level of the tests.")] = 0.01,
    namespace: Annotated[str | None, typer.Option(help="CloudWatch namespace.")] = None,
    endpoint_name: Annotated[
        str | None, typer.Option(help="Endpoint to read and name in metrics.")
    ] = None,
    publish: Annotated[
        bool, typer.Option("--publish/--no-publish", help="Put the metrics to CloudWatch.")
    ] = False,
    shards: Annotated[
        int,
        typer.Option(
            help="Read the window in N local processes (1-100), then merge: the same report, "
            "sooner on a large window with spare cores."
        ),
    ] = 1,
    profile: ProfileOption = None,
    region: RegionOption = None,
    endpoint_url: EndpointUrlOption = None,
    project_dir: ProjectDirOption = None,
) -> None:
    """Compare a window of endpoint data capture with the model's training baseline.

    Exit codes:
      0  the job ran (drift or not)
      1  AWS refused a call
      2  bad arguments or baseline
      3  silent: no capture layout under --capture, or fewer than --min-records
         records in the window (report written, CaptureRecords=0 published)
    """
    from monitoring import drift as drift_job

    if stack is not None:
        settings, aws = aws_target(
            stack, project_dir, profile=profile, region=region, endpoint_url=endpoint_url
        )
        capture, baseline, namespace, endpoint_name = _stack_defaults(
            settings, aws, capture, baseline, namespace, endpoint_name
        )
        region, endpoint_url = aws.region, aws.endpoint_url
    capture, baseline = capture or LOCAL_CAPTURE, baseline or LOCAL_BASELINE
    output = output or LOCAL_OUTPUT
    argv = [
        "--capture", capture, "--baseline", baseline, "--output", output,
        "--window-hours", str(window_hours), "--min-records", str(min_records),
        "--psi-threshold", str(psi_threshold),
        "--ks-alpha", str(ks_alpha), "--publish" if publish else "--no-publish",
        "--shards", str(shards),
    ]  # fmt: skip
    for flag, value in (
        ("--end", end),
        ("--namespace", namespace),
        ("--endpoint-name", endpoint_name),
        ("--region", region),
        ("--endpoint-url", endpoint_url),
    ):
        if value is not None:
            argv += [flag, value]
    from mlops.commands.common import console
    from mlops.commands.progress import Display

    # The job's own exit codes (see the docstring), passed through.
    with Display(console) as display:
        code = drift_job.main(argv, progress=display.tally("reading capture", "records"))
    if code:
        raise typer.Exit(code=code)


def _stack_defaults(
    settings: Settings,
    aws: AwsTarget,
    capture: str | None,
    baseline: str | None,
    namespace: str | None,
    endpoint_name: str | None,
) -> tuple[str, str, str, str]:
    """What the stack's scheduled drift job reads, found from its names and its account; the
    job's clients then come from the stack's session (boto3's default session)."""
    import boto3

    from infra.aws_session import stack_session
    from infra.naming import BucketPurpose
    from promotion.aws import Stage

    with aws_errors(aws):
        session = stack_session(aws)
        account = settings.account_id or str(
            session.client("sts", endpoint_url=aws.endpoint_url).get_caller_identity()["Account"]
        )
    boto3.DEFAULT_SESSION = session  # what the job's boto3.client() calls use
    stage = Stage(settings, account)
    naming = stage.naming
    endpoint = endpoint_name or naming.endpoint
    if capture is None:
        capture = naming.capture_uri(stage.bucket(BucketPurpose.CAPTURE), endpoint)
    if baseline is None:
        model = settings.serving.model
        if model is None:
            fail(f"{settings.stack} serves no model (mlops:serving.model); pass --baseline")
        if model.package_version is not None and settings.shared_registry is not None:
            fail(f"{settings.stack} serves from a shared registry; pass --baseline <package ARN>")
        baseline = naming.served_model(model, account)
    return capture, baseline, namespace or naming.metrics_namespace, endpoint
