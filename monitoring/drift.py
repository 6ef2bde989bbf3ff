"""Drift job: compare a window of endpoint data capture with the training baseline.

Runs as a SageMaker Processing job (``python3 bundle_runner.py drift.py ARGS``), locally
with ``mlops drift`` or ``python -m monitoring.drift``. It streams the capture files of the
window line by line, keeps fixed-size running statistics (see monitoring.statistics), and
writes ``drift.json`` and ``drift.html``; with ``--publish`` it also puts the findings to
CloudWatch. Drift is a finding, not a failure; silence is: see EXIT_CODES.

A window too large for one instance runs sharded (monitoring/drift_shards.py, the flags of
monitoring/shards.py): ``--list-to`` writes its files as a manifest, ``--summary-to`` sums one
shard's files into mergeable counts, ``--merge-from`` reports on the summaries exactly as one
pass would; ``--shards N`` does all three locally in N processes.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from monitoring import baseline as baselines
from monitoring import report as reports
from monitoring.capture import Counts, RecordParser
from monitoring.capture_arrow import Block
from monitoring.capture_fast import Columns
from monitoring.shards import ShardError, mode_problem, read_window
from monitoring.shards import add_arguments as add_shard_arguments
from monitoring.statistics import CORRECTIONS, MIN_EXPECTED, DriftRule, DriftState
from monitoring.store import (
    CaptureNotFoundError,
    CaptureSource,
    LocalStore,
    S3Store,
    Store,
    find_roots,
    window_files,
    write_files,
)
from training import paths, uri

EXIT_OK = 0
EXIT_AWS = 1
EXIT_USAGE = 2
# The job ran but saw nothing to compare: a wrong --capture prefix, or no traffic. Not 0, so
# a scheduled run with a wrong prefix fails its pipeline instead of staying green forever;
# the report is still written and CaptureRecords (0) still published for the silent alarm.
EXIT_SILENT = 3
EXIT_CODES = (
    "Exit codes: 0 the job ran (drift or not); 1 AWS refused a call; 2 bad arguments or "
    "baseline; 3 silent: no capture layout under --capture, or fewer than --min-records "
    "records in the window (the report is written and CaptureRecords=0 published first). "
    "--list-to and --summary-to exit 0 once written (--list-to runs the whole job, and may "
    "exit 3, when the window has no files)."
)
# The tail of a path inside SageMaker's layout: .../yyyy[/mm[/dd[/hh]]].
_DATED_FOLDER = re.compile(r"/\d{4}(/\d{2}){0,3}/*$")
CHUNK_ROWS = 20_000
LOG_EVERY_SECONDS = 30.0
# A progress callback (for displays) is told the records read so far: 0 first, then every
# PROGRESS_EVERY_RECORDS records, then the final count. One integer comparison per line.
PROGRESS_EVERY_RECORDS = 5_000
RecordsHook = Callable[[int], None]


class UsageError(Exception):
    """A caller mistake: exit code 2 with this message."""


@dataclass(frozen=True)
class Options:
    capture: str
    baseline: str
    output: str
    window_hours: float
    end: datetime
    psi_threshold: float
    ks_alpha: float
    namespace: str | None
    endpoint_name: str | None
    publish: bool
    region: str | None
    endpoint_url: str | None
    # Fewer records than this in the window is silence (EXIT_SILENT); 0 accepts none.
    min_records: int = 1
    # How the features' p-values are corrected, and the chi-square's smallest bucket.
    correction: str = "holm"
    min_expected: float = MIN_EXPECTED
    # Sharded modes (monitoring.shards): at most one of these is set, or shards > 1.
    list_to: str | None = None
    summary_to: str | None = None
    shard_id: str | None = None  # None: the SageMaker host, else "local"
    merge_from: str | None = None
    shards: int = 1
    # The list step's window (--window-from): its start, where end - window_hours would
    # round differently.
    window_start: datetime | None = None

    @property
    def rule(self) -> DriftRule:
        return DriftRule(self.psi_threshold, self.ks_alpha, self.correction, self.min_expected)

    @property
    def start(self) -> datetime:
        if self.window_start is not None:
            return self.window_start
        return self.end - timedelta(hours=self.window_hours)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="drift.py",
        description="Feature drift of endpoint data capture vs the baseline.",
        epilog=EXIT_CODES,
    )
    p.add_argument("--capture", required=True, help="Capture folder or s3:// prefix.")
    p.add_argument(
        "--baseline",
        required=True,
        help="baseline.json, model dir, model.tar.gz (local or s3://) or model package ARN.",
    )
    p.add_argument(
        "--output",
        default=str(paths.processing_or_local("output/drift", paths.LOCAL_ROOT / "drift")),
        help="Folder or s3:// prefix for drift.json and drift.html.",
    )
    p.add_argument("--window-hours", type=float, default=24.0)
    p.add_argument(
        "--min-records",
        type=int,
        default=1,
        help="Fewer capture records in the window exit 3 (default 1; 0: an empty window is fine).",
    )
    p.add_argument("--end", help="Window end, ISO 8601 (default: now, UTC).")
    p.add_argument(
        "--psi-threshold",
        type=float,
        default=0.2,
        help="PSI a feature must reach to drift (and its test must reject; default 0.2).",
    )
    p.add_argument(
        "--ks-alpha",
        type=float,
        default=0.01,
        help="Significance level of the features' chi-square tests after --correction "
        "(the name predates them; default 0.01).",
    )
    p.add_argument(
        "--correction",
        choices=CORRECTIONS,
        default="holm",
        help="Multiple-testing correction over the features' p-values (default holm).",
    )
    p.add_argument(
        "--min-expected",
        type=float,
        default=MIN_EXPECTED,
        help="Chi-square buckets expecting fewer rows are pooled (default 5).",
    )
    p.add_argument("--namespace", help="CloudWatch namespace, e.g. MLOpsKit/churn-prod.")
    p.add_argument("--endpoint-name", help="Endpoint to read and to name in metrics.")
    p.add_argument("--publish", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--region")
    p.add_argument("--endpoint-url", help="AWS endpoint for every client, e.g. moto.")
    add_shard_arguments(
        p,
        about="Split a large window over instances or processes (see monitoring/shards.py).",
        list_help="Only list the window's files as a SageMaker manifest at this URI.",
        summary_help="Only summarise the files under --capture into this folder or s3:// prefix.",
    )
    return p


def parse_options(argv: list[str] | None) -> Options:
    args = parser().parse_args(argv)
    if not args.window_hours > 0:
        raise UsageError(f"--window-hours must be positive, got {args.window_hours:g}")
    if args.min_records < 0:
        raise UsageError(f"--min-records must be 0 or more, got {args.min_records}")
    if not args.psi_threshold > 0:
        raise UsageError(f"--psi-threshold must be positive, got {args.psi_threshold:g}")
    if not 0 < args.ks_alpha < 1:
        raise UsageError(f"--ks-alpha must lie between 0 and 1, got {args.ks_alpha:g}")
    if not 0 < args.min_expected < math.inf:
        raise UsageError(f"--min-expected must be a positive number, got {args.min_expected:g}")
    if args.publish and not args.namespace:
        raise UsageError("--publish needs --namespace (e.g. MLOpsKit/churn-prod)")
    _check_sharding(args)
    end, start = parse_end(args.end), None
    if args.window_from is not None:
        window = read_window(args.window_from, args.region, args.endpoint_url)
        end, start = window.end, window.start
        args.window_hours = (end - start).total_seconds() / 3600
    return Options(
        capture=args.capture,
        baseline=args.baseline,
        output=args.output,
        window_hours=args.window_hours,
        end=end,
        psi_threshold=args.psi_threshold,
        ks_alpha=args.ks_alpha,
        namespace=args.namespace,
        endpoint_name=args.endpoint_name,
        publish=args.publish,
        region=args.region,
        endpoint_url=args.endpoint_url,
        min_records=args.min_records,
        correction=args.correction,
        min_expected=args.min_expected,
        list_to=args.list_to,
        summary_to=args.summary_to,
        shard_id=args.shard_id,
        merge_from=args.merge_from,
        shards=args.shards,
        window_start=start,
    )


def _check_sharding(args: argparse.Namespace) -> None:
    problem = mode_problem(args)
    if problem is not None:
        raise UsageError(problem)


def parse_end(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--end {text!r} is not an ISO 8601 time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _log(message: str) -> None:
    # Flushed per line: the job's stdout is a pipe to CloudWatch Logs.
    print(message, flush=True)


@dataclass(frozen=True)
class Listing:
    """The window's capture files and where they were found."""

    files: tuple[str, ...]
    folders: int  # variant folders holding dated ones; 0: no capture layout
    endpoint: str | None


