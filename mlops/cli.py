"""The ``mlops`` command. Each subcommand is a thin wrapper over a package of the kit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.text import Text

app = typer.Typer(
    name="mlops",
    help="MLOps on AWS SageMaker with Pulumi: plan stacks offline, train and serve locally.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True)


@app.callback()
def _root() -> None:
    """Keeps `plan` a subcommand even while it is the only one."""


@app.command()
def plan(
    stack: Annotated[str, typer.Option("--stack", "-s", help="Stack name, e.g. dev.")],
    json_file: Annotated[
        Path | None,
        typer.Option("--json", help="Also write every resource's type, name, parent and inputs."),
    ] = None,
    project_dir: Annotated[
        Path | None,
        typer.Option("--project-dir", help="Folder with Pulumi.yaml (default: search upwards)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Skip the tree.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Show what `pulumi up` would create for STACK, without AWS or the Pulumi CLI."""
    from infra.config.loader import ConfigError
    from infra.plan.project import ProjectError
    from infra.plan.render import to_json, to_rich
    from infra.plan.runner import PlanError, plan_stack

    try:
        result = plan_stack(stack, project_dir=project_dir)
    except (ProjectError, ConfigError, PlanError) as exc:
        _fail(str(exc))
    except Exception as exc:  # the program's own failure: report it, not our stack frames
        if debug:
            raise
        _fail(f"the Pulumi program failed: {type(exc).__name__}: {exc} (rerun with --debug)")

    if not quiet:
        console.print(to_rich(result))
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(to_json(result), encoding="utf-8")
        console.print(f"wrote {len(result.resources)} resources to {json_file}")


@app.command()
def train(
    local: Annotated[
        bool, typer.Option("--local", help="Run every step on this machine (the only mode yet).")
    ] = False,
    run_dir: Annotated[Path, typer.Option("--run-dir", help="Where the run's files go.")] = Path(
        "runs/local"
    ),
    raw: Annotated[
        Path | None,
        typer.Option("--raw", help="Use this raw CSV instead of ingesting the shipped dataset."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for the split and the model.")] = 42,
) -> None:
    """Ingest, validate, split, train and evaluate the churn model."""
    from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from training import local as local_run
    from training.contract import DataValidationError
    from training.features import Hyperparameters

    if not local:
        _fail("only --local is available; SageMaker training runs through the pipeline")
    if raw is not None and not raw.is_file():
        _fail(f"--raw {raw}: no such file")

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        tasks: dict[str, TaskID] = {}

        def started(name: str) -> None:
            for previous in tasks.values():
                progress.update(previous, completed=1)
            tasks[name] = progress.add_task(name, total=1)

        try:
            result = local_run.run(
                run_dir, raw_csv=raw, hyperparameters=Hyperparameters(seed=seed), on_step=started
            )
        except DataValidationError as exc:
            progress.stop()
            _fail(
                f"data rejected before training (report in {run_dir}/data/processed/report):\n{exc}"
            )
        for task in tasks.values():
            progress.update(task, completed=1)

    table = Table(title=f"churn model {result.model_sha256[:12]}")
    table.add_column("metric")
    table.add_column("validation", justify="right")
    table.add_column("test", justify="right")
    for name, value in result.test_metrics.items():
        table.add_row(name, f"{result.validation_metrics[name]:.4f}", f"{value:.4f}")
    console.print(table)
    console.print(
        f"raw data {result.raw_sha256[:12]} ({sum(result.rows.values())} rows: {result.rows}); "
        f"model in {result.model_dir}; took {sum(result.seconds.values()):.1f}s"
    )


@app.command()
def serve(
    model: Annotated[
        Path, typer.Option("--model-dir", "--model", help="Model directory or model.tar.gz.")
    ] = Path("runs/local/model"),
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="SageMaker containers listen on 8080.")] = 8080,
    capture_dir: Annotated[
        Path | None, typer.Option("--capture-dir", help="Write data capture JSONL here.")
    ] = None,
    capture_percent: Annotated[
        int, typer.Option("--capture-percent", min=0, max=100, help="Share of requests captured.")
    ] = 100,
    endpoint_name: Annotated[str, typer.Option(help="Endpoint name in capture paths.")] = (
        "local-endpoint"
    ),
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, max=64, help="Processes, each with the model loaded once (default: one per CPU)."
        ),
    ] = None,
) -> None:
    """Serve a model with SageMaker's contract: GET /ping, POST /invocations."""
    import os

    cpus = os.cpu_count() or 1
    workers = workers or cpus
    # Parallelism comes from workers: each runs its BLAS/OpenMP pools on its share of the
    # cores. Idle pool threads spin, so oversubscribed pools burn CPU that requests need.
    # Set before numpy loads (below), so it holds in this process and in every worker.
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, str(max(1, cpus // workers)))

    import uvicorn

    from inference import server as serving
    from inference.capture import CaptureWriter
    from inference.handler import ModelLoadError
    from inference.server import (
        PortInUseError,
        check_port_free,
        create_app,
        load_model,
        server_config,
    )

    if not model.exists():
        _fail(f"--model-dir {model}: no such file or directory (train one: mlops train --local)")
    try:
        check_port_free(host, port)
        loaded = load_model(model)
    except (PortInUseError, ModelLoadError) as exc:
        _fail(str(exc))
    console.print(
        f"serving model {loaded.sha256[:12]} on http://{host}:{port} with {workers} worker(s) "
        f"(capture: {capture_dir or 'off'}); Ctrl-C stops"
    )
    # uvicorn handles Ctrl-C itself: it stops accepting, finishes in-flight requests, exits.
    if workers > 1:
        os.environ[serving.ENV_MODEL] = str(model.resolve())
        os.environ[serving.ENV_CAPTURE_PERCENT] = str(capture_percent)
        os.environ[serving.ENV_ENDPOINT] = endpoint_name
        if capture_dir is not None:
            os.environ[serving.ENV_CAPTURE_DIR] = str(capture_dir.resolve())
        serving.run_workers(host, port, workers)
        return
    capture = (
        CaptureWriter(capture_dir, endpoint=endpoint_name, sampling_percent=capture_percent)
        if capture_dir is not None
        else None
    )
    uvicorn.Server(server_config(create_app(loaded, capture), host, port)).run()


def _fail(message: str) -> NoReturn:
    errors.print(Text("error: ", style="bold red") + Text(message), soft_wrap=True)
    raise typer.Exit(code=1)


if __name__ == "__main__":
    app()
