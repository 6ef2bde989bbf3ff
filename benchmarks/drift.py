"""Drift-job benchmark: throughput and peak memory on 1,000,000 capture records.

Run with ``make bench-drift`` (or ``.venv/bin/python -m benchmarks.drift``). It writes a
day of synthetic capture in SageMaker's layout (rows resampled from the shipped churn data,
a realistic mix of single-row CSV, JSON and base64 requests and small batches, 0.2%
malformed lines, half the day with a shifted usage feature), then runs, each in a fresh
process so ``ru_maxrss`` is that run's own peak:

1. the drift job (``python -m monitoring.drift``), streaming, on its fast parsing path
   (orjson, batches of CSV bodies through pyarrow) and, in the same run, on the previous
   pure-``json`` path (``monitoring.capture.FAST = False``) and on the fast path without
   orjson (as in an image without the bundle's wheel); each the median of ``--repeats`` runs;
2. when ``evidently`` is installed (``pip install -e '.[bench]'``), its DataDriftPreset on
   the same records, which needs them as one pandas DataFrame (load time and memory shown
   separately from the report itself).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

console = Console()
END = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
HOURS = 24
MALFORMED_SHARE = 0.002


@dataclass(frozen=True)
class Result:
    tool: str
    records: int
    rows: int
    seconds: float
    records_per_second: float
    peak_rss_mb: float
    notes: str
    rows_per_second: float = 0.0
    cpu_seconds: float = 0.0  # user + system: under load, wall time also counts waiting
    records_per_cpu_second: float = 0.0
    runs: tuple[float, ...] = ()  # every run's wall seconds; ``seconds`` is their median
    # monitoring.drift.run's own timer (drift.json "seconds"): no interpreter start or imports.
    run_seconds: float = 0.0
    records_per_run_second: float = 0.0


def generate(root: Path, records: int, seed: int = 7) -> int:
    """Write ``records`` capture lines over HOURS hour folders; returns the rows they hold."""
    from training import baseline
    from training import dataset as ds

    frame = ds.load_shipped().loc[:, list(ds.FEATURES)]
    rng = np.random.default_rng(seed)
    numeric = frame.loc[:, list(ds.NUMERIC_FEATURES)].to_numpy(dtype=np.float64)
    categorical = frame.loc[:, list(ds.CATEGORICAL_FEATURES)].to_numpy(dtype=object)
    day_minutes = ds.NUMERIC_FEATURES.index("total_day_minutes")
    (root / "baseline.json").write_text(json.dumps(baseline.compute(frame)))
    per_hour = records // HOURS
    total_rows = 0
    for hour in range(HOURS):
        when = END - timedelta(hours=HOURS - hour)
        folder = root / "capture" / "churn-prod" / "AllTraffic" / when.strftime("%Y/%m/%d/%H")
        folder.mkdir(parents=True, exist_ok=True)
        count = per_hour if hour < HOURS - 1 else records - per_hour * (HOURS - 1)
        # Mostly single rows, some small batches, as online traffic looks.
        sizes = rng.choice([1, 1, 1, 1, 1, 1, 1, 2, 5, 10], size=count)
        picks = rng.integers(0, len(frame), size=int(sizes.sum()))
        kinds = rng.random(count)
        stamp = when.strftime("%Y-%m-%dT%H:") + "{:02d}:{:02d}Z"
        lines = []
        offset = 0
        for i in range(count):
            rows = picks[offset : offset + sizes[i]]
            offset += sizes[i]
            nums = numeric[rows]
            if hour >= HOURS // 2:  # usage drifts in the second half of the day
                nums = nums.copy()
                nums[:, day_minutes] *= 1.4
            cats = categorical[rows]
            lines.append(_line(nums, cats, kinds[i], stamp.format(i * 60 // count, i % 60)))
        total_rows += int(sizes[kinds >= MALFORMED_SHARE].sum())
        (folder / "part-0000.jsonl").write_text("\n".join(lines) + "\n")
    return total_rows


def _line(nums: np.ndarray, cats: np.ndarray, kind: float, when: str) -> str:
    if kind < MALFORMED_SHARE:
        return '{"captureData": {"endpointInput": '  # truncated: a malformed line
    csv = "\n".join(
        ",".join([*c, *(f"{v:g}" for v in n)]) for c, n in zip(cats.tolist(), nums, strict=True)
    )
    if kind < 0.70:
        data, content_type, encoding = csv, "text/csv", "CSV"
    elif kind < 0.85:
        instances = [[*c, *n] for c, n in zip(cats.tolist(), nums.tolist(), strict=True)]
        data, content_type, encoding = (
            json.dumps({"instances": instances}),
            "application/json",
            "JSON",
        )
    else:
        data, content_type, encoding = base64.b64encode(csv.encode()).decode(), "text/csv", "BASE64"
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {"observedContentType": content_type, "mode": "INPUT",
                                  "data": data, "encoding": encoding},
                "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT",
                                   "data": "no,0.9,0.1\n", "encoding": "CSV"},
            },
            "eventMetadata": {"eventId": "0", "inferenceTime": when},
            "eventVersion": "0",
        },
        separators=(",", ":"),
    )  # fmt: skip


def _measure(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and stdout of a fresh process."""
    seconds, rss, out, _ = _measure_cpu(command, env)
    return seconds, rss, out


