"""The drift job's sharded modes: list, summarise, merge, and local fan-out.

The flags and file formats are monitoring.shards' contract; this module fills them with the
drift job's statistics: the parse counts (monitoring.capture.Counts) and the bin and category
counts (monitoring.statistics.DriftState). Both are sums, so the merged report equals the
single pass's (everything but its ``seconds``), whichever files each shard read.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from monitoring import baseline as baselines
from monitoring import drift, shards
from monitoring import report as reports
from monitoring.capture import Counts
from monitoring.statistics import DriftState
from monitoring.store import LocalStore, Store
from training import uri

JOB = "drift"


@dataclass(frozen=True)
class Part:
    """What some shard read: its parse counts, its drift state, files and seconds."""

    counts: Counts
    state: DriftState
    files: int
    seconds: float


@dataclass(frozen=True)
class Credentials:
    """The caller's session, frozen, for spawned workers reading S3 capture: ``mlops drift
    --stack`` sets boto3's default session (a profile, an assumed role), which a new process
    would not have."""

    access_key: str
    secret_key: str = field(repr=False)
    token: str | None = field(repr=False)
    region: str | None


@dataclass(frozen=True)
class ShardTask:
    """One local process's share: everything it needs, picklable for a spawned worker."""

    options: drift.Options
    baseline: baselines.Baseline
    files: tuple[str, ...]
    shard: str
    credentials: Credentials | None = None


# --- parse counts --------------------------------------------------------------------------


def counts_to_summary(counts: Counts) -> dict[str, Any]:
    return {
        f.name: dict(sorted(value.items())) if isinstance(value, Counter) else value
        for f in fields(counts)
        for value in [getattr(counts, f.name)]
    }


def counts_from_summary(summary: Any) -> Counts:
    counts = Counts()
    if not isinstance(summary, dict) or set(summary) != {f.name for f in fields(counts)}:
        raise ValueError("the parse counts lack fields or have others")
    for f in fields(counts):
        value = summary[f.name]
        if isinstance(getattr(counts, f.name), Counter):
            if not isinstance(value, dict) or not all(_count(v) for v in value.values()):
                raise ValueError(f"{f.name}: counts by reason expected")
            setattr(counts, f.name, Counter({str(k): v for k, v in value.items() if v}))
        elif _count(value):
            setattr(counts, f.name, value)
        else:
            raise ValueError(f"{f.name}: a count expected, got {value!r}")
    return counts


def merge_counts(parts: Sequence[Counts]) -> Counts:
    """The sum of ``parts``, field by field (a new Counts)."""
    total = Counts()
    for part in parts:
        for f in fields(total):
            mine, theirs = getattr(total, f.name), getattr(part, f.name)
            if isinstance(mine, Counter):
                mine.update(theirs)
            else:
                setattr(total, f.name, mine + theirs)
    return total


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# --- summaries -----------------------------------------------------------------------------


def context(options: drift.Options, baseline: baselines.Baseline) -> dict[str, Any]:
    """What the counts are of: summaries of other baselines or windows do not add up."""
    return {
        "baseline": shards.fingerprint(baseline),
        "features": list(baseline.feature_order),
        "start": options.start.isoformat(),
        "end": options.end.isoformat(),
    }


def to_summary(
    part: Part, shard: str, options: drift.Options, baseline: baselines.Baseline
) -> shards.Summary:
    body = {
        "counts": counts_to_summary(part.counts),
        "state": part.state.to_summary(),
        "files": part.files,
        "seconds": part.seconds,
    }
    return shards.Summary(JOB, shard, context(options, baseline), body)


def from_summary(summary: shards.Summary, baseline: baselines.Baseline) -> Part:
    body = summary.body
    try:
        counts = counts_from_summary(body.get("counts"))
        state = DriftState.from_summary(baseline, body.get("state"))  # type: ignore[arg-type]
        files, seconds = body.get("files"), body.get("seconds")
        if not isinstance(files, int) or not _count(files):
            raise ValueError(f"files: a count expected, got {files!r}")
        if not isinstance(seconds, int | float):
            raise ValueError(f"seconds: a number expected, got {seconds!r}")
    except (ValueError, TypeError) as exc:
        raise shards.ShardError(f"summary of shard {summary.shard!r}: {exc}") from None
    if counts.rows != state.rows:
        raise shards.ShardError(
            f"summary of shard {summary.shard!r}: {counts.rows} rows parsed, {state.rows} counted"
        )
    return Part(counts, state, files, float(seconds))


def merge(parts: Sequence[Part], baseline: baselines.Baseline) -> Part:
    state = DriftState(baseline)
    for part in parts:
        state.merge(part.state)
    return Part(
        merge_counts([p.counts for p in parts]),
        state,
        sum(p.files for p in parts),
        max((p.seconds for p in parts), default=0.0),
    )


# --- modes ---------------------------------------------------------------------------------


def summarise(task: ShardTask) -> shards.Summary:
    """Read one shard's files into its summary (a spawned worker's entry point too)."""
    began = time.perf_counter()
    if task.credentials is not None:
        import boto3

        c = task.credentials
        boto3.setup_default_session(
            aws_access_key_id=c.access_key,
            aws_secret_access_key=c.secret_key,
            aws_session_token=c.token,
            region_name=c.region,
        )
    store = drift._store(task.options)
    counts, state = drift.read(task.files, store, task.baseline, task.options, began, log=_quiet)
    part = Part(counts, state, len(task.files), time.perf_counter() - began)
    return to_summary(part, task.shard, task.options, task.baseline)


