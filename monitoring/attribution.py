"""Attribution-drift job: rank the features behind the served model's live predictions.

Model Monitor's feature-attribution drift check, run as a SageMaker Processing job
(``python3 bundle_runner.py attribution.py ARGS``), locally with ``mlops attribution`` or
``python -m monitoring.attribution``. It streams the capture files of the window, keeps a
seeded uniform sample of at most ``--max-rows`` rows (a reservoir: memory does not grow with
the window), explains the served model's positive-class probability on them with Kernel
SHAP (training.explain), and compares the global ranking with the one registered at
evaluation by NDCG (below ``--ndcg-threshold``, 0.9 as in Clarify, is a violation).

The baseline attributions and the live ones are computed the same way: the background is the
explained rows summarised (``--background-rows``, as the evaluation job's), ``--nsamples``
coalitions per row. So the two must agree with what the evaluation used (the defaults do).

Outputs (monitoring.attribution_report): ``attribution.json``, ``analysis.json``,
``constraint_violations.json`` and ``attribution.html``; with ``--publish``, CloudWatch
metrics (monitoring.attribution_metrics). Drift is a finding, not a failure; silence is.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from monitoring import attribution_report as reports
from monitoring import drift, served_archive, served_model
from monitoring.baseline import Baseline, BaselineError
from monitoring.capture import RecordParser, Row
from monitoring.store import (
    CaptureNotFoundError,
    LocalStore,
    S3Store,
    Store,
    find_roots,
    s3_client,
    window_files,
    write_files,
)
from training import explain, paths, uri

EXIT_OK = 0
EXIT_AWS = 1
EXIT_USAGE = 2
EXIT_SILENT = 3
EXIT_CODES = (
    "Exit codes: 0 the job ran (drift or not); 1 AWS refused a call; 2 bad arguments, model "
    "or explainability report; 3 silent: no capture layout under --capture, or fewer than "
    "--min-records records in the window (the report is written and ExplainedRecords=0 "
    "published first)."
)
DEFAULT_MAX_ROWS = 500
LOG_EVERY_SECONDS = 30.0
PROGRESS_EVERY_RECORDS = 5_000
RecordsHook = Callable[[int], None]


class UsageError(Exception):
    """A caller mistake: exit code 2 with this message."""


@dataclass(frozen=True)
class Options:
    capture: str
    baseline: str
    explainability: str | None
    output: str
    window_hours: float
    end: datetime
    ndcg_threshold: float
    max_rows: int
    background_rows: int
    nsamples: int
    seed: int
    namespace: str | None
    endpoint_name: str | None
    publish: bool
    region: str | None
    endpoint_url: str | None
    min_records: int = 1

    @property
    def start(self) -> datetime:
        return self.end - timedelta(hours=self.window_hours)

    @property
    def method(self) -> reports.Method:
        return reports.Method(
            ndcg_threshold=self.ndcg_threshold,
            max_rows=self.max_rows,
            background_rows=self.background_rows,
            nsamples=self.nsamples,
            seed=self.seed,
        )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="attribution.py",
        description="Feature-attribution drift (NDCG of SHAP rankings) of endpoint traffic.",
        epilog=EXIT_CODES,
    )
    p.add_argument("--capture", required=True, help="Capture folder or s3:// prefix.")
    p.add_argument(
        "--baseline",
        required=True,
        help="The served model: model package ARN, model dir or model.tar.gz (local or s3://).",
    )
    p.add_argument(
        "--explainability",
        help="Clarify analysis.json of the model's evaluation (local or s3://); default: the "
        "package's ModelMetrics.Explainability report.",
    )
    p.add_argument(
        "--output",
        default=str(
            paths.processing_or_local("output/attribution", paths.LOCAL_ROOT / "attribution")
        ),
        help="Folder or s3:// prefix for the reports.",
    )
    p.add_argument("--window-hours", type=float, default=24.0)
    p.add_argument("--end", help="Window end, ISO 8601 (default: now, UTC).")
    p.add_argument(
        "--min-records",
        type=int,
        default=1,
        help="Fewer capture records in the window exit 3 (default 1; 0: an empty window is fine).",
    )
    p.add_argument("--ndcg-threshold", type=float, default=explain.NDCG_THRESHOLD)
    p.add_argument(
        "--max-rows",
        type=int,
        default=DEFAULT_MAX_ROWS,
        help=f"Rows explained: a seeded uniform sample of the window (default {DEFAULT_MAX_ROWS}).",
    )
    p.add_argument(
        "--background-rows",
        type=int,
        default=explain.DEFAULT_BACKGROUND_ROWS,
        help="Rows summarising the explained ones as SHAP's background; as at evaluation.",
    )
    p.add_argument(
        "--nsamples",
        type=int,
        default=explain.DEFAULT_NSAMPLES,
        help="Kernel SHAP coalitions per row; as at evaluation.",
    )
    p.add_argument("--seed", type=int, default=0, help="Seed of the sample and of SHAP.")
    p.add_argument("--namespace", help="CloudWatch namespace, e.g. MLOpsKit/churn-prod.")
    p.add_argument("--endpoint-name", help="Endpoint to read and to name in metrics.")
    p.add_argument("--publish", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--region")
    p.add_argument("--endpoint-url", help="AWS endpoint for every client, e.g. moto.")
    return p


def parse_options(argv: list[str] | None) -> Options:
    args = parser().parse_args(argv)
    if not args.window_hours > 0:
        raise UsageError(f"--window-hours must be positive, got {args.window_hours:g}")
    if args.min_records < 0:
        raise UsageError(f"--min-records must be 0 or more, got {args.min_records}")
    if not 0 < args.ndcg_threshold <= 1:
        raise UsageError(f"--ndcg-threshold must lie in (0, 1], got {args.ndcg_threshold:g}")
    for flag, value in (
        ("--max-rows", args.max_rows),
        ("--background-rows", args.background_rows),
        ("--nsamples", args.nsamples),
    ):
        if value < 1:
            raise UsageError(f"{flag} must be at least 1, got {value}")
    if args.publish and not args.namespace:
        raise UsageError("--publish needs --namespace (e.g. MLOpsKit/churn-prod)")
    try:
        end = drift.parse_end(args.end)
    except drift.UsageError as exc:
        raise UsageError(str(exc)) from None
    return Options(
        capture=args.capture,
        baseline=args.baseline,
        explainability=args.explainability,
        output=args.output,
        window_hours=args.window_hours,
        end=end,
        ndcg_threshold=args.ndcg_threshold,
        max_rows=args.max_rows,
        background_rows=args.background_rows,
        nsamples=args.nsamples,
        seed=args.seed,
        namespace=args.namespace,
        endpoint_name=args.endpoint_name,
        publish=args.publish,
        region=args.region,
        endpoint_url=args.endpoint_url,
        min_records=args.min_records,
    )


def _log(message: str) -> None:
    print(message, flush=True)  # the job's stdout is a pipe to CloudWatch Logs


@dataclass(frozen=True)
class _Reference:
    model: served_archive.LoadedModel
    explainability: str
    attributions: dict[str, float]


def _reference(options: Options) -> _Reference:
    try:
        served = served_model.resolve(
            options.baseline, region=options.region, endpoint_url=options.endpoint_url
        )
    except served_model.ServedModelError as exc:
        raise UsageError(f"--baseline {exc}") from None
    report = options.explainability or served.explainability_report
    if report is None:
        raise UsageError(
            f"--baseline {options.baseline} names no explainability report: pass "
            "--explainability (the evaluation's explainability/analysis.json)"
        )
    try:
        loaded = served_archive.load(
            served.model_data, region=options.region, endpoint_url=options.endpoint_url
        )
    except served_archive.ArchiveError as exc:
        raise UsageError(f"--baseline {exc}") from None
    attributions = _read_attributions(report, options)
    expected = set(loaded.baseline.feature_order)
    if set(attributions) != expected:
        raise UsageError(
            f"--explainability {report} ranks {sorted(attributions)}, but the model takes "
            f"{sorted(expected)}: it explains another model"
        )
    return _Reference(loaded, report, attributions)


def _read_attributions(report: str, options: Options) -> dict[str, float]:
    import json

    from botocore.exceptions import BotoCoreError, ClientError

    try:
        s3 = s3_client(options.region, options.endpoint_url) if uri.is_s3(report) else None
        document = json.loads(uri.read_bytes(report, s3=s3))
        return explain.global_attributions(document)
    except (ClientError, BotoCoreError, OSError, uri.UriError) as exc:
        raise UsageError(f"--explainability {report}: cannot read it ({exc})") from None
    except ValueError as exc:  # ExplainError and JSONDecodeError
        raise UsageError(f"--explainability {report}: {exc}") from None


class Reservoir:
    """A uniform sample of at most ``size`` rows of a stream (Algorithm R), seeded."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seen = size, 0
        self.rows: list[Row] = []
        self._random = random.Random(seed)

    def add(self, row: Row) -> None:
        if len(self.rows) < self.size:
            self.rows.append(row)
        else:
            slot = self._random.randrange(self.seen + 1)
            if slot < self.size:
                self.rows[slot] = row
        self.seen += 1


