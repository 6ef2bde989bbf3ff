"""``mlops quality``: the model-quality job (predictions joined with labels) from the command
line."""

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
LOCAL_GROUND_TRUTH = "runs/local/groundtruth"
LOCAL_EVALUATION = "runs/local/evaluation/evaluation.json"
LOCAL_MODEL = "runs/local/model"
LOCAL_OUTPUT = "runs/local/quality"


def quality_command(
    stack: Annotated[
        str | None,
        typer.Option(
            "--stack",
            "-s",
            help="Run on a deployed stack's capture, ground truth, served model and metrics "
            "namespace, with its account settings; the other options override.",
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
    ground_truth: Annotated[
        str | None,
        typer.Option(
            "--ground-truth",
            help=f"Ground-truth folder or s3:// prefix (default: {LOCAL_GROUND_TRUTH}, or the "
            "stack's).",
        ),
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            help="The served model: package ARN (names its evaluation), model dir or "
            f"model.tar.gz (default: {LOCAL_MODEL}, or the stack's served package).",
        ),
    ] = None,
    evaluation: Annotated[
        str | None,
        typer.Option(
            "--evaluation",
            help="evaluation.json, local or s3:// (default: the package's, or "
            f"{LOCAL_EVALUATION} without --stack).",
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            help=f"Folder or s3:// prefix for the reports (default: {LOCAL_OUTPUT}).",
        ),
    ] = None,
    window_hours: Annotated[float, typer.Option(help="Hours of predictions to judge.")] = 24.0,
    label_delay_hours: Annotated[
        float, typer.Option(help="Hours labels take to arrive after the window.")
    ] = 24.0,
    end: Annotated[
        str | None,
        typer.Option(help="Window end, ISO 8601 (default: now less the label delay, UTC)."),
    ] = None,
    alpha: Annotated[float, typer.Option(help="Significance level, after Holm.")] = 0.01,
    min_drop: Annotated[float, typer.Option(help="Smallest drop that flags.")] = 0.05,
    min_labels: Annotated[
        int, typer.Option(help="Fewer labelled rows are measured, not compared.")
    ] = 100,
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric",
            metavar="METRIC",
            help="A metric to test (auc, accuracy, precision, recall, f1); repeat. Default: all.",
        ),
    ] = None,
    facet: Annotated[
        list[str] | None,
        typer.Option(
            "--facet",
            metavar="NAME=VALUES",
            help="Bias facet, e.g. international_plan=yes or state=CA,TX; repeat.",
        ),
    ] = None,
    bias_limit: Annotated[
        list[str] | None,
        typer.Option(
            "--bias-limit",
            metavar="METRIC=LIMIT",
            help="Largest deviation from fair of a Clarify metric, e.g. DPPL=0.2; repeat.",
        ),
    ] = None,
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
            help="Read the window in N processes (1-100), each joining its share of the "
            "capture files with all the labels, then merge: the same report as one pass.",
        ),
    ] = 1,
    profile: ProfileOption = None,
    region: RegionOption = None,
    endpoint_url: EndpointUrlOption = None,
    project_dir: ProjectDirOption = None,
) -> None:
    """Join a window of captured predictions with their labels; judge quality and bias.

    Exit codes:
      0  the job ran (a drop or not, enough labels or not)
      1  AWS refused a call
      2  bad arguments, baseline or evaluation
      3  silent: no capture layout under --capture, or no labelled record in the
         window (report written, LabelledRecords=0 published)
    """
    from monitoring import quality as quality_job

    if stack is not None:
        settings, aws = aws_target(
            stack, project_dir, profile=profile, region=region, endpoint_url=endpoint_url
        )
        capture, ground_truth, baseline, namespace, endpoint_name = _stack_defaults(
            settings, aws, capture, ground_truth, baseline, namespace, endpoint_name
        )
        region, endpoint_url = aws.region, aws.endpoint_url
    else:
        capture = capture or LOCAL_CAPTURE
        ground_truth = ground_truth or LOCAL_GROUND_TRUTH
        baseline = baseline or LOCAL_MODEL
        evaluation = evaluation or LOCAL_EVALUATION
    argv = [
        "--capture", capture, "--ground-truth", ground_truth, "--baseline", baseline,
        "--output", output or LOCAL_OUTPUT, "--window-hours", str(window_hours),
        "--label-delay-hours", str(label_delay_hours), "--alpha", str(alpha),
        "--min-drop", str(min_drop), "--min-labels", str(min_labels),
        "--publish" if publish else "--no-publish", "--shards", str(shards),
    ]  # fmt: skip
    for flag, values in (("--metric", metric), ("--facet", facet), ("--bias-limit", bias_limit)):
        for value in values or ():
            argv += [flag, value]
    for flag, option in (
        ("--evaluation", evaluation),
        ("--end", end),
        ("--namespace", namespace),
        ("--endpoint-name", endpoint_name),
        ("--region", region),
        ("--endpoint-url", endpoint_url),
    ):
        if option is not None:
            argv += [flag, option]
    from mlops.commands.common import console
    from mlops.commands.progress import Display

    # The job's own exit codes (see the docstring), passed through.
    with Display(console) as display:
        code = quality_job.main(argv, progress=display.tally("reading capture and labels", "lines"))
    if code:
        raise typer.Exit(code=code)


def _stack_defaults(
    settings: Settings,
    aws: AwsTarget,
    capture: str | None,
    ground_truth: str | None,
    baseline: str | None,
    namespace: str | None,
    endpoint_name: str | None,
) -> tuple[str, str, str, str, str]:
    """What the stack's scheduled quality job reads, found as `mlops drift --stack` finds
    it; the job's clients then come from the stack's session (boto3's default session)."""
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
    bucket = stage.bucket(BucketPurpose.CAPTURE)
    capture = capture or naming.capture_uri(bucket, endpoint)
    ground_truth = ground_truth or naming.ground_truth_uri(bucket, endpoint)
    if baseline is None:
        model = settings.serving.model
        if model is None:
            fail(f"{settings.stack} serves no model (mlops:serving.model); pass --baseline")
        if model.package_version is not None and settings.shared_registry is not None:
            fail(f"{settings.stack} serves from a shared registry; pass --baseline <package ARN>")
        baseline = naming.served_model(model, account)
    return capture, ground_truth, baseline, namespace or naming.metrics_namespace, endpoint
