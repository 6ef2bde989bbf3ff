"""``mlops train``: the churn model's whole training run on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlops.commands.common import ProjectDirOption, console, fail
from mlops.commands.tuning import TrialsOption, TuneOption, TuneStackOption


def train(
    local: Annotated[
        # Runs are always local (SageMaker training runs through the pipeline); --local stays
        # accepted for scripts that pass it.
        bool,
        typer.Option("--local", hidden=True, help="Accepted for compatibility: the default."),
    ] = False,
    run_dir: Annotated[Path, typer.Option("--run-dir", help="Where the run's files go.")] = Path(
        "runs/local"
    ),
    raw: Annotated[
        Path | None,
        typer.Option("--raw", help="Use this raw CSV instead of ingesting the shipped dataset."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for the split and the model.")] = 42,
    tune: TuneOption = False,
    trials: TrialsOption = None,
    stack: TuneStackOption = None,
    project_dir: ProjectDirOption = None,
) -> None:
    """Ingest, validate, split, train and evaluate the churn model on this machine.

    SageMaker training runs through the stack's pipeline (mlops pipeline run).
    """
    from rich.table import Table

    from mlops.commands.progress import Display
    from training import local as local_run
    from training.contract import DataValidationError
    from training.features import Hyperparameters

    del local  # the only mode
    if tune or trials is not None or stack is not None:
        from mlops.commands import tuning

        tuning.run(
            run_dir=run_dir,
            raw=raw,
            seed=seed,
            tune=tune,
            trials=trials,
            stack=stack,
            project_dir=project_dir,
        )
        return
    if raw is not None and not raw.is_file():
        fail(f"--raw {raw}: no such file")

    try:
        with Display(console, steps=local_run.STEPS) as display:
            result = local_run.run(
                run_dir,
                raw_csv=raw,
                hyperparameters=Hyperparameters(seed=seed),
                on_step=display.step,
            )
    except DataValidationError as exc:
        fail(f"data rejected before training (report in {run_dir}/data/processed/report):\n{exc}")

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
