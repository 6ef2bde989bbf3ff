"""Local tuning benchmark: ``mlops train --tune``'s search on the shipped churn data.

Run with ``.venv/bin/python -m benchmarks.tuning`` (``--json`` for the results file). It
splits the shipped dataset as the pipeline's ValidateAndSplit step does (seed 42), then runs
``training.tune`` over the kit's default ranges for ``--trials`` trials, ``--repeats`` times
with sampler seeds 42, 43, ...: the defaults are trial 0 of every run, so the baseline is
measured in the same run as the search. For each run: wall time, the best and the defaults'
validation score, and both models' score on the test split (which the search never sees,
so a gain there is not the search fitting the validation split's noise). Medians last.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.status import Status
from rich.table import Table
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from training import ingest, process
from training.features import Hyperparameters, build_pipeline, split_xy
from training.metrics import binary_classification_metrics, headline
from training.search_space import DEFAULT_RANGES
from training.train import read_channel
from training.tune import Split, Trial, tune

console = Console(width=150)  # the table whole, in a log or CI too
SPLIT_SEED = 42


@dataclass(frozen=True)
class Run:
    seed: int
    trials: int
    seconds: float
    seconds_per_trial: float
    best_validation: float
    default_validation: float
    validation_gain: float
    best_test: float
    default_test: float
    test_gain: float
    best_trial: int


def _test_score(hp: Hyperparameters, split: Split, test: Path, metric: str) -> float:
    with threadpool_limits(limits=1, user_api="openmp"):  # as training.tune's trials fit
        model = build_pipeline(hp).fit(*split_xy(split.train))
    x, y = split_xy(read_channel(test)[0])
    report = binary_classification_metrics(y, model.predict_proba(x)[:, 1], seed=hp.seed)
    return headline(report)[metric]


def _shown_on(status: Status, label: str, trials: int) -> Callable[[Trial], None]:
    def show(trial: Trial) -> None:
        status.update(f"{label}: trial {trial.number + 1}/{trials}")

    return show


def measure(trials: int, repeats: int, metric: str) -> list[Run]:
    root = Path(tempfile.mkdtemp(prefix="bench-tuning-"))
    raw = Path(ingest.ingest(str(root / "data")).uri)
    processed = process.run(raw, root / "processed", seed=SPLIT_SEED).output_dir
    split = Split.read(processed)
    runs = []
    for seed in range(SPLIT_SEED, SPLIT_SEED + repeats):
        started = time.perf_counter()
        with console.status(f"seed {seed}: tuning") as status:
            result = tune(
                split,
                DEFAULT_RANGES,
                metric,
                trials,
                seed,
                progress=_shown_on(status, f"seed {seed}", trials),
            )
        seconds = time.perf_counter() - started
        best_test = _test_score(result.best.hyperparameters, split, processed / "test", metric)
        default_test = _test_score(
            result.history[0].hyperparameters, split, processed / "test", metric
        )
        runs.append(
            Run(
                seed=seed,
                trials=result.trials,
                seconds=seconds,
                seconds_per_trial=seconds / result.trials,
                best_validation=result.best_score,
                default_validation=result.default_score,
                validation_gain=result.gain,
                best_test=best_test,
                default_test=default_test,
                test_gain=best_test - default_test,
                best_trial=result.best.number,
            )
        )
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--metric", default="roc_auc")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args(argv)
    if args.trials < 1 or args.repeats < 1:
        parser.error("--trials and --repeats must be at least 1")

    runs = measure(args.trials, args.repeats, args.metric)
    table = Table(title=f"tuning: {args.trials} trials, validation:{args.metric}, default ranges")
    for column in ("seed", "seconds", "s/trial", "best val", "default val", "gain val",
                   "best test", "default test", "gain test", "best trial"):  # fmt: skip
        table.add_column(column, justify="right")
    for r in runs:
        table.add_row(
            str(r.seed), f"{r.seconds:.1f}", f"{r.seconds_per_trial:.2f}",
            f"{r.best_validation:.4f}", f"{r.default_validation:.4f}", f"{r.validation_gain:+.4f}",
            f"{r.best_test:.4f}", f"{r.default_test:.4f}", f"{r.test_gain:+.4f}", str(r.best_trial),
        )  # fmt: skip
    medians = {
        field: statistics.median(getattr(r, field) for r in runs)
        for field in ("seconds", "seconds_per_trial", "best_validation", "default_validation",
                      "validation_gain", "best_test", "default_test", "test_gain")
    }  # fmt: skip
    table.add_row(
        "median", f"{medians['seconds']:.1f}", f"{medians['seconds_per_trial']:.2f}",
        f"{medians['best_validation']:.4f}", f"{medians['default_validation']:.4f}",
        f"{medians['validation_gain']:+.4f}", f"{medians['best_test']:.4f}",
        f"{medians['default_test']:.4f}", f"{medians['test_gain']:+.4f}", "",
    )  # fmt: skip
    console.print(table)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "trials": args.trials,
            "repeats": args.repeats,
            "metric": args.metric,
            "runs": [asdict(r) for r in runs],
            "median": medians,
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