def execute_step(
    options: drift.Options, log: Callable[[str], None] = drift._log
) -> reports.DriftReport | None:
    """A pipeline step's mode: --list-to or --summary-to. None when done; a report when
    --list-to found nothing to shard and ran the whole (empty) job instead."""
    if options.list_to is not None:
        return list_step(options, log)
    assert options.summary_to is not None
    summarise_step(options, log)
    return None


def list_step(options: drift.Options, log: Callable[[str], None]) -> reports.DriftReport | None:
    """Write the window's files as a manifest for the summarise step.

    A window without files runs the whole job here (report, CaptureRecords=0, exit 3), since
    there is nothing to shard and a manifest may not be empty.
    """
    listing = drift.list_window(options, drift._store(options), log)
    if not listing.files:
        return drift.execute(options, log)
    assert options.list_to is not None
    manifest = shards.manifest_for(listing.files, options.capture)
    written = shards.write_baseline_copy(
        options.list_to, drift.load_baseline(options), options.region, options.endpoint_url
    )
    log(f"wrote {', '.join(written)}")
    shards.write_manifest(options.list_to, manifest, options.region, options.endpoint_url)
    log(f"wrote {options.list_to}: {len(manifest.keys)} capture file(s) to shard")
    # The later steps start minutes from now: they judge this window, not theirs.
    window = shards.window_uri(options.list_to)
    shards.write_window(
        window, shards.Window(options.start, options.end), options.region, options.endpoint_url
    )
    log(f"wrote {window}")
    return None


def summarise_step(options: drift.Options, log: Callable[[str], None]) -> str:
    """Summarise this instance's share of the files into ``--summary-to``.

    A local --capture is the instance's download of the manifest (SageMaker keeps the keys'
    paths below LocalPath): every file there is read, since the list step chose the window's.
    An instance may get no files at all; it still writes a (zero) summary.
    """
    assert options.summary_to is not None
    shard = shards.check_shard_id(options.shard_id or shards.host_id())
    baseline = drift.load_baseline(options)
    store = drift._store(options)
    if isinstance(store, LocalStore):
        files = tuple(LocalStore().files(options.capture))
    else:
        files = drift.list_window(options, store, log).files
    log(f"shard {shard}: {len(files)} capture file(s)")
    summary = summarise(ShardTask(options, baseline, files, shard))
    target = shards.write_summary(options.summary_to, summary, options.region, options.endpoint_url)
    log(f"wrote {target}")
    return target


def run(
    options: drift.Options,
    log: Callable[[str], None] = drift._log,
    progress: drift.RecordsHook | None = None,
) -> reports.DriftReport:
    """The report of a sharded run: --merge-from's summaries, or --shards local processes."""
    began = time.perf_counter()
    baseline = drift.load_baseline(options)
    store = drift._store(options)
    if options.merge_from is not None:
        summaries = shards.read_summaries(
            options.merge_from, JOB, options.region, options.endpoint_url
        )
        listing = _merge_listing(options, store, log)
    else:
        listing = drift.list_window(options, store, log)
        # By location, not store type: a batch-capture store wraps the S3 one.
        credentials = _caller_credentials() if uri.is_s3(options.capture) else None
        tasks = [
            ShardTask(options, baseline, files, f"local-{i}", credentials)
            for i, files in enumerate(shards.partition(listing.files, options.shards))
        ]
        log(f"reading {len(listing.files)} file(s) in {len(tasks)} processes")
        if progress is not None:
            progress(0)
        summaries = shards.fan_out(summarise, tasks)
    expected = context(options, baseline)
    for summary in shards.check_summaries(summaries):
        if summary.context != expected:
            raise shards.ShardError(
                f"shard {summary.shard!r} summarises another run ({summary.context}), "
                f"not {expected}"
            )
    total = merge([from_summary(s, baseline) for s in summaries], baseline)
    if progress is not None:
        progress(total.counts.lines)
    log(f"merged {len(summaries)} shard(s): {total.counts.lines} records, {total.files} file(s)")
    seconds = time.perf_counter() - began
    if options.merge_from is not None:
        seconds += total.seconds  # the slowest shard ran before this step
    return drift.build_report(
        options, baseline, listing, total.counts, total.state, seconds, total.files
    )


def _merge_listing(
    options: drift.Options, store: Store, log: Callable[[str], None]
) -> drift.Listing:
    """The merge step's endpoint and variant folders, found as the single job finds them
    (delimiter listings above the years); the list step listed the files."""
    source, endpoint = drift.locate(options, store, log)
    return drift.Listing((), len(source.roots), endpoint)


def _caller_credentials() -> Credentials | None:
    import boto3

    session = boto3.DEFAULT_SESSION
    found = session.get_credentials() if session is not None else None
    if session is None or found is None:
        return None  # workers find credentials as the caller did: environment, profile
    frozen = found.get_frozen_credentials()
    return Credentials(frozen.access_key, frozen.secret_key, frozen.token, session.region_name)


def _quiet(message: str) -> None:
    """Shards log nothing per line: N processes would interleave on one console."""
