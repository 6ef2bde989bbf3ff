"""Attribution benchmark: Kernel SHAP's cost on 5,000 rows, and NDCG alarms on windows.

Run with ``make bench-attribution`` (or ``.venv/bin/python -m benchmarks.attribution``). It
trains the churn model with the kit's own ingest, split and training code (default
hyperparameters) in a scratch folder, then measures:

1. cost: attributions (training.explain with the job's defaults) for 5,000 rows, the shipped
   data's 5,000 customers; the median of ``--runs`` runs, against the model's own
   ``predict_proba`` on the same rows timed in the same run;
2. false alarms: the baseline is the evaluation job's ranking (its sample of the test split,
   seed 0); each of ``--windows`` unchanged windows of 200, 1,000 and 5,000 records is drawn
   with replacement from the test split and goes the job's way: a seeded uniform sample of at
   most ``--max-rows`` rows (monitoring.attribution.Reservoir), attributions, NDCG against
   the baseline; an alarm is NDCG below 0.9;
3. with ``--shifted``, detection on the same windows: inputs shifted so that another feature
   drives the model (half the customers on the international plan, abroad minutes x1.6),
   and a served model that leans on other features (trained with day usage shuffled).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from monitoring.attribution import DEFAULT_MAX_ROWS, Reservoir
from monitoring.capture import Row
from training import dataset as ds
from training import explain, manifest

console = Console()
WINDOWS = 30
SIZES = (200, 1_000, 5_000)
# The evaluation job's sample of the test split, whose ranking is the baseline.
EVALUATION_ROWS = explain.DEFAULT_EXPLAIN_ROWS


@dataclass(frozen=True)
class Cost:
    rows: int
    runs: int
    nsamples: int
    background_rows: int
    seconds: list[float]
    median_seconds: float
    rows_per_second: float
    predict_proba_seconds: float
    ratio: float


@dataclass(frozen=True)
class WindowResult:
    case: str  # "unchanged", "inputs shifted", "model leaning elsewhere"
    size: int
    windows: int
    explained_rows: int
    alarms: int
    ndcg_min: float
    ndcg_median: float
    ndcg_max: float


def train_models(scratch: Path, shifted: bool) -> tuple[Any, Any | None, pd.DataFrame]:
    """The kit's model (its ingest, split and training steps; evaluation, which explains too,
    is left out), optionally one trained without day usage signal, and the test split."""
    from training import ingest, process
    from training.features import Hyperparameters
    from training.train import TrainingPaths, train

    with console.status("training the churn model with the kit's training code"):
        raw = Path(ingest.ingest(str(scratch / "data")).uri)
        split = process.run(raw, scratch / "processed", seed=Hyperparameters().seed)
        processed = split.output_dir
        where = TrainingPaths(
            scratch / "model", processed / "train", processed / "validation", scratch / "out"
        )
        train(Hyperparameters(), where)
    test = pd.read_csv(processed / "test" / "test.csv").loc[:, list(ds.FEATURES)]
    model = manifest.load_verified_model(where.model_dir)
    if not shifted:
        return model, None, test
    frame = pd.read_csv(processed / "train" / "train.csv")
    order = np.random.default_rng(0).permutation(len(frame))
    for name in ("total_day_minutes", "total_day_charge"):
        frame[name] = frame[name].to_numpy()[order]
    (scratch / "shuffled").mkdir()
    frame.to_csv(scratch / "shuffled" / "train.csv", index=False)
    leaning = TrainingPaths(
        scratch / "leaning", scratch / "shuffled", processed / "validation", scratch / "out"
    )
    with console.status("training a model that leans on other features"):
        train(Hyperparameters(), leaning)
    return model, manifest.load_verified_model(leaning.model_dir), test


def measure_cost(model: Any, rows: pd.DataFrame, runs: int) -> Cost:
    seconds, floor = [], []
    model.predict_proba(rows.iloc[:10])  # warm-up: lazy imports and thread pools
    for run in range(runs):
        began = time.perf_counter()
        model.predict_proba(rows)
        floor.append(time.perf_counter() - began)
        began = time.perf_counter()
        explain.explain(model, rows, seed=run)
        seconds.append(time.perf_counter() - began)
        console.print(f"  run {run + 1}: {seconds[-1]:.1f}s (predict_proba {floor[-1]:.3f}s)")
    median = statistics.median(seconds)
    return Cost(
        rows=len(rows),
        runs=runs,
        nsamples=explain.DEFAULT_NSAMPLES,
        background_rows=explain.DEFAULT_BACKGROUND_ROWS,
        seconds=[round(s, 2) for s in seconds],
        median_seconds=round(median, 2),
        rows_per_second=round(len(rows) / median, 1),
        predict_proba_seconds=round(statistics.median(floor), 4),
        ratio=round(median / statistics.median(floor), 1),
    )


def international(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    out = rows.copy()
    out["total_intl_minutes"] = out["total_intl_minutes"] * 1.6
    out["international_plan"] = np.where(rng.random(len(out)) < 0.5, "yes", "no")
    return out


def job_sample(rows: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """The rows the job explains: its reservoir over the window's rows, in stream order."""
    sample = Reservoir(max_rows, seed)
    for i in range(len(rows)):
        sample.add(Row((str(i),), ()))
    return rows.iloc[[int(r.categorical[0]) for r in sample.rows]].reset_index(drop=True)