def _measure_cpu(
    command: list[str], env: dict[str, str] | None = None
) -> tuple[float, float, str, float]:
    """Wall seconds, peak RSS (MB), stdout and CPU seconds of a fresh process."""
    code = (
        "import resource, subprocess, sys, time, json\n"
        "start = time.perf_counter()\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "seconds = time.perf_counter() - start\n"
        "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "rss, cpu = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime\n"
        "print(json.dumps({'code': done.returncode, 'seconds': seconds, 'rss': rss,\n"
        "                  'cpu': cpu, 'out': done.stdout, 'err': done.stderr[-2000:]}))\n"
    )
    # A wrapper process, so RUSAGE_CHILDREN holds exactly the measured run.
    raw = subprocess.run(
        [sys.executable, "-c", code, *command],
        capture_output=True, text=True, check=True, env={**os.environ, **(env or {})},
    )  # fmt: skip
    result = json.loads(raw.stdout)
    if result["code"] != 0:
        raise RuntimeError(f"{command[:3]} failed: {result['err']}")
    return result["seconds"], result["rss"], result["out"], result["cpu"]


# The drift job's parsing paths, each the job's own main() in a fresh process; the report
# is the same on every path (tests/test_capture_fast_path.py).
PATHS = {
    "drift job, fast parsing": "",
    "drift job, fast parsing without orjson": "sys.modules['orjson'] = None\n",
    "drift job, previous json parsing": "from monitoring import capture\ncapture.FAST = False\n",
}


def run_job(root: Path, records: int, rows: int, path: str, repeats: int) -> Result:
    argv = ["--capture", str(root / "capture"), "--baseline", str(root / "baseline.json"),
            "--output", str(root / "report"), "--end", END.isoformat(),
            "--window-hours", str(HOURS)]  # fmt: skip
    code = f"import sys\n{PATHS[path]}from monitoring import drift\nsys.exit(drift.main())\n"
    runs, timers = [], []
    for _ in range(repeats):
        runs.append(_measure_cpu([sys.executable, "-c", code, *argv]))
        timers.append(json.loads((root / "report" / "drift.json").read_text())["seconds"])
    seconds = statistics.median(run[0] for run in runs)
    timer = statistics.median(timers)
    cpu = statistics.median(run[3] for run in runs)
    rss = max(run[1] for run in runs)
    report = json.loads((root / "report" / "drift.json").read_text())
    assert report["records"]["rows"] == rows, (report["records"], rows)
    notes = (
        f"drifted: {', '.join(report['drifted_features']) or 'none'}; "
        f"malformed {report['records']['malformed']}; drift.run's own timer {timer:.1f}s "
        f"({records / timer:,.0f} records/s)"
    )
    return Result(
        path, records, rows, seconds, records / seconds, rss, notes,
        run_seconds=timer, records_per_run_second=records / timer,
        rows_per_second=rows / seconds, cpu_seconds=cpu, records_per_cpu_second=records / cpu,
        runs=tuple(round(run[0], 2) for run in runs),
    )  # fmt: skip


