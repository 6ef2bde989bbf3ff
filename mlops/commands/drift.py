"""``mlops drift``: the drift job on a window of endpoint data capture, from the command line."""

from __future__ import annotations

from typing import Annotated

import typer

from mlops.commands.common import EndpointUrlOption


def drift_command(
    capture: Annotated[
        str, typer.Option("--capture", help="Data capture folder or s3:// prefix.")
    ] = "runs/local/capture",
    baseline: Annotated[
        str,
        typer.Option(
            "--baseline",
            help="baseline.json, model dir, model.tar.gz (local or s3://) or model package ARN.",
        ),
    ] = "runs/local/model",
    output: Annotated[
        str, typer.Option("--output", help="Folder or s3:// prefix for drift.json/.html.")
    ] = "runs/local/drift",
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
    region: Annotated[str | None, typer.Option(help="AWS region.")] = None,
    endpoint_url: EndpointUrlOption = None,
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

    argv = [
        "--capture", capture, "--baseline", baseline, "--output", output,
        "--window-hours", str(window_hours), "--min-records", str(min_records),
        "--psi-threshold", str(psi_threshold),
        "--ks-alpha", str(ks_alpha), "--publish" if publish else "--no-publish",
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
    # The job's own exit codes (see the docstring), passed through.
    code = drift_job.main(argv)
    if code:
        raise typer.Exit(code=code)
