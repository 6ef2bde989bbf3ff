"""``mlops train``: the churn model's whole training run on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlops.commands.common import ProjectDirOption, console, fail
from mlops.commands.local_training import train_and_show
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

    result = train_and_show(run_dir, raw, Hyperparameters(seed=seed))
    console.print(
        f"raw data {result.raw_sha256[:12]} ({sum(result.rows.values())} rows: {result.rows}); "
        f"model in {result.model_dir}; took {sum(result.seconds.values()):.1f}s"
    )