def evidently_worker(root: Path) -> None:
    """In its own process: load the capture into a DataFrame, run DataDriftPreset."""
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    from monitoring import baseline as baselines
    from monitoring.capture import RecordParser
    from monitoring.store import LocalStore
    from training import dataset as ds

    start = time.perf_counter()
    base = baselines.load(str(root / "baseline.json"))
    parser = RecordParser(base, END - timedelta(hours=HOURS), END)
    store = LocalStore()
    numeric: list[tuple[float, ...]] = []
    categorical: list[tuple[str, ...]] = []
    for name in store.files(str(root / "capture")):
        for line in store.lines(name):
            for row in parser.parse(line):
                numeric.append(row.numeric)
                categorical.append(row.categorical)
    current = pd.concat(
        [
            pd.DataFrame(categorical, columns=[f.name for f in base.categorical]),
            pd.DataFrame(numeric, columns=[f.name for f in base.numeric]),
        ],
        axis=1,
    )
    del numeric, categorical
    reference = ds.load_shipped().loc[:, list(ds.FEATURES)]
    loaded = time.perf_counter() - start
    snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    drifted = [m for m in snapshot.dict()["metrics"] if "ValueDrift" in str(m.get("metric_id", ""))]
    report_seconds = time.perf_counter() - start - loaded
    print(json.dumps({"load_seconds": loaded, "report_seconds": report_seconds,
                      "rows": len(current), "metrics": len(drifted),
                      "frame_mb": current.memory_usage(deep=True).sum() / 2**20}))  # fmt: skip


def run_evidently(root: Path, records: int, rows: int) -> Result | None:
    try:
        import evidently  # noqa: F401
    except ImportError:
        return None
    env = {"DO_NOT_TRACK": "1", "ITERATIVE_DO_NOT_TRACK": "1"}  # no telemetry calls
    seconds, rss, out = _measure(
        [sys.executable, "-m", "benchmarks.drift", "--evidently-worker", str(root)], env
    )
    info = json.loads(out.strip().splitlines()[-1])
    assert info["rows"] == rows
    notes = (
        f"DataFrame load {info['load_seconds']:.1f}s ({info['frame_mb']:.0f} MB deep), "
        f"DataDriftPreset {info['report_seconds']:.1f}s"
    )
    return Result(
        "evidently 0.7 DataDriftPreset", records, rows, seconds, records / seconds, rss, notes
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--json", type=Path, default=Path("build/bench/drift.json"))
    parser.add_argument("--repeats", type=int, default=3, help="Runs per parsing path (median).")
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--evidently-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.evidently_worker:
        evidently_worker(args.evidently_worker)
        return 0
    with tempfile.TemporaryDirectory(prefix="drift-bench-") as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        rows = generate(root, args.records)
        size = sum(p.stat().st_size for p in (root / "capture").rglob("*.jsonl"))
        console.print(
            f"generated {args.records:,} records ({rows:,} rows, {size / 2**20:.0f} MB of JSONL) "
            f"in {time.perf_counter() - start:.0f}s"
        )
        results = [run_job(root, args.records, rows, path, args.repeats) for path in PATHS]
        other = None if args.skip_evidently else run_evidently(root, args.records, rows)
        if other is not None:
            results.append(other)
    table = Table(title=f"drift over {args.records:,} capture records ({os.cpu_count()} CPUs)")
    columns = ("tool", "seconds", "records/s", "rows/s", "records/CPU s", "peak RSS MB", "notes")
    for column in columns:
        table.add_column(column, justify="left" if column in ("tool", "notes") else "right")
    for r in results:
        per_cpu = f"{r.records_per_cpu_second:,.0f}" if r.cpu_seconds else ""
        rows_per_second = f"{r.rows_per_second:,.0f}" if r.rows_per_second else ""
        table.add_row(r.tool, f"{r.seconds:.1f}", f"{r.records_per_second:,.0f}",
                      rows_per_second, per_cpu, f"{r.peak_rss_mb:.0f}", r.notes)  # fmt: skip
    console.print(table)
    if other is None and not args.skip_evidently:
        console.print("evidently is not installed (pip install -e '.[bench]'): no comparison")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
