"""Model-quality job: a window's captured predictions joined with their ground-truth labels.

Runs as a SageMaker Processing job (``python3 bundle_runner.py quality.py ARGS``), locally
with ``mlops quality`` or ``python -m monitoring.quality``. It streams the capture files of
the window and the label files collected from the window's start until the label delay after
its end (monitoring/join.py), computes Model Monitor's binary-classification metrics and
calibration on the labelled rows, tests each monitored metric for a drop from the served
model's evaluation (monitoring/quality_assess.py), and, with ``--facet``, measures bias
drift (monitoring/bias_drift.py). It writes ``quality.json``, ``quality.html``,
``constraint_violations.json`` (and ``bias/`` with ``--facet``); with ``--publish`` it puts
the findings to CloudWatch. A drop is a finding, not a failure; silence is: see EXIT_CODES.

By default the window ends ``--label-delay-hours`` before now, so a scheduled run judges
predictions whose labels have had that long to arrive, and reads labels up to now.

A window too large for one instance runs sharded (monitoring/quality_shards.py, the flags
of monitoring/shards.py): ``--list-to`` writes manifests of its capture and label files,
``--summary-to`` joins one shard's capture with all the labels into a summary, and
``--merge-from`` reports on the summaries exactly as one pass would; ``--shards N`` does all
three locally in N processes. Pass the steps one ``--end`` or ``--now``: each would
otherwise take its own clock's.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from monitoring import baseline as baselines
from monitoring import evaluation as evaluations
from monitoring import quality_report as reports
from monitoring.bias_drift import BiasDrift, measure
from monitoring.capture import RecordParser
from monitoring.ground_truth import Vocabulary
from monitoring.join import Joined, KeyHash, Labels, Predictions, join
from monitoring.predictions import OutputReader
from monitoring.quality_assess import Settings, Status, assess
from monitoring.quality_stats import MONITORABLE
from monitoring.shards import ShardError, mode_problem, read_window
from monitoring.shards import add_arguments as add_shard_arguments
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
from training import bias, paths, uri
from training import dataset as ds
from training.metrics import THRESHOLD

EXIT_OK = 0
EXIT_AWS = 1
EXIT_USAGE = 2
EXIT_SILENT = 3
EXIT_CODES = (
    "Exit codes: 0 the job ran (a drop or not, enough labels or not); 1 AWS refused a call; "
    "2 bad arguments, baseline or evaluation; 3 silent: no capture layout under --capture, "
    "or no labelled record in the window (the report is written and LabelledRecords=0 "
    "published first). --list-to and --summary-to exit 0 once written."
)
PROGRESS_EVERY_LINES = 5_000
RecordsHook = Callable[[int], None]


class UsageError(Exception):
    """A caller mistake: exit code 2 with this message."""


@dataclass(frozen=True)
class Options:
    capture: str
    ground_truth: str
    baseline: str | None
    evaluation: str | None
    output: str
    window_hours: float
    label_delay_hours: float
    end: datetime
    settings: Settings
    facets: tuple[bias.Facet, ...]
    bias_limits: dict[str, float]
    vocabulary: Vocabulary
    namespace: str | None
    endpoint_name: str | None
    publish: bool
    region: str | None
    endpoint_url: str | None
    # Sharded modes (monitoring/quality_shards.py): at most one is set, or shards > 1.
    list_to: str | None = None
    labels_list_to: str | None = None
    summary_to: str | None = None
    shard_id: str | None = None  # None: the SageMaker host, else "local"
    merge_from: str | None = None
    shards: int = 1
    # The list step's window (--window-from): its start, where end - window_hours would
    # round differently.
    window_start: datetime | None = None

    @property
    def sharded(self) -> bool:
        """Reports from shards' summaries (merged), rather than from one pass."""
        return self.merge_from is not None or self.shards > 1

    @property
    def start(self) -> datetime:
        if self.window_start is not None:
            return self.window_start
        return self.end - timedelta(hours=self.window_hours)

    @property
    def labels_until(self) -> datetime:
        return self.end + timedelta(hours=self.label_delay_hours)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="quality.py",
        description="Model quality, concept drift and bias drift of captured predictions "
        "joined with ground-truth labels.",
        epilog=EXIT_CODES,
    )
    p.add_argument("--capture", required=True, help="Capture folder or s3:// prefix.")
    p.add_argument(
        "--ground-truth",
        required=True,
        help="Ground-truth folder or s3:// prefix holding yyyy/mm/dd/hh/*.jsonl.",
    )
    p.add_argument(
        "--baseline",
        help="The served model: model package ARN (names its evaluation), model dir or "
        "model.tar.gz (local or s3://); needed for --facet and to find the evaluation.",
    )
    p.add_argument(
        "--evaluation",
        help="evaluation.json (local or s3://); default: the model package's quality statistics.",
    )
    p.add_argument(
        "--output",
        default=str(paths.processing_or_local("output/quality", paths.LOCAL_ROOT / "quality")),
        help="Folder or s3:// prefix for quality.json/.html and constraint_violations.json.",
    )
    p.add_argument("--window-hours", type=float, default=24.0)
    p.add_argument(
        "--label-delay-hours",
        type=float,
        default=24.0,
        help="How long labels take to arrive: labels are read until this long after the "
        "window's end (default 24).",
    )
    p.add_argument(
        "--end", help="Window end, ISO 8601 (default: now less --label-delay-hours, UTC)."
    )
    p.add_argument(
        "--now",
        help="The run's time, ISO 8601, for the default --end (default: the clock); give a "
        "sharded run's steps one, e.g. the pipeline execution's start.",
    )
    p.add_argument("--alpha", type=float, default=0.01, help="Significance after Holm.")
    p.add_argument(
        "--min-drop",
        type=float,
        default=0.05,
        help="Smallest drop (absolute) that flags, however significant (default 0.05).",
    )
    p.add_argument(
        "--min-labels",
        type=int,
        default=100,
        help="Fewer labelled rows are measured but not compared (default 100).",
    )
    p.add_argument(
        "--metric",
        action="append",
        choices=MONITORABLE,
        help=f"A metric to test for a drop; repeat (default: {', '.join(MONITORABLE)}).",
    )
    p.add_argument(
        "--facet",
        action="append",
        default=[],
        help="Bias facet NAME=VALUE[,VALUE...], e.g. international_plan=yes; repeat.",
    )
    p.add_argument(
        "--bias-limit",
        action="append",
        default=[],
        help=f"METRIC=LIMIT, largest deviation from fair ({', '.join(bias.METRICS)}); repeat.",
    )
    p.add_argument("--positive-label", default=ds.POSITIVE_LABEL)
    p.add_argument("--negative-label", default=ds.NEGATIVE_LABEL)
    p.add_argument("--namespace", help="CloudWatch namespace, e.g. MLOpsKit/churn-prod.")
    p.add_argument("--endpoint-name", help="Endpoint to read and to name in metrics.")
    p.add_argument("--publish", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--region")
    p.add_argument("--endpoint-url", help="AWS endpoint for every client, e.g. moto.")
    shards = add_shard_arguments(
        p,
        about="Split a large window over instances or processes (monitoring/quality_shards.py).",
        list_help="Only list the window's capture files as a SageMaker manifest at this s3:// "
        "URI (and its label files, see --labels-list-to).",
        summary_help="Only join the capture under --capture with the labels and write this "
        "shard's summary into this folder or s3:// prefix.",
    )
    shards.add_argument(
        "--labels-list-to",
        help="With --list-to: the label files' manifest (default: labels-<name> next to it).",
    )
    return p


def parse_options(argv: list[str] | None) -> Options:
    args = parser().parse_args(argv)
    if not args.window_hours > 0:
        raise UsageError(f"--window-hours must be positive, got {args.window_hours:g}")
    if not args.label_delay_hours >= 0:
        raise UsageError(f"--label-delay-hours must be 0 or more, got {args.label_delay_hours:g}")
    if not 0 < args.alpha < 1:
        raise UsageError(f"--alpha must lie between 0 and 1, got {args.alpha:g}")
    if not 0 <= args.min_drop < 1:
        raise UsageError(f"--min-drop must lie in [0, 1), got {args.min_drop:g}")
    if args.min_labels < 1:
        raise UsageError(f"--min-labels must be at least 1, got {args.min_labels}")
    if args.publish and not args.namespace:
        raise UsageError("--publish needs --namespace (e.g. MLOpsKit/churn-prod)")
    if args.positive_label == args.negative_label:
        raise UsageError("--positive-label and --negative-label must differ")
    try:
        facets = tuple(bias.parse_facet(text) for text in args.facet)
        limits = dict(bias.parse_limit(text) for text in args.bias_limit)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if limits and not facets:
        raise UsageError("--bias-limit needs at least one --facet")
    if facets and not args.baseline:
        raise UsageError("--facet needs --baseline, the model whose feature order reads requests")
    _check_sharding(args)
    judges = args.summary_to is None
    if judges and not args.baseline and not args.evaluation:
        raise UsageError("pass --baseline (a model package ARN) or --evaluation")
    delay = timedelta(hours=args.label_delay_hours)
    end, start = parse_end(args.end, delay, args.now), None
    if args.window_from is not None:
        if args.end is not None or args.now is not None:
            raise UsageError("--window-from sets the window: leave out --end and --now")
        window = read_window(args.window_from, args.region, args.endpoint_url)
        end, start = window.end, window.start
        args.window_hours = (end - start).total_seconds() / 3600
    return Options(
        capture=args.capture,
        ground_truth=args.ground_truth,
        baseline=args.baseline,
        evaluation=args.evaluation,
        output=args.output,
        window_hours=args.window_hours,
        label_delay_hours=args.label_delay_hours,
        end=end,
        settings=Settings(
            alpha=args.alpha,
            min_drop=args.min_drop,
            min_labels=args.min_labels,
            monitored=tuple(dict.fromkeys(args.metric)) if args.metric else MONITORABLE,
        ),
        facets=facets,
        bias_limits=limits,
        vocabulary=Vocabulary(args.positive_label, args.negative_label),
        namespace=args.namespace,
        endpoint_name=args.endpoint_name,
        publish=args.publish,
        region=args.region,
        endpoint_url=args.endpoint_url,
        list_to=args.list_to,
        labels_list_to=args.labels_list_to,
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
    if args.labels_list_to is not None and args.list_to is None:
        raise UsageError("--labels-list-to names a manifest: it needs --list-to")


def parse_end(text: str | None, delay: timedelta, now: str | None = None) -> datetime:
    if text is not None and now is not None:
        raise UsageError("--end and --now both set the window's end: pass one")
    if text is None:
        return (_moment(now, "--now") if now is not None else datetime.now(UTC)) - delay
    return _moment(text, "--end")


def _moment(text: str, flag: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag} {text!r} is not an ISO 8601 time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _log(message: str) -> None:
    print(message, flush=True)  # the job's stdout is a pipe to CloudWatch Logs


def run(
    options: Options, log: Callable[[str], None] = _log, progress: RecordsHook | None = None
) -> reports.QualityReport:
    """``progress``, when given, is told the capture and label lines read so far."""
    if options.sharded:
        from monitoring import quality_shards  # it imports this module

        return quality_shards.run(options, log, progress)
    began = time.perf_counter()
    source, baseline_evaluation = load_evaluation(options)
    inputs = input_parser(options)
    files = list_files(options, log)
    predictions, labels = readers(options, inputs)
    stream(files.capture_store, files.capture, predictions.add, progress, 0)
    stream(files.label_store, files.labels, labels.add, progress, predictions.counts.lines)
    joined = join(predictions, labels)
    tally = Tally(len(files.capture), len(files.labels), files.folders, files.endpoint)
    return judge(options, source, baseline_evaluation, joined, tally, began, log)


def load_evaluation(options: Options) -> tuple[str, evaluations.Evaluation]:
    """Where the baseline's evaluation is, and the evaluation."""
    source = evaluations.locate(
        options.baseline,
        options.evaluation,
        region=options.region,
        endpoint_url=options.endpoint_url,
    )
    return source, evaluations.load(
        source, region=options.region, endpoint_url=options.endpoint_url
    )


def input_parser(options: Options) -> RecordParser | None:
    """With --facet, the served model's request parser (checked to know the facets)."""
    if not options.facets:
        return None
    assert options.baseline is not None  # parse_options requires it with --facet
    model = baselines.load(
        options.baseline, region=options.region, endpoint_url=options.endpoint_url
    )
    _check_facets(options.facets, model)
    return RecordParser(model, options.start, options.end)


def readers(
    options: Options, inputs: RecordParser | None, key_hash: KeyHash = hash
) -> tuple[Predictions, Labels]:
    """Empty readers of the window's capture and labels."""
    predictions = Predictions(
        options.start,
        options.end,
        OutputReader(options.vocabulary.positive, options.vocabulary.negative),
        inputs,
        tuple(dict.fromkeys(f.name for f in options.facets)),
        key_hash,
    )
    return predictions, Labels(options.vocabulary, key_hash)


@dataclass(frozen=True)
class Tally:
    """What the report says of the files read."""

    capture_files: int
    label_files: int
    folders: int  # variant folders under --capture (0: no capture layout)
    endpoint: str | None


def judge(
    options: Options,
    source: str,
    baseline_evaluation: evaluations.Evaluation,
    joined: Joined,
    tally: Tally,
    began: float,
    log: Callable[[str], None] = _log,
) -> reports.QualityReport:
    """The report on the window's joined rows: one pass's, or the merge of shards'."""
    counts = joined.counts
    log(
        f"read {counts.capture.lines} capture and {counts.labels.lines} label lines: "
        f"{counts.labelled_records} records labelled"
    )
    assessment = assess(joined.labels, joined.scores, baseline_evaluation, options.settings)
    readable = joined.facet_rows
    drift, bias_status = _bias(
        options,
        joined.labels[readable],
        joined.scores[readable],
        {name: values[readable] for name, values in joined.facets.items()},
    )
    return reports.QualityReport(
        capture=options.capture,
        ground_truth=options.ground_truth,
        baseline=options.baseline,
        evaluation=source,
        endpoint=tally.endpoint,
        start=options.start,
        end=options.end,
        labels_until=options.labels_until,
        settings=options.settings,
        counts=counts,
        assessment=assessment,
        baseline_metrics={m: baseline_evaluation.value(m) for m in options.settings.monitored},
        bias=drift,
        bias_status=bias_status,
        capture_files=tally.capture_files,
        label_files=tally.label_files,
        folders=tally.folders,
        seconds=time.perf_counter() - began,
    )


@dataclass(frozen=True)
class WindowFiles:
    capture_store: Store
    label_store: Store
    capture: list[str]  # the window's capture files
    labels: list[str]  # the label files collected from its start until the label delay
    folders: int  # variant folders under --capture (0: no capture layout)
    endpoint: str | None
    roots: tuple[str, ...] = ()  # those folders


def list_files(
    options: Options, log: Callable[[str], None] = _log, share: bool = False
) -> WindowFiles:
    """``share``: --capture is a shard's download, which may be absent when it got no file."""
    capture_store = store_for(options.capture, options)
    found = find_roots(capture_store, options.capture, options.endpoint_name)
    if not found.roots:
        missing = isinstance(capture_store, LocalStore) and not Path(options.capture).is_dir()
        if missing and not share:
            raise CaptureNotFoundError(f"--capture {options.capture}: no such folder")
        log(f"no capture layout (<endpoint>/<variant>/yyyy/...) under {options.capture}")
    if options.endpoint_name is None and len(found.endpoints) > 1:
        raise UsageError(
            f"--capture {options.capture} holds several endpoints "
            f"({', '.join(found.endpoints)}); pass --endpoint-name"
        )
    label_store = store_for(options.ground_truth, options)
    if isinstance(label_store, LocalStore) and not Path(options.ground_truth).is_dir():
        raise CaptureNotFoundError(f"--ground-truth {options.ground_truth}: no such folder")
    files = WindowFiles(
        capture_store=capture_store,
        label_store=label_store,
        capture=window_files(capture_store, found.roots, options.start, options.end),
        # Labels are filed by the hour they were collected: from the window's start on.
        labels=window_files(
            label_store, (options.ground_truth,), options.start, options.labels_until
        ),
        folders=len(found.roots),
        endpoint=options.endpoint_name or (found.endpoints[0] if found.endpoints else None),
        roots=found.roots,
    )
    log(
        f"window {options.start:%Y-%m-%dT%H:%M:%SZ} .. {options.end:%Y-%m-%dT%H:%M:%SZ}: "
        f"{len(files.capture)} capture file(s); labels until "
        f"{options.labels_until:%Y-%m-%dT%H:%M:%SZ}: {len(files.labels)} file(s)"
    )
    return files


def _check_facets(facets: tuple[bias.Facet, ...], model: baselines.Baseline) -> None:
    for facet in facets:
        spec = model.features.get(facet.name)
        if spec is None:
            raise UsageError(
                f"--facet {facet}: {facet.name} is not a feature of the model "
                f"({', '.join(model.feature_order)})"
            )
        if isinstance(spec, baselines.NumericBaseline):
            try:
                [float(v) for v in facet.sensitive_values]
            except ValueError:
                raise UsageError(
                    f"--facet {facet}: {facet.name} is numeric, so its values are thresholds "
                    "and must be numbers"
                ) from None


def stream(
    store: Store,
    files: list[str],
    add: Callable[[bytes], None],
    progress: RecordsHook | None,
    already: int,
) -> None:
    lines = 0
    for name in files:
        for line in store.lines(name):
            add(line)
            lines += 1
            if progress is not None and lines % PROGRESS_EVERY_LINES == 0:
                progress(already + lines)
    if progress is not None:
        progress(already + lines)


def _bias(
    options: Options, labels: np.ndarray, scores: np.ndarray, facets: dict[str, np.ndarray]
) -> tuple[BiasDrift | None, str]:
    if not options.facets:
        return None, "not_configured"
    if len(labels) < options.settings.min_labels:
        return None, Status.INSUFFICIENT
    if len(np.unique(labels)) < 2:
        return None, Status.ONE_CLASS
    predicted = (scores >= THRESHOLD).astype(np.int64)
    drift = measure(
        facets,
        labels.astype(np.int64),
        predicted,
        options.facets,
        options.bias_limits,
        options.settings.alpha,
    )
    return drift, "measured"


def store_for(location: str, options: Options) -> Store:
    """``location``'s store; a batch transform's capture reads as records, its inputs paired
    with its outputs (ground truth never has batch capture's layout: left as it is)."""
    from monitoring import batch_capture

    store: Store = (
        S3Store(s3_client(options.region, options.endpoint_url))
        if uri.is_s3(location)
        else LocalStore()
    )
    if location != options.capture:
        return store
    return batch_capture.wrap(
        store, location, predictions=True, region=options.region, endpoint_url=options.endpoint_url
    )


def write(
    report: reports.QualityReport,
    output: str,
    region: str | None = None,
    endpoint_url: str | None = None,
) -> list[str]:
    files = [
        (reports.JSON_FILE, reports.to_json(report)),
        (reports.HTML_FILE, reports.to_html(report)),
        (reports.VIOLATIONS_FILE, reports.dumps(reports.constraint_violations(report))),
    ]
    if report.bias is not None:
        files += [
            (reports.BIAS_ANALYSIS_FILE, reports.dumps(report.bias.analysis)),
            (reports.BIAS_VIOLATIONS_FILE, reports.dumps(report.bias.constraint_violations())),
        ]
    return write_files(files, output, region, endpoint_url)


def execute(
    options: Options, log: Callable[[str], None] = _log, progress: RecordsHook | None = None
) -> reports.QualityReport:
    """Run, write the report and publish: the whole job, raising on caller errors."""
    from monitoring import quality_metrics

    report = run(options, log, progress)
    for target in write(report, options.output, options.region, options.endpoint_url):
        log(f"wrote {target}")
    if options.publish:
        if report.endpoint is None:
            raise UsageError("cannot tell the endpoint from the capture path; pass --endpoint-name")
        assert options.namespace is not None  # parse_options requires it with --publish
        sent = quality_metrics.publish(
            report,
            namespace=options.namespace,
            endpoint=report.endpoint,
            region=options.region,
            endpoint_url=options.endpoint_url,
        )
        log(f"published {sent} metric(s) to CloudWatch namespace {options.namespace}")
    log(report.summary)
    return report


def silence(report: reports.QualityReport) -> str | None:
    """Why a run that found nothing to judge is not a success, or None."""
    if not report.folders:
        return (
            f"no capture layout under {report.capture}: expected <endpoint>/<variant>/yyyy/mm/"
            "dd/hh/*.jsonl, the years at most two levels below --capture"
        )
    if report.counts.labelled_records == 0:
        c = report.counts
        return (
            f"no labelled record in the window: {c.capture.records} capture record(s), "
            f"{c.labels.labels} label(s) read from {report.label_files} file(s) under "
            f"{report.ground_truth} ({c.orphan_labels} matched no record); check that labels "
            "name the records' inferenceId (or eventId) and arrive within --label-delay-hours"
        )
    return None


def main(argv: list[str] | None = None, progress: RecordsHook | None = None) -> int:
    """The job's command line; ``progress`` (for displays) is told the lines read so far."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        options = parse_options(argv)
        if options.list_to is not None or options.summary_to is not None:
            from monitoring import quality_shards  # it imports this module

            done = quality_shards.execute_step(options)
            if done is None:
                return EXIT_OK
            report = done
        else:
            report = execute(options, progress=progress)
    except (
        UsageError,
        baselines.BaselineError,
        evaluations.EvaluationError,
        CaptureNotFoundError,
        uri.UriError,
        ShardError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ClientError, BotoCoreError) as exc:
        print(f"error: AWS refused a request: {exc}", file=sys.stderr)
        return EXIT_AWS
    reason = silence(report)
    if reason is not None:
        print(f"error: {reason}", file=sys.stderr)
        return EXIT_SILENT
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