def run(
    options: Options, log: Callable[[str], None] = _log, progress: RecordsHook | None = None
) -> reports.DriftReport:
    """``progress``, when given, is told the capture records read so far (see above)."""
    if options.merge_from is not None or options.shards > 1:
        from monitoring import drift_shards  # it imports this module

        return drift_shards.run(options, log, progress)
    began = time.perf_counter()
    baseline = load_baseline(options)
    store = _store(options)
    listing = list_window(options, store, log)
    counts, state = read(listing.files, store, baseline, options, began, log, progress)
    return build_report(options, baseline, listing, counts, state, time.perf_counter() - began)


def load_baseline(options: Options) -> baselines.Baseline:
    return baselines.load(
        options.baseline, region=options.region, endpoint_url=options.endpoint_url
    )


def list_window(options: Options, store: Store, log: Callable[[str], None] = _log) -> Listing:
    """The capture files of the window, as every mode of the job finds them."""
    source, endpoint = locate(options, store, log)
    files = window_files(store, source.roots, options.start, options.end)
    log(
        f"window {options.start:%Y-%m-%dT%H:%M:%SZ} .. {options.end:%Y-%m-%dT%H:%M:%SZ}: "
        f"{len(files)} capture file(s) in {len(source.roots)} variant folder(s)"
    )
    return Listing(tuple(files), len(source.roots), endpoint)


