"""``mlops train --tune``: search hyperparameters on this machine, then train with the best.

The search (training.tune) runs on the split the pipeline's ValidateAndSplit step makes, for
the stack's objective and over its ranges (``--stack``; else the kit's defaults); then the
run continues exactly as ``mlops train`` does, with the best hyperparameters.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from mlops.commands.common import console, fail
from mlops.commands.local_training import train_and_show

DEFAULT_TRIALS = 30
TUNING_FILE = "tuning.json"

TuneOption = Annotated[
    bool,
    typer.Option(
        "--tune",
        help="Search hyperparameters first (Bayesian, as the pipeline's Tune step), "
        "then train with the best.",
    ),
]
TrialsOption = Annotated[
    int | None,
    typer.Option(
        "--trials",
        help=f"Trials for --tune, the defaults' included (default {DEFAULT_TRIALS}).",
    ),
]
TuneStackOption = Annotated[
    str | None,
    typer.Option(
        "--stack",
        "-s",
        help="Search this stack's ranges for its metric (mlops:training.tuning); "
        "default: the kit's ranges and roc_auc.",
    ),
]


def run(
    *,
    run_dir: Path,
    raw: Path | None,
    seed: int,
    tune: bool,
    trials: int | None,
    stack: str | None,
    project_dir: Path | None = None,
) -> None:
    """The whole ``mlops train --tune`` run; exits with an ``error:`` line on bad input."""
    from rich.table import Table

    from infra.config.settings import TrainingSettings
    from mlops.commands.common import stack_settings
    from mlops.commands.progress import Display
    from training import ingest, process
    from training import tune as tuning
    from training.contract import DataValidationError
    from training.search_space import DEFAULT_RANGES

    if not tune:
        given = "--trials" if trials is not None else "--stack"
        fail(f"{given} only applies to a tuned run: add --tune")
    trials = DEFAULT_TRIALS if trials is None else trials
    if trials < 1:
        fail(f"--trials {trials}: a search needs at least 1 trial (the defaults are the first)")
    if raw is not None and not raw.is_file():
        fail(f"--raw {raw}: no such file")
    if stack is not None:
        training_settings = stack_settings(stack, project_dir).training
        ranges = training_settings.tuning.search_ranges
    else:
        training_settings, ranges = TrainingSettings(), DEFAULT_RANGES
    metric = training_settings.metric_name

    data_root = run_dir / "data"
    try:
        with Display(console, steps=("ingest", "validate + split", "tune")) as display:
            display.step("ingest")
            raw_path = raw if raw is not None else Path(ingest.ingest(str(data_root)).uri)
            display.step("validate + split")
            split = process.run(raw_path, data_root / "processed", seed=seed)
            display.step("tune")
            counted = display.counter(f"tuning for validation:{metric}", "trials")
            counted(0, trials)
            result = tuning.tune(
                tuning.Split.read(split.output_dir),
                ranges,
                metric,
                trials,
                seed,
                progress=lambda t: counted(t.number + 1, trials),
            )
    except DataValidationError as exc:
        fail(f"data rejected before tuning (report in {data_root}/processed/report):\n{exc}")
    except ValueError as exc:
        fail(f"cannot tune: {exc}")

    table = Table(title=f"tuning: {result.trials} trials, validation:{metric}")
    table.add_column("hyperparameter")
    table.add_column("default", justify="right")
    table.add_column("best", justify="right")
    defaults = result.history[0].hyperparameters
    for name, value in result.best_params.items():
        table.add_row(name, _shown(getattr(defaults, name)), _shown(value))
    console.print(table)
    console.print(
        f"best validation {metric} {result.best_score:.4f} (trial {result.best.number}); "
        f"defaults {result.default_score:.4f} on the same split; "
        f"gain {result.gain:+.4f}; {result.trials} trials in {result.seconds:.1f}s",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )

    # Then what `mlops train` does, with the best hyperparameters.
    final = train_and_show(run_dir, raw_path, result.best.hyperparameters, " (tuned)")
    record = final.model_dir / TUNING_FILE  # next to model.joblib, once training wrote it
    record.write_text(json.dumps(result.as_json(), indent=2) + "\n", encoding="utf-8")
    console.print(
        f"model in {final.model_dir}; tuning record in {record}; "
        f"took {result.seconds + sum(final.seconds.values()):.1f}s",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def _shown(value: float | int) -> str:
    return str(value) if isinstance(value, int) else f"{value:.4g}"