def frame(rows: list[Row], baseline: Baseline) -> pd.DataFrame:
    """The rows as the model takes them: its columns, in its order."""
    categorical = [f.name for f in baseline.categorical]
    numeric = [f.name for f in baseline.numeric]
    columns: dict[str, Any] = {}
    for j, name in enumerate(categorical):
        columns[name] = pd.Series([r.categorical[j] for r in rows], dtype=object)
    for j, name in enumerate(numeric):
        columns[name] = pd.Series([r.numeric[j] for r in rows], dtype="float64")
    return pd.DataFrame(columns).loc[:, list(baseline.feature_order)]


def run(
    options: Options, log: Callable[[str], None] = _log, progress: RecordsHook | None = None
) -> reports.AttributionReport:
    """``progress``, when given, is told the capture records read so far."""
    began = time.perf_counter()
    reference = _reference(options)
    baseline = reference.model.baseline
    store = _store(options)
    source = find_roots(store, options.capture, options.endpoint_name)
    if not source.roots:
        if isinstance(store, LocalStore) and not Path(options.capture).is_dir():
            raise CaptureNotFoundError(f"--capture {options.capture}: no such folder")
        log(f"no capture layout (<endpoint>/<variant>/yyyy/...) under {options.capture}")
    if options.endpoint_name is None and len(source.endpoints) > 1:
        raise UsageError(
            f"--capture {options.capture} holds several endpoints "
            f"({', '.join(source.endpoints)}); pass --endpoint-name"
        )
    endpoint = options.endpoint_name or (source.endpoints[0] if source.endpoints else None)
    files = window_files(store, source.roots, options.start, options.end)
    log(
        f"window {options.start:%Y-%m-%dT%H:%M:%SZ} .. {options.end:%Y-%m-%dT%H:%M:%SZ}: "
        f"{len(files)} capture file(s) in {len(source.roots)} variant folder(s)"
    )
    record_parser = RecordParser(baseline, options.start, options.end)
    sample = Reservoir(options.max_rows, options.seed)
    for row in _rows(store, files, record_parser, log, progress):
        sample.add(row)
    c = record_parser.counts
    log(f"read {c.lines} records ({c.used} used, {c.malformed_total} malformed), {c.rows} rows")

    analysis = None
    if sample.rows:
        log(
            f"explaining {len(sample.rows)} of {c.rows} rows: Kernel SHAP, "
            f"{options.nsamples} coalitions per row, {options.background_rows} background row(s)"
        )
        _ensure_shap()
        started = time.perf_counter()
        try:
            analysis = explain.explain(
                reference.model.model,
                frame(sample.rows, baseline),
                background_rows=options.background_rows,
                seed=options.seed,
                nsamples=options.nsamples,
            )
        except explain.ExplainError as exc:
            raise UsageError(f"cannot explain the window: {exc}") from None
        log(f"attributions in {time.perf_counter() - started:.1f}s")
    return reports.AttributionReport(
        capture=options.capture,
        model=reference.model.source,
        explainability=reference.explainability,
        endpoint=endpoint,
        start=options.start,
        end=options.end,
        method=options.method,
        counts=c,
        baseline=reference.attributions,
        analysis=analysis,
        files=len(files),
        folders=len(source.roots),
        seconds=time.perf_counter() - began,
    )