def locate(
    options: Options, store: Store, log: Callable[[str], None] = _log
) -> tuple[CaptureSource, str | None]:
    """The variant folders under --capture and the endpoint they are of."""
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
    return source, endpoint


def read(
    files: Sequence[str],
    store: Store,
    baseline: baselines.Baseline,
    options: Options,
    began: float,
    log: Callable[[str], None] = _log,
    progress: RecordsHook | None = None,
) -> tuple[Counts, DriftState]:
    """Stream ``files`` into the parse counts and the drift state; ``began`` times the logs."""
    record_parser = RecordParser(baseline, options.start, options.end)
    state = DriftState(baseline)
    chunk = _Chunk(len(baseline.numeric), len(baseline.categorical))
    last_log = time.perf_counter()
    counts, reported = record_parser.counts, 0
    # Without a callback the threshold is never reached.
    report_at = PROGRESS_EVERY_RECORDS if progress is not None else sys.maxsize
    if progress is not None:
        progress(0)
    for name in files:
        for line in store.lines(name):
            record_parser.parse_into(line, chunk)
            if chunk.rows >= CHUNK_ROWS:
                chunk.flush_into(state)
                if time.perf_counter() - last_log > LOG_EVERY_SECONDS:
                    last_log = time.perf_counter()
                    log(_progress(record_parser, began))
            if counts.lines >= report_at and progress is not None:
                reported = counts.lines
                progress(reported)
                report_at = reported + PROGRESS_EVERY_RECORDS
    record_parser.finish_into(chunk)
    chunk.flush_into(state)
    if progress is not None and counts.lines > reported:
        progress(counts.lines)
    log(_progress(record_parser, began))
    return record_parser.counts, state


def build_report(
    options: Options,
    baseline: baselines.Baseline,
    listing: Listing,
    counts: Counts,
    state: DriftState,
    seconds: float,
    files: int | None = None,
) -> reports.DriftReport:
    """``files``: how many were read, when not ``listing``'s (a merge of shards)."""
    return reports.DriftReport(
        capture=options.capture,
        baseline=baseline.source,
        endpoint=listing.endpoint,
        start=options.start,
        end=options.end,
        psi_threshold=options.psi_threshold,
        ks_alpha=options.ks_alpha,
        counts=counts,
        features=state.results(options.rule),
        files=len(listing.files) if files is None else files,
        folders=listing.folders,
        seconds=seconds,
        correction=options.correction,
        min_expected=options.min_expected,
    )


class _Chunk:
    """Rows buffered compactly until the next vectorised update (a capture.RowSink): single
    records' rows row-major (array('d') of numbers, one list of categories), and blocks of
    many records' rows column by column."""

    def __init__(self, numeric: int, categorical: int) -> None:
        self.width, self.categorical_width = numeric, categorical
        self._reset()

    def _reset(self) -> None:
        self.numeric = array("d")
        self.categorical: list[str] = []
        self.record_rows = 0  # the rows in numeric and categorical
        self.blocks: list[Block] = []
        self.rows = 0

    def add_rows(self, columns: Columns) -> None:
        numeric, categorical, rows = columns
        self.numeric.extend(numeric)
        self.categorical += categorical
        self.record_rows += rows
        self.rows += rows

    def add_block(self, block: Block) -> None:
        self.blocks.append(block)
        self.rows += block.rows

    def flush_into(self, state: DriftState) -> None:
        if self.rows:
            step = self.categorical_width  # a slice per feature: its column
            columns = [self.categorical[j::step] for j in range(step)]
            matrices = [block.numeric for block in self.blocks]
            if self.record_rows:
                flat = np.frombuffer(self.numeric, dtype=np.float64)
                matrices.append(flat.reshape(self.record_rows, self.width))
            for block in self.blocks:
                for values, more in zip(columns, block.categorical, strict=True):
                    values += more
            # Row order differs from the lines' (blocks first): the statistics are counts.
            state.update(np.concatenate(matrices), columns)
        self._reset()


