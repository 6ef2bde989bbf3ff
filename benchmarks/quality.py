"""Quality-job benchmark: 1,000,000 captured predictions joined with 1,000,000 labels.

Run with ``.venv/bin/python -m benchmarks.quality`` (``--json`` for the results file). It
writes a day of capture in SageMaker's layout (rows resampled from the shipped churn data,
one row per request, the handler's CSV and JSON answers, some base64, 0.1% malformed
lines) and the labels in SageMaker's ground-truth layout an hour after each prediction
(99% of the predictions labelled, 1% of the labels orphans, 0.1% malformed), plus an
evaluation.json of the same model on 5,000 held-out rows. Then it runs, each in a fresh
process so ``ru_maxrss`` is that run's own peak, ``--repeats`` times, reporting medians:

1. the quality job (``python -m monitoring.quality``), streaming both sides;
2. the same with bias drift on a facet (``--facet international_plan=yes``), which also
   parses every captured request;
3. when ``evidently`` is installed (``pip install -c constraints.txt -e '.[bench]'``), its
   ClassificationPreset on the same predictions and labels, which needs them joined in one
   pandas DataFrame (read with the same parsers; load and join time shown apart from the
   report itself).

Scores are synthetic (a logistic of the label plus noise, AUC about 0.9), so the benchmark
needs no trained model; the bytes the jobs read are what the handler and capture write.

With ``--shards 1,2`` it measures the sharded job instead of 2 and 3: for each N, the
capture files are dealt into N folders (symlinks, the layout SageMaker's ShardedByS3Key
download gives each instance), each shard's ``--summary-to`` step runs on its own (wall
time and peak RSS per shard, as on N instances), then the ``--merge-from`` step; the merged
quality.json is checked equal to the single pass's (all but its timer). The N-instance time
is the slowest shard plus the merge. The data are written in 24 hourly files, so N divides
the work unevenly unless it divides 24.
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
MALFORMED_SHARE = 0.001
UNLABELLED_SHARE = 0.01
ENDPOINT = "churn-prod"
SHA = "0" * 64


@dataclass(frozen=True)
class Result:
    tool: str
    predictions: int
    labels: int
    seconds: float  # median over the repeats
    records_per_second: float  # predictions per second
    peak_rss_mb: float  # median
    runs: int
    notes: str


def _scores(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return 1 / (1 + np.exp(-(rng.normal(size=len(labels)) + 3.2 * labels - 3.0)))


def generate(root: Path, records: int, seed: int = 7) -> tuple[int, int]:
    """Capture, ground truth, baseline.json and evaluation.json under ``root``; returns the
    numbers of capture and label lines written."""
    from training import baseline
    from training import dataset as ds
    from training.metrics import binary_classification_metrics

    rng = np.random.default_rng(seed)
    frame = ds.load_shipped()
    features = frame.loc[:, list(ds.FEATURES)]
    (root / "baseline.json").write_text(json.dumps(baseline.compute(features)))
    truth = (frame[ds.TARGET] == ds.POSITIVE_LABEL).to_numpy(np.int64)
    held_out = rng.integers(0, len(frame), 5000)
    evaluation = binary_classification_metrics(truth[held_out], _scores(truth[held_out], rng))
    (root / "evaluation.json").write_text(json.dumps(evaluation))
    cells = [",".join(str(v) for v in row) for row in features.itertuples(index=False, name=None)]
    per_hour = records // HOURS
    capture_lines = label_lines = 0
    for hour in range(HOURS):
        when = END - timedelta(hours=HOURS - hour)
        count = per_hour if hour < HOURS - 1 else records - per_hour * (HOURS - 1)
        picks = rng.integers(0, len(frame), count)
        scores = _scores(truth[picks], rng)
        kinds = rng.random(count)
        stamp = when.strftime("%Y-%m-%dT%H:") + "{:02d}:{:02d}Z"
        lines, labels = [], []
        for i in range(count):
            key = f"{hour:02d}-{i:07d}"
            moment = stamp.format(i * 60 // count, i % 60)
            lines.append(_capture(cells[picks[i]], float(scores[i]), key, moment, kinds[i]))
            if kinds[i] >= UNLABELLED_SHARE:
                labels.append(_label(key, int(truth[picks[i]]), kinds[i]))
        # Orphans: labels of predictions the window does not hold.
        labels += [_label(f"gone-{hour:02d}-{i}", 1, 1.0) for i in range(count // 100)]
        folder = root / "capture" / ENDPOINT / "AllTraffic" / when.strftime("%Y/%m/%d/%H")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "part-0000.jsonl").write_text("\n".join(lines) + "\n")
        collected = root / "gt" / (when + timedelta(hours=1)).strftime("%Y/%m/%d/%H")
        collected.mkdir(parents=True, exist_ok=True)
        (collected / "labels-0000.jsonl").write_text("\n".join(labels) + "\n")
        capture_lines += len(lines)
        label_lines += len(labels)
    return capture_lines, label_lines


def _capture(row: str, score: float, key: str, when: str, kind: float) -> str:
    if kind < MALFORMED_SHARE:
        return '{"captureData": {"endpointInput": '  # truncated: a malformed line
    label = "yes" if score >= 0.5 else "no"
    if kind < 0.70:
        answer = f"{label},{1 - score:.6f},{score:.6f}\n"
        output = {"observedContentType": "text/csv", "mode": "OUTPUT", "data": answer,
                  "encoding": "CSV"}  # fmt: skip
    else:
        answer = (
            f'{{"predictions":[{{"label":"{label}","probabilities":{{"no":{1 - score:.6f},'
            f'"yes":{score:.6f}}}}}],"model_sha256":"{SHA}"}}'
        )
        data, encoding = answer, "JSON"
        if kind >= 0.95:  # as capture stores a body it cannot keep as text
            data, encoding = base64.b64encode(answer.encode()).decode(), "BASE64"
        output = {"observedContentType": "application/json", "mode": "OUTPUT", "data": data,
                  "encoding": encoding}  # fmt: skip
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                  "data": row + "\n", "encoding": "CSV"},
                "endpointOutput": output,
            },
            "eventMetadata": {"eventId": f"event-{key}", "inferenceId": key, "inferenceTime": when},
            "eventVersion": "0",
        },
        separators=(",", ":"),
    )  # fmt: skip


def _label(key: str, value: int, kind: float) -> str:
    from monitoring.ground_truth import to_line

    if 0.5 < kind < 0.5 + MALFORMED_SHARE:
        return '{"groundTruthData": {"data": '  # truncated
    return to_line(key, [value])


def _measure(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and stdout of a fresh process."""
    code = (
        "import resource, subprocess, sys, time, json\n"
        "start = time.perf_counter()\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "seconds = time.perf_counter() - start\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(json.dumps({'code': done.returncode, 'seconds': seconds, 'rss': rss,\n"
        "                  'out': done.stdout, 'err': done.stderr[-2000:]}))\n"
    )
    # A wrapper process, so RUSAGE_CHILDREN holds exactly the measured run.
    raw = subprocess.run(
        [sys.executable, "-c", code, *command],
        capture_output=True, text=True, check=True, env={**os.environ, **(env or {})},
    )  # fmt: skip
    result = json.loads(raw.stdout)
    if result["code"] != 0:
        raise RuntimeError(f"{command[:3]} failed ({result['code']}): {result['err']}")
    return result["seconds"], result["rss"], result["out"]


def _repeat(
    command: list[str], repeats: int, env: dict[str, str] | None = None
) -> tuple[float, float, str]:
    runs = [_measure(command, env) for _ in range(repeats)]
    seconds = statistics.median(r[0] for r in runs)
    rss = statistics.median(r[1] for r in runs)
    return seconds, rss, runs[-1][2]


def run_job(root: Path, records: int, labels: int, repeats: int, facet: bool) -> Result:
    extra = (
        ["--baseline", str(root / "baseline.json"), "--facet", "international_plan=yes",
         "--bias-limit", "DPPL=0.2"]
        if facet else []
    )  # fmt: skip
    output = root / ("report-bias" if facet else "report")
    seconds, rss, _ = _repeat(
        [sys.executable, "-m", "monitoring.quality", "--capture", str(root / "capture"),
         "--ground-truth", str(root / "gt"), "--evaluation", str(root / "evaluation.json"),
         "--output", str(output), "--end", END.isoformat(), "--window-hours", str(HOURS),
         "--label-delay-hours", "2", *extra],
        repeats,
    )  # fmt: skip
    report = json.loads((output / "quality.json").read_text())
    c = report["counts"]
    notes = (
        f"{c['labelled_rows']:,} joined, {c['unlabelled_records']:,} unlabelled, "
        f"{c['orphan_labels']:,} orphans, {c['malformed_records']} + {c['malformed_labels']} "
        f"malformed; flagged: {', '.join(report['flagged']) or 'none'}; job's own timer "
        f"{report['seconds']:.1f}s"
    )
    if facet:
        notes += f"; bias violations {report['bias']['violations']}"
    name = "quality job + bias facet" if facet else "quality job (streaming)"
    return Result(name, records, labels, seconds, records / seconds, rss, repeats, notes)


@dataclass(frozen=True)
class ShardResult:
    shards: int
    shard_seconds: list[float]  # median per shard, each run alone
    shard_peak_rss_mb: list[float]
    merge_seconds: float
    merge_peak_rss_mb: float
    instances_seconds: float  # slowest shard + merge: the pipeline's time on N instances
    records_per_second_per_shard: float
    equal_to_single_pass: bool


def _common(root: Path, output: Path) -> list[str]:
    return [
        sys.executable, "-m", "monitoring.quality", "--capture", str(root / "capture"),
        "--ground-truth", str(root / "gt"), "--evaluation", str(root / "evaluation.json"),
        "--output", str(output), "--end", END.isoformat(), "--window-hours", str(HOURS),
        "--label-delay-hours", "2",
    ]  # fmt: skip


def run_shards(root: Path, count: int, records: int, repeats: int) -> ShardResult:
    from monitoring.shards import partition

    files = sorted((root / "capture").rglob("*.jsonl"))
    folders = []
    for n, part in enumerate(partition(files, count)):
        folder = root / f"shards-{count}" / f"instance-{n}"
        for path in part:
            link = folder / path.relative_to(root / "capture")
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path)
        folder.mkdir(parents=True, exist_ok=True)
        folders.append(folder)
    summaries = root / f"shards-{count}" / "summaries"
    shard_seconds, shard_rss = [], []
    for n, folder in enumerate(folders):
        command = _common(root, root / "unused")
        command[command.index("--capture") + 1] = str(folder)
        seconds, rss, _ = _repeat(
            [*command, "--summary-to", str(summaries), "--shard-id", f"algo-{n + 1}"], repeats
        )
        shard_seconds.append(seconds)
        shard_rss.append(rss)
    output = root / f"shards-{count}" / "report"
    merge_seconds, merge_rss, _ = _repeat(
        [*_common(root, output), "--merge-from", str(summaries)], repeats
    )
    merged = json.loads((output / "quality.json").read_text())
    single = json.loads((root / "report" / "quality.json").read_text())
    equal = merged | {"seconds": 0} == single | {"seconds": 0}
    return ShardResult(
        shards=count,
        shard_seconds=shard_seconds,
        shard_peak_rss_mb=shard_rss,
        merge_seconds=merge_seconds,
        merge_peak_rss_mb=merge_rss,
        instances_seconds=max(shard_seconds) + merge_seconds,
        records_per_second_per_shard=records / sum(shard_seconds),
        equal_to_single_pass=equal,
    )


def evidently_worker(root: Path) -> None:
    """In its own process: read predictions and labels, join them in pandas, run
    ClassificationPreset against the evaluation sample's distribution."""
    import pandas as pd
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.presets import ClassificationPreset

    from monitoring.ground_truth import LabelError
    from monitoring.ground_truth import parse as parse_label
    from monitoring.predictions import OutputError, OutputReader
    from monitoring.store import LocalStore

    start = time.perf_counter()
    store, reader = LocalStore(), OutputReader()
    keys: list[str] = []
    scores: list[float] = []
    for name in store.files(str(root / "capture")):
        for line in store.lines(name):
            try:
                record = json.loads(line)
                score = reader.scores(record["captureData"]["endpointOutput"])[0]
            except (ValueError, KeyError, OutputError):
                continue
            meta = record["eventMetadata"]
            keys.append(meta.get("inferenceId") or meta["eventId"])
            scores.append(score)
    label_keys: list[str] = []
    values: list[int] = []
    for name in store.files(str(root / "gt")):
        for line in store.lines(name):
            try:
                label = parse_label(line)
            except LabelError:
                continue
            label_keys.append(label.event_id)
            values.append(label.labels[0])
    predictions = pd.DataFrame({"id": keys, "prediction": scores})
    truth = pd.DataFrame({"id": label_keys, "target": values}).drop_duplicates("id", keep="last")
    current = predictions.merge(truth, on="id", how="inner").drop(columns="id")
    del keys, scores, label_keys, values, predictions, truth
    rng = np.random.default_rng(1)
    reference_labels = (rng.random(5000) < 0.14).astype(np.int64)
    reference = pd.DataFrame(
        {"prediction": _scores(reference_labels, rng), "target": reference_labels}
    )
    loaded = time.perf_counter() - start
    definition = DataDefinition(
        classification=[
            BinaryClassification(target="target", prediction_probas="prediction", pos_label=1)
        ],
        numerical_columns=["prediction"],
    )
    snapshot = Report([ClassificationPreset()]).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )
    metrics = len(snapshot.dict()["metrics"])
    report_seconds = time.perf_counter() - start - loaded
    print(json.dumps({"load_seconds": loaded, "report_seconds": report_seconds,
                      "rows": len(current), "metrics": metrics,
                      "frame_mb": current.memory_usage(deep=True).sum() / 2**20}))  # fmt: skip


def run_evidently(root: Path, records: int, labels: int, repeats: int) -> Result | None:
    try:
        import evidently  # noqa: F401
    except ImportError:
        return None
    env = {"DO_NOT_TRACK": "1", "ITERATIVE_DO_NOT_TRACK": "1"}  # no telemetry calls
    seconds, rss, out = _repeat(
        [sys.executable, "-m", "benchmarks.quality", "--evidently-worker", str(root)],
        repeats,
        env,
    )
    info = json.loads(out.strip().splitlines()[-1])
    notes = (
        f"{info['rows']:,} joined; read + join {info['load_seconds']:.1f}s "
        f"(frame {info['frame_mb']:.0f} MB), ClassificationPreset {info['report_seconds']:.1f}s "
        f"({info['metrics']} metrics), last run"
    )
    return Result(
        "evidently 0.7 ClassificationPreset",
        records,
        labels,
        seconds,
        records / seconds,
        rss,
        repeats,
        notes,
    )


def _print_shards(results: list[ShardResult], records: int, repeats: int) -> None:
    table = Table(title=f"the quality job sharded, {records:,} predictions (median of {repeats})")
    for column in ("shards", "per shard s", "per shard peak RSS MB", "merge s (RSS MB)",
                   "N instances s", "records/s per shard", "= single pass"):  # fmt: skip
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            str(r.shards),
            ", ".join(f"{s:.1f}" for s in r.shard_seconds),
            ", ".join(f"{m:.0f}" for m in r.shard_peak_rss_mb),
            f"{r.merge_seconds:.1f} ({r.merge_peak_rss_mb:.0f})",
            f"{r.instances_seconds:.1f}",
            f"{r.records_per_second_per_shard:,.0f}",
            "yes" if r.equal_to_single_pass else "NO",
        )
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=Path("build/bench/quality.json"))
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--workdir", type=Path, help="Where to write the data (default: /tmp).")
    parser.add_argument("--evidently-worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--shards",
        help="Comma-separated shard counts, e.g. 1,2: measure the sharded job (see above) "
        "instead of the bias run and evidently.",
    )
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.shards.split(",")] if args.shards else []
    if args.evidently_worker:
        evidently_worker(args.evidently_worker)
        return 0
    with tempfile.TemporaryDirectory(prefix="quality-bench-", dir=args.workdir) as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        records, labels = generate(root, args.records)
        size = sum(p.stat().st_size for p in root.rglob("*.jsonl"))
        console.print(
            f"generated {records:,} capture lines and {labels:,} label lines "
            f"({size / 2**20:.0f} MB of JSONL) in {time.perf_counter() - start:.0f}s"
        )
        results = [run_job(root, records, labels, args.repeats, facet=False)]
        sharded = [run_shards(root, n, records, args.repeats) for n in counts]
        other = None
        if not counts:
            results.append(run_job(root, records, labels, args.repeats, facet=True))
            if not args.skip_evidently:
                other = run_evidently(root, records, labels, args.repeats)
        if other is not None:
            results.append(other)
    table = Table(
        title=f"model quality over {records:,} predictions and {labels:,} labels "
        f"({os.cpu_count()} CPUs, median of {args.repeats})"
    )
    for column in ("tool", "seconds", "predictions/s", "peak RSS MB", "notes"):
        table.add_column(column, justify="left" if column in ("tool", "notes") else "right")
    for r in results:
        table.add_row(r.tool, f"{r.seconds:.1f}", f"{r.records_per_second:,.0f}",
                      f"{r.peak_rss_mb:.0f}", r.notes)  # fmt: skip
    console.print(table)
    if sharded:
        _print_shards(sharded, records, args.repeats)
    if other is None and not args.skip_evidently and not counts:
        console.print("evidently is not installed (pip install -e '.[bench]'): no comparison")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    document: list[dict[str, object]] = [asdict(r) for r in results]
    document += [{"tool": "quality job, sharded", **asdict(r)} for r in sharded]
    args.json.write_text(json.dumps(document, indent=2) + "\n")
    console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