def _ensure_shap() -> None:
    """In SageMaker's image, install shap from the bundle's wheels (a no-op elsewhere)."""
    import importlib.util
    import subprocess

    from training.bootstrap import ensure_container_packages

    if importlib.util.find_spec("shap") is not None:
        return
    try:
        ensure_container_packages()
    except (ModuleNotFoundError, subprocess.CalledProcessError) as exc:
        raise UsageError(f"shap is not installed and cannot be: {exc}") from None
    importlib.invalidate_caches()
    if importlib.util.find_spec("shap") is None:
        raise UsageError("shap is not installed: install the bundle's wheels (requirements.txt)")


def _rows(
    store: Store,
    files: list[str],
    record_parser: RecordParser,
    log: Callable[[str], None],
    progress: RecordsHook | None,
) -> Iterator[Row]:
    counts, last_log = record_parser.counts, time.perf_counter()
    report_at = PROGRESS_EVERY_RECORDS if progress is not None else sys.maxsize
    if progress is not None:
        progress(0)
    for name in files:
        for line in store.lines(name):
            yield from record_parser.parse(line)
            if counts.lines >= report_at and progress is not None:
                progress(counts.lines)
                report_at = counts.lines + PROGRESS_EVERY_RECORDS
            if time.perf_counter() - last_log > LOG_EVERY_SECONDS:
                last_log = time.perf_counter()
                log(f"read {counts.lines} records so far")
    if progress is not None:
        progress(counts.lines)