def _progress(parser: RecordParser, began: float) -> str:
    c = parser.counts
    seconds = time.perf_counter() - began
    return (
        f"read {c.lines} records ({c.used} used, {c.outside_window} outside the window, "
        f"{c.malformed_total} malformed) in {seconds:.1f}s"
    )


def _store(options: Options) -> Store:
    """The capture's store; a batch transform's capture reads as records too."""
    from monitoring import batch_capture

    store: Store
    if not uri.is_s3(options.capture):
        store = LocalStore()
    else:
        import boto3

        client = boto3.client("s3", region_name=options.region, endpoint_url=options.endpoint_url)
        store = S3Store(client)
    return batch_capture.wrap(
        store, options.capture, region=options.region, endpoint_url=options.endpoint_url
    )


def write(
    report: reports.DriftReport,
    output: str,
    region: str | None = None,
    endpoint_url: str | None = None,
) -> list[str]:
    files = [
        (reports.JSON_FILE, reports.to_json(report)),
        (reports.HTML_FILE, reports.to_html(report)),
    ]
    return write_files(files, output, region, endpoint_url)


def execute(
    options: Options, log: Callable[[str], None] = _log, progress: RecordsHook | None = None
) -> reports.DriftReport:
    """Run, write the report and publish: the whole job, raising on caller errors.

    ``progress``, when given, is told the capture records read so far (see run).
    """
    from monitoring import metrics

    report = run(options, log, progress)
    for target in write(report, options.output, options.region, options.endpoint_url):
        log(f"wrote {target}")
    if options.publish:
        endpoint = report.endpoint
        if endpoint is None:
            raise UsageError("cannot tell the endpoint from the capture path; pass --endpoint-name")
        assert options.namespace is not None  # parse_options requires it with --publish
        sent = metrics.publish(
            report,
            namespace=options.namespace,
            endpoint=endpoint,
            region=options.region,
            endpoint_url=options.endpoint_url,
        )
        log(f"published {sent} metric(s) to CloudWatch namespace {options.namespace}")
    if not report.has_records:
        log("no capture records in the window: CaptureRecords=0 and no DriftScore")
    log(report.summary)
    return report


def silence(report: reports.DriftReport, min_records: int) -> str | None:
    """Why a run that found nothing to compare is not a success, or None."""
    capture = report.capture
    if not report.folders:
        hint = (
            f"{capture} is a dated folder inside the layout: point --capture at the folder "
            "above the years"
            if _DATED_FOLDER.search(capture.rstrip("/") + "/")
            else "point --capture at the endpoint's capture folder "
            "(s3://<bucket>/datacapture/<endpoint>/<variant>/) or the folder above it"
        )
        return (
            f"no capture layout under {capture}: expected <endpoint>/<variant>/yyyy/mm/dd/hh/"
            f"*.jsonl, the years at most two levels below --capture; {hint}"
        )
    used = report.counts.used
    if used < min_records:
        return (
            f"{used} capture record(s) in the window, fewer than --min-records {min_records}: "
            f"the endpoint served no captured traffic, or {capture} is not its capture "
            "folder (pass --min-records 0 where an empty window is expected)"
        )
    return None


def main(argv: list[str] | None = None, progress: RecordsHook | None = None) -> int:
    """The job's command line; ``progress`` (for displays) is told the records read so far."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        options = parse_options(argv)
        if options.list_to is not None or options.summary_to is not None:
            from monitoring import drift_shards  # it imports this module

            done = drift_shards.execute_step(options)
            if done is None:
                return EXIT_OK
            report = done
        else:
            report = execute(options, progress=progress)
    except (
        UsageError,
        baselines.BaselineError,
        CaptureNotFoundError,
        uri.UriError,
        ShardError,
    ) as exc:
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
