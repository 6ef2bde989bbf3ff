"""Local batch inference throughput against the model's raw ``predict_proba`` floor.

Run with ``.venv/bin/python -m benchmarks.batch --json build/bench/batch.json``. On
1,000,000 CSV rows (test-split rows drawn with replacement, generated once under
build/bench/batch/), it times, interleaved and ``--repeats`` times each:

1. ``inference.batch.run``: the whole local transform (streaming read, InputFilter,
   6 MB mini-batches through the handler's batch mode, join, ``.out`` file, the split into
   predictions/errors, summary and capture manifests);
2. the floor: ``predict_proba`` of the same model on the same rows, already parsed into a
   DataFrame (parsing excluded), in one call.

Reported: medians in rows per second and the batch run's share of the floor's speed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console

from inference import batch, handler
from inference import batch_contract as contract
from training import dataset as ds
from training import local as local_run
from training.features import Hyperparameters

console = Console()
WORK = Path("build/bench/batch")


@dataclass(frozen=True)
class Result:
    rows: int
    repeats: int
    batch_seconds: list[float]
    floor_seconds: list[float]

    @property
    def batch_rows_per_second(self) -> float:
        return self.rows / statistics.median(self.batch_seconds)

    @property
    def floor_rows_per_second(self) -> float:
        return self.rows / statistics.median(self.floor_seconds)


def model_dir(work: Path) -> tuple[Path, pd.DataFrame]:
    cached = work / "model"
    sample = work / "sample.csv"
    if (cached / "manifest.json").is_file() and sample.is_file():
        return cached, pd.read_csv(sample)
    # As benchmarks/serving.py: `mlops train`'s local run, default hyperparameters.
    run = local_run.run(work / "train", hyperparameters=Hyperparameters())
    test = pd.read_csv(work / "train" / "data" / "processed" / "test" / "test.csv")
    rows = test.loc[:, list(ds.FEATURES)]
    shutil.copytree(run.model_dir, cached, dirs_exist_ok=True)
    rows.to_csv(sample, index=False)
    return cached, rows


def input_file(work: Path, rows: pd.DataFrame, count: int, order: tuple[str, ...]) -> Path:
    """``count`` rows, an id then the features in training order; written once."""
    path = work / "input" / f"rows-{count}.csv"
    if path.is_file():
        return path
    picks = np.random.default_rng(7).integers(0, len(rows), size=count)
    frame = rows.loc[:, list(order)].iloc[picks].reset_index(drop=True)
    frame.insert(0, "id", [f"r{i:08d}" for i in range(count)])
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    frame.to_csv(partial, index=False, header=False)
    partial.rename(path)
    return path


def measure(work: Path, count: int, repeats: int) -> Result:
    model_path, rows = model_dir(work)
    model = handler.model_fn(str(model_path))
    path = input_file(work, rows, count, model.feature_order)
    features = pd.read_csv(path, header=None, names=["id", *model.feature_order])
    features = features.drop(columns="id").astype(dict.fromkeys(model.categorical, str))
    batch_times, floor_times = [], []
    for attempt in range(repeats):
        began = time.perf_counter()
        model.pipeline.predict_proba(features)
        floor_times.append(time.perf_counter() - began)
        output = work / "output"
        shutil.rmtree(output, ignore_errors=True)
        result = batch.run(model_path, path.parent, output, contract.CSV)
        assert result.summary.scored == count, result.summary
        batch_times.append(result.seconds)
        console.print(
            f"run {attempt + 1}/{repeats}: batch {result.seconds:.1f} s, "
            f"floor {floor_times[-1]:.2f} s"
        )
    return Result(count, repeats, batch_times, floor_times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=WORK)
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args(argv)
    result = measure(args.work, args.rows, args.repeats)
    share = result.batch_rows_per_second / result.floor_rows_per_second
    console.print(
        f"{result.rows:,} rows, median of {result.repeats}: local batch "
        f"{result.batch_rows_per_second:,.0f} rows/s; predict_proba floor "
        f"{result.floor_rows_per_second:,.0f} rows/s; batch runs at {100 * share:.1f}% of "
        "the floor"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        document = asdict(result) | {
            "batch_rows_per_second": result.batch_rows_per_second,
            "floor_rows_per_second": result.floor_rows_per_second,
            "batch_share_of_floor": share,
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