def _store(options: Options) -> Store:
    """The capture's store; a batch transform's capture reads as records too."""
    from monitoring import batch_capture

    store: Store = (
        S3Store(s3_client(options.region, options.endpoint_url))
        if uri.is_s3(options.capture)
        else LocalStore()
    )
    return batch_capture.wrap(
        store, options.capture, region=options.region, endpoint_url=options.endpoint_url
    )


def write(
    report: reports.AttributionReport,
    output: str,
    region: str | None = None,
    endpoint_url: str | None = None,
) -> list[str]:
    return write_files(reports.files(report).items(), output, region, endpoint_url)


def execute(
    options: Options, log: Callable[[str], None] = _log, progress: RecordsHook | None = None
) -> reports.AttributionReport:
    """Run, write the reports and publish: the whole job, raising on caller errors."""
    from monitoring import attribution_metrics

    report = run(options, log, progress)
    for target in write(report, options.output, options.region, options.endpoint_url):
        log(f"wrote {target}")
    if options.publish:
        if report.endpoint is None:
            raise UsageError("cannot tell the endpoint from the capture path; pass --endpoint-name")
        assert options.namespace is not None  # parse_options requires it with --publish
        sent = attribution_metrics.publish(
            report,
            namespace=options.namespace,
            endpoint=report.endpoint,
            region=options.region,
            endpoint_url=options.endpoint_url,
        )
        log(f"published {sent} metric(s) to CloudWatch namespace {options.namespace}")
    log(report.summary)
    return report


def silence(report: reports.AttributionReport, min_records: int) -> str | None:
    """Why a run that found nothing to explain is not a success, or None."""
    if not report.folders:
        return (
            f"no capture layout under {report.capture}: expected <endpoint>/<variant>/yyyy/mm/"
            "dd/hh/*.jsonl, the years at most two levels below --capture"
        )
    used = report.counts.used
    if used < min_records:
        return (
            f"{used} capture record(s) in the window, fewer than --min-records {min_records}: "
            f"the endpoint served no captured traffic, or {report.capture} is not its capture "
            "folder (pass --min-records 0 where an empty window is expected)"
        )
    return None


def main(argv: list[str] | None = None, progress: RecordsHook | None = None) -> int:
    """The job's command line; ``progress`` (for displays) is told the records read so far."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        options = parse_options(argv)
        report = execute(options, progress=progress)
    except (UsageError, BaselineError, CaptureNotFoundError, uri.UriError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ClientError, BotoCoreError) as exc:
        print(f"error: AWS refused a request: {exc}", file=sys.stderr)
        return EXIT_AWS
    reason = silence(report, options.min_records)
    if reason is not None:
        print(f"error: {reason}", file=sys.stderr)
        return EXIT_SILENT
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
