"""Sharding benchmark: the drift job on 4,000,000 capture records, in 1, 2 and 4 shards.

Run with ``make bench-sharding`` (or ``.venv/bin/python -m benchmarks.sharding``). The
capture comes from benchmarks/drift.py's generator (24 hour files in SageMaker's layout),
written once under build/bench/sharding-data and reused. Each configuration runs in a fresh
process:

- 1 shard: the single pass (``monitoring.drift.run``), no extra processes;
- N shards: the window's files split as ``--shards N`` splits them, each shard summarised in
  its own spawned process (``monitoring.shards.fan_out``), then merged.

Reported: wall time (median of --repeat runs), each shard process's peak RSS and records/s,
and the largest absolute difference between the merged and the single-pass PSI, chi-square
statistic, p-value and corrected p-value over all features (0 expected: the merge adds
integer counts). On SageMaker each shard is its own instance, so wall time there is the
slowest shard plus the merge, not what N processes on this machine's cores show.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics as stats
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.drift import END, HOURS, generate

console = Console()
DATA = Path("build/bench/sharding-data")
FEATURE_FIELDS = ("psi", "statistic", "p_value", "p_value_adjusted")


@dataclass(frozen=True)
class ShardRun:
    records: int
    seconds: float
    peak_rss_mb: float


@dataclass(frozen=True)
class Measured:
    shards: int
    wall_seconds: float
    shard_runs: tuple[ShardRun, ...]
    features: dict[str, list[float]]  # name -> FEATURE_FIELDS, unrounded


@dataclass(frozen=True)
class Row:
    shards: int
    runs: int
    wall_seconds_median: float
    wall_seconds_all: list[float]
    peak_rss_mb_per_shard: list[float]
    records_per_second_per_shard: list[float]
    max_abs_difference: float  # against the single pass, over FEATURE_FIELDS


def ensure_data(records: int) -> Path:
    """The capture and baseline under DATA, generated once per record count."""
    marker = DATA / "records.json"
    if marker.is_file() and json.loads(marker.read_text()).get("records") == records:
        return DATA
    start = time.perf_counter()
    DATA.mkdir(parents=True, exist_ok=True)
    rows = generate(DATA, records)
    marker.write_text(json.dumps({"records": records, "rows": rows}))
    console.print(f"generated {records:,} records in {time.perf_counter() - start:.0f}s")
    return DATA


def _options(root: Path, shards: int) -> object:
    from monitoring import drift

    return drift.parse_options(
        ["--capture", str(root / "capture"), "--baseline", str(root / "baseline.json"),
         "--output", str(root / "report"), "--end", END.isoformat(),
         "--window-hours", str(HOURS), "--shards", str(shards)]
    )  # fmt: skip


def measured_summarise(task: object) -> tuple[object, ShardRun]:
    """A shard's summary, with its own records, seconds and peak RSS (a spawned worker)."""
    from monitoring import drift_shards

    assert isinstance(task, drift_shards.ShardTask)
    start = time.perf_counter()
    summary = drift_shards.summarise(task)
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return summary, ShardRun(summary.body["counts"]["lines"], seconds, rss)


def worker(root: Path, shards: int) -> Measured:
    """One configuration, in this (fresh) process."""
    from monitoring import drift, drift_shards
    from monitoring import shards as sharding

    start = time.perf_counter()
    options = _options(root, shards)
    assert isinstance(options, drift.Options)
    if shards == 1:
        report = drift.run(options, log=lambda _: None)
        seconds = time.perf_counter() - start
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        runs: tuple[ShardRun, ...] = (ShardRun(report.counts.lines, seconds, rss),)
    else:
        baseline = drift.load_baseline(options)
        listing = drift.list_window(options, drift._store(options), lambda _: None)
        tasks = [
            drift_shards.ShardTask(options, baseline, files, f"local-{i}")
            for i, files in enumerate(sharding.partition(listing.files, shards))
        ]
        results = sharding.fan_out(measured_summarise, tasks)
        parts = [drift_shards.from_summary(s, baseline) for s, _ in results]  # type: ignore[arg-type]
        total = drift_shards.merge(parts, baseline)
        report = drift.build_report(
            options, baseline, listing, total.counts, total.state, 0.0, total.files
        )
        seconds = time.perf_counter() - start
        runs = tuple(run for _, run in results)
    features = {f.name: [float(getattr(f, k)) for k in FEATURE_FIELDS] for f in report.features}
    return Measured(shards, seconds, runs, features)


def run_fresh(root: Path, shards: int) -> Measured:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.sharding", "--worker", str(shards), "--data", str(root)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    raw = json.loads(out.stdout.strip().splitlines()[-1])
    runs = tuple(ShardRun(**r) for r in raw["shard_runs"])
    return Measured(raw["shards"], raw["wall_seconds"], runs, raw["features"])


def largest_difference(a: dict[str, list[float]], b: dict[str, list[float]]) -> float:
    assert a.keys() == b.keys()
    worst = 0.0
    for name in a:
        for x, y in zip(a[name], b[name], strict=True):
            if x != y:  # NaN == NaN counts as equal here: both had no test
                worst = max(worst, abs(x - y)) if x == x and y == y else float("inf")
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=4_000_000)
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument(
        "--repeat", type=int, default=3, help="Runs of the 1- and 2-shard configurations."
    )
    parser.add_argument("--json", type=Path, default=Path("build/bench/sharding.json"))
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, default=DATA, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        print(json.dumps(asdict(worker(args.data, args.worker))))
        return 0
    root = ensure_data(args.records)
    measured: dict[int, list[Measured]] = {}
    for shards in args.shards:
        repeat = args.repeat if shards <= 2 else 1
        measured[shards] = []
        for _ in range(repeat):
            measured[shards].append(run_fresh(root, shards))
            m = measured[shards][-1]
            console.print(f"{shards} shard(s): {m.wall_seconds:.1f}s")
    single = measured[min(measured)][0].features
    rows = []
    for shards, runs in measured.items():
        walls = [m.wall_seconds for m in runs]
        median_run = sorted(runs, key=lambda m: m.wall_seconds)[len(runs) // 2]
        rows.append(
            Row(
                shards=shards,
                runs=len(runs),
                wall_seconds_median=stats.median(walls),
                wall_seconds_all=walls,
                peak_rss_mb_per_shard=[r.peak_rss_mb for r in median_run.shard_runs],
                records_per_second_per_shard=[r.records / r.seconds for r in median_run.shard_runs],
                max_abs_difference=max(largest_difference(single, m.features) for m in runs),
            )
        )
    table = Table(
        title=f"drift job over {args.records:,} capture records ({os.cpu_count()} CPUs, shared)"
    )
    for column in ("shards", "runs", "wall s (median)", "peak RSS MB / shard",
                   "records/s / shard", "max |diff| vs 1 pass"):  # fmt: skip
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            str(r.shards), str(r.runs), f"{r.wall_seconds_median:.1f}",
            " ".join(f"{v:.0f}" for v in r.peak_rss_mb_per_shard),
            " ".join(f"{v:,.0f}" for v in r.records_per_second_per_shard),
            f"{r.max_abs_difference:g}",
        )  # fmt: skip
    console.print(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
