"""Train and evaluate on this machine with given hyperparameters, showing the metrics: what
``mlops train`` does, and what ``mlops train --tune`` does after its search."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mlops.commands.common import console, fail

if TYPE_CHECKING:
    from training.features import Hyperparameters
    from training.local import LocalRun


def train_and_show(
    run_dir: Path, raw: Path | None, hyperparameters: Hyperparameters, note: str = ""
) -> LocalRun:
    """The local run with a progress display, then its metrics table (titled with the model's
    hash, then ``note``); a data-contract failure exits with an ``error:`` line."""
    from rich.table import Table

    from mlops.commands.progress import Display
    from training import local as local_run
    from training.contract import DataValidationError

    try:
        with Display(console, steps=local_run.STEPS) as display:
            result = local_run.run(
                run_dir, raw_csv=raw, hyperparameters=hyperparameters, on_step=display.step
            )
    except DataValidationError as exc:
        fail(f"data rejected before training (report in {run_dir}/data/processed/report):\n{exc}")

    table = Table(title=f"churn model {result.model_sha256[:12]}{note}")
    table.add_column("metric")
    table.add_column("validation", justify="right")
    table.add_column("test", justify="right")
    for name, value in result.test_metrics.items():
        table.add_row(name, f"{result.validation_metrics[name]:.4f}", f"{value:.4f}")
    console.print(table)
    return result