def measure_windows(
    case: str,
    model: Any,
    baseline: dict[str, float],
    test: pd.DataFrame,
    size: int,
    windows: int,
    max_rows: int,
    change: Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame] | None = None,
) -> WindowResult:
    rng = np.random.default_rng([2026, size])
    scores = []
    for window in range(windows):
        rows = test.iloc[rng.integers(0, len(test), size=size)].reset_index(drop=True)
        if change is not None:
            rows = change(rows, rng)
        sample = job_sample(rows, max_rows, seed=0)
        live = explain.global_attributions(explain.explain(model, sample, seed=0))
        scores.append(explain.ndcg(baseline, live))
        console.print(f"  {case} {size} #{window}: NDCG {scores[-1]:.4f}", highlight=False)
    return WindowResult(
        case=case,
        size=size,
        windows=windows,
        explained_rows=min(size, max_rows),
        alarms=sum(s < explain.NDCG_THRESHOLD for s in scores),
        ndcg_min=round(min(scores), 4),
        ndcg_median=round(statistics.median(scores), 4),
        ndcg_max=round(max(scores), 4),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="Timed runs of the cost (median).")
    parser.add_argument("--rows", type=int, default=5_000, help="Rows whose cost is timed.")
    parser.add_argument("--windows", type=int, default=WINDOWS, help="Windows per size.")
    parser.add_argument(
        "--sizes", default=",".join(map(str, SIZES)), help="Window sizes in records."
    )
    parser.add_argument("--max-rows", type=int, default=DEFAULT_MAX_ROWS)
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument("--skip-windows", action="store_true")
    parser.add_argument("--shifted", action="store_true", help="Measure detection too.")
    parser.add_argument("--json", type=Path, help="Write the results here.")
    args = parser.parse_args(argv)
    sizes = tuple(int(s) for s in args.sizes.split(","))
    results: dict[str, Any] = {
        "settings": {
            "nsamples": explain.DEFAULT_NSAMPLES,
            "background_rows": explain.DEFAULT_BACKGROUND_ROWS,
            "max_rows": args.max_rows,
            "openmp_threads": 1,
        }
    }
    with tempfile.TemporaryDirectory(prefix="bench-attribution-") as scratch:
        model, leaning, test = train_models(Path(scratch), args.shifted)
        if not args.skip_cost:
            rows = ds.load_shipped().loc[:, list(ds.FEATURES)]
            rows = rows.sample(n=args.rows, replace=args.rows > len(rows), random_state=0)
            console.print(f"cost: attributions for {len(rows):,} rows")
            results["cost"] = asdict(measure_cost(model, rows.reset_index(drop=True), args.runs))
        if not args.skip_windows:
            evaluation = test.sample(n=EVALUATION_ROWS, random_state=0).reset_index(drop=True)
            baseline = explain.global_attributions(explain.explain(model, evaluation, seed=0))
            cases: list[tuple[str, Any, Any]] = [("unchanged", model, None)]
            if args.shifted and leaning is not None:
                cases += [
                    ("inputs shifted", model, international),
                    ("model leaning", leaning, None),
                ]
            found = [
                measure_windows(name, m, baseline, test, size, args.windows, args.max_rows, change)
                for name, m, change in cases
                for size in sizes
            ]
            results["windows"] = [asdict(r) for r in found]
    _print(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _print(results: dict[str, Any]) -> None:
    cost = results.get("cost")
    if cost:
        console.print(
            f"attributions for {cost['rows']:,} rows: median {cost['median_seconds']}s of "
            f"{cost['runs']} ({cost['rows_per_second']} rows/s; nsamples {cost['nsamples']}, "
            f"{cost['background_rows']} background row(s)); predict_proba on the same rows "
            f"{cost['predict_proba_seconds']}s: {cost['ratio']}x"
        )
    table = Table(title="NDCG alarms (below 0.9) per window size")
    for column in ("case", "records", "explained", "alarms", "NDCG min", "median", "max"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for r in results.get("windows", []):
        table.add_row(
            r["case"], f"{r['size']:,}", str(r["explained_rows"]),
            f"{r['alarms']}/{r['windows']}", f"{r['ndcg_min']:.4f}",
            f"{r['ndcg_median']:.4f}", f"{r['ndcg_max']:.4f}",
        )  # fmt: skip
    if results.get("windows"):
        console.print(table)


if __name__ == "__main__":
    sys.exit(main())
