"""``mlops attribution``: the attribution-drift job on a window of endpoint data capture."""

from __future__ import annotations

from typing import Annotated

import typer

from mlops.commands.common import (
    EndpointUrlOption,
    ProfileOption,
    ProjectDirOption,
    RegionOption,
    aws_target,
)

LOCAL_CAPTURE = "runs/local/capture"
LOCAL_MODEL = "runs/local/model"
LOCAL_EXPLAINABILITY = "runs/local/evaluation/explainability/analysis.json"
LOCAL_OUTPUT = "runs/local/attribution"


def attribution_command(
    stack: Annotated[
        str | None,
        typer.Option(
            "--stack",
            "-s",
            help="Run on a deployed stack's capture, served model package (and its "
            "explainability report) and metrics namespace; the other options override.",
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
            help="The served model: model package ARN, model dir or model.tar.gz (local or "
            f"s3://) (default: {LOCAL_MODEL}, or the stack's served package).",
        ),
    ] = None,
    explainability: Annotated[
        str | None,
        typer.Option(
            "--explainability",
            help="The evaluation's Clarify analysis.json (default: the package's "
            f"explainability report, or {LOCAL_EXPLAINABILITY} without a package).",
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option("--output", help=f"Folder or s3:// prefix (default: {LOCAL_OUTPUT})."),
    ] = None,
    window_hours: Annotated[float, typer.Option(help="Hours of capture to explain.")] = 24.0,
    min_records: Annotated[
        int,
        typer.Option(help="Fewer capture records in the window exit 3 (0: empty is fine)."),
    ] = 1,
    end: Annotated[
        str | None, typer.Option(help="Window end, ISO 8601 (default: now, UTC).")
    ] = None,
    ndcg_threshold: Annotated[
        float, typer.Option(help="NDCG below which the ranking has drifted.")
    ] = 0.9,
    max_rows: Annotated[
        int, typer.Option(help="Rows explained: a seeded uniform sample of the window.")
    ] = 500,
    background_rows: Annotated[
        int, typer.Option(help="SHAP background rows; as at evaluation.")
    ] = 1,
    nsamples: Annotated[
        int, typer.Option(help="Kernel SHAP coalitions per row; as at evaluation.")
    ] = 256,
    seed: Annotated[int, typer.Option(help="Seed of the sample and of SHAP.")] = 0,
    namespace: Annotated[str | None, typer.Option(help="CloudWatch namespace.")] = None,
    endpoint_name: Annotated[
        str | None, typer.Option(help="Endpoint to read and name in metrics.")
    ] = None,
    publish: Annotated[
        bool, typer.Option("--publish/--no-publish", help="Put the metrics to CloudWatch.")
    ] = False,
    profile: ProfileOption = None,
    region: RegionOption = None,
    endpoint_url: EndpointUrlOption = None,
    project_dir: ProjectDirOption = None,
) -> None:
    """Rank the served model's SHAP attributions on a window of capture against evaluation's.

    Exit codes:
      0  the job ran (drift or not)
      1  AWS refused a call
      2  bad arguments, model or explainability report
      3  silent: no capture layout under --capture, or fewer than --min-records
         records in the window (report written, ExplainedRecords=0 published)
    """
    from mlops.commands.drift import _stack_defaults
    from monitoring import attribution as attribution_job
    from monitoring.served_model import is_model_package

    if stack is not None:
        settings, aws = aws_target(
            stack, project_dir, profile=profile, region=region, endpoint_url=endpoint_url
        )
        capture, baseline, namespace, endpoint_name = _stack_defaults(
            settings, aws, capture, baseline, namespace, endpoint_name
        )
        region, endpoint_url = aws.region, aws.endpoint_url
    elif explainability is None and not is_model_package(baseline or LOCAL_MODEL):
        explainability = LOCAL_EXPLAINABILITY  # where the local evaluation writes it
    argv = [
        "--capture", capture or LOCAL_CAPTURE, "--baseline", baseline or LOCAL_MODEL,
        "--output", output or LOCAL_OUTPUT,
        "--window-hours", str(window_hours), "--min-records", str(min_records),
        "--ndcg-threshold", str(ndcg_threshold), "--max-rows", str(max_rows),
        "--background-rows", str(background_rows), "--nsamples", str(nsamples),
        "--seed", str(seed), "--publish" if publish else "--no-publish",
    ]  # fmt: skip
    for flag, value in (
        ("--explainability", explainability),
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
        code = attribution_job.main(argv, progress=display.tally("reading capture", "records"))
    if code:
        raise typer.Exit(code=code)
