"""``mlops train``: the churn model's whole training run on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlops.commands.common import console, fail


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
        fail("only --local is available; SageMaker training runs through the pipeline")
    if raw is not None and not raw.is_file():
        fail(f"--raw {raw}: no such file")

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
            fail(
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
