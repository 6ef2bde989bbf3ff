"""The quality job over N processing instances (or N local processes): list, summarise, merge.

The three steps (flags and files: monitoring/shards.py; the pipeline: pipelines/
quality_pipeline.py):

1. ``--list-to <s3 uri>``: list the window's capture files as one pass does and write them
   as a SageMaker manifest; the label files (collected from the window's start until the
   label delay) as a second (``--labels-list-to``, default ``labels-<name>`` beside the
   first); ``window.json`` (the later steps start minutes later, so they take this window
   with ``--window-from``); and, given ``--baseline``, the model's ``baseline/`` for the
   network-isolated summarise step. Listing once also fixes the label files every shard
   reads, though labels keep arriving. A window without capture or label files has nothing
   to shard: this step then runs the whole job (report, metrics, exit 3).
2. ``--summary-to <folder | s3 prefix>``: on each instance, join the capture files under
   --capture (its ShardedByS3Key share) with every label file under --ground-truth (the
   labels' manifest, FullyReplicated: labels are small, and a record's label may be in any
   file) and write the shard's summary (monitoring/quality_summary.py).
3. ``--merge-from <folder | s3 prefix>``: merge the summaries and report exactly as one pass.

Ids are hashed with ``join.stable_hash`` here, so that shards agree on them. What the merge
cannot know on SageMaker is a variant folder none of whose files is in the window: it
counts (``files.variant_folders``) only folders some shard read a file from. Locally
(``--shards N``) the listing is at hand and the count is one pass's.
"""

from __future__ import annotations

import os
import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from monitoring import baseline as baselines
from monitoring import quality as job
from monitoring import quality_report as reports
from monitoring import quality_summary as summaries
from monitoring import shards
from monitoring.join import complete, match, stable_hash
from monitoring.store import s3_client
from training import uri

LABELS_MANIFEST_PREFIX = "labels-"


def _log(message: str) -> None:
    print(message, flush=True)  # the job's stdout is a pipe to CloudWatch Logs


def run(
    options: job.Options,
    log: Callable[[str], None] = _log,
    progress: job.RecordsHook | None = None,
) -> reports.QualityReport:
    """The report of a merge (--merge-from) or of a local sharded run (--shards N)."""
    if options.merge_from is not None:
        return merge_run(options, log)
    return local_run(options, log, progress)


def execute_step(
    options: job.Options, log: Callable[[str], None] = _log
) -> reports.QualityReport | None:
    """--list-to or --summary-to: write, report nothing; or, when the list step finds no
    capture or no label file, the whole (small, silent) job's report: nothing to shard,
    and a manifest may not be empty."""
    if options.list_to is not None:
        return list_step(options, log)
    if options.summary_to is not None:
        summary_step(options, log)
        return None
    raise job.UsageError("neither --list-to nor --summary-to")


# --- step 1: list ----------------------------------------------------------------------------


def labels_manifest_uri(options: job.Options) -> str:
    assert options.list_to is not None
    if options.labels_list_to is not None:
        return options.labels_list_to
    folder, name = posixpath.split(options.list_to)
    return posixpath.join(folder, LABELS_MANIFEST_PREFIX + name)


def list_step(
    options: job.Options, log: Callable[[str], None] = _log
) -> reports.QualityReport | None:
    """Write the capture and labels manifests, window.json beside them (the later steps
    start minutes from now: they judge this window) and, given --baseline, the served
    model's baseline/ for the network-isolated summarise step (monitoring/shards.py)."""
    assert options.list_to is not None
    for flag, location in (
        ("--capture", options.capture),
        ("--ground-truth", options.ground_truth),
    ):
        if not uri.is_s3(location):
            raise job.UsageError(f"--list-to lists S3 for SageMaker: {flag} must be s3://")
    labels_to = labels_manifest_uri(options)
    if labels_to == options.list_to:
        raise job.UsageError("--labels-list-to must differ from --list-to")
    files = job.list_files(options, log)
    if not files.capture or not files.labels:
        log("nothing to shard: running the whole job here")
        return job.execute(options, log)
    if options.baseline is not None:
        model = baselines.load(
            options.baseline, region=options.region, endpoint_url=options.endpoint_url
        )
        written = shards.write_baseline_copy(
            options.list_to, model, options.region, options.endpoint_url
        )
        log(f"wrote {', '.join(written)}")
    window = shards.window_uri(options.list_to)
    shards.write_window(
        window, shards.Window(options.start, options.end), options.region, options.endpoint_url
    )
    log(f"wrote {window}")
    capture = shards.manifest_for(files.capture, options.capture)
    labels = shards.manifest_for(files.labels, options.ground_truth)
    for target, manifest, what in (
        (options.list_to, capture, "capture"),
        (labels_to, labels, "label"),
    ):
        shards.write_manifest(target, manifest, options.region, options.endpoint_url)
        log(f"wrote {target}: {len(manifest.keys)} {what} file(s)")
    return None


# --- step 2: summarise -----------------------------------------------------------------------


@dataclass(frozen=True)
class ShardTask:
    """One shard's work: its capture files and all the label files (paths or s3 URIs)."""

    options: job.Options
    shard: str
    capture: tuple[str, ...]
    labels: tuple[str, ...]
    roots: tuple[str, ...]  # variant folders under --capture holding these files
    endpoints: tuple[str, ...]


def summary_step(options: job.Options, log: Callable[[str], None] = _log) -> str:
    """Summarise the capture under --capture (this instance's share) into --summary-to."""
    assert options.summary_to is not None
    shard = shards.check_shard_id(options.shard_id or shards.host_id())
    # ShardedByS3Key gives an instance no file when files are fewer than instances.
    files = job.list_files(options, log, share=True)
    task = ShardTask(
        options,
        shard,
        tuple(files.capture),
        tuple(files.labels),
        tuple(relative(r, options.capture) for r in files.roots),
        (files.endpoint,) if files.endpoint else (),
    )
    summary = summarise(task)
    name = shards.summary_name(shard)
    arrays_file = summaries.arrays_name(name)
    envelope, data = summaries.to_files(summary, arrays_file)
    s3 = s3_client(options.region, options.endpoint_url) if uri.is_s3(options.summary_to) else None
    # The arrays first: a summary's JSON is only there once its arrays are.
    uri.write_bytes(uri.join(options.summary_to, arrays_file), data, s3=s3)
    written = shards.write_summary(
        options.summary_to, envelope, options.region, options.endpoint_url
    )
    m = summary.matches
    log(
        f"wrote {written}: {len(summary.files)} capture file(s), {len(m.keys)} record(s), "
        f"{int(m.row_counts.sum())} labelled row(s) before the merge's duplicate check"
    )
    return written


def summarise(task: ShardTask) -> summaries.ShardSummary:
    """Read one shard's capture files and all the labels; match them (a worker process's
    entry point too, so module-level and picklable)."""
    options = task.options
    inputs = job.input_parser(options)
    predictions, labels = job.readers(options, inputs, stable_hash)
    capture_store = job.store_for(options.capture, options)
    blocks = []
    for name in task.capture:
        before = predictions.counts.records
        job.stream(capture_store, [name], predictions.add, None, 0)
        blocks.append(
            summaries.FileBlock(
                relative(name, options.capture), predictions.counts.records - before
            )
        )
    job.stream(job.store_for(options.ground_truth, options), list(task.labels), labels.add, None, 0)
    matches, _ = match(predictions, labels)
    return summaries.ShardSummary(
        shard=task.shard,
        context={
            "run": run_context(options),
            "labels": summaries.label_context(labels, len(task.labels)),
        },
        files=tuple(blocks),
        capture=predictions.counts,
        roots=task.roots,
        endpoints=task.endpoints,
        matches=matches,
    )


def run_context(options: job.Options) -> dict[str, object]:
    """What a shard's statistics are of; the merge refuses summaries of anything else."""
    return {
        "start": options.start.isoformat(),
        "end": options.end.isoformat(),
        "labels_until": options.labels_until.isoformat(),
        "positive_label": options.vocabulary.positive,
        "negative_label": options.vocabulary.negative,
        "facet_columns": list(dict.fromkeys(f.name for f in options.facets)),
    }


def relative(name: str, base: str) -> str:
    """``name`` below ``base`` as a /-separated relative path (the capture layout's)."""
    if uri.is_s3(base):
        prefix = base.rstrip("/") + "/"
        return name[len(prefix) :] if name.startswith(prefix) else name
    try:
        return Path(name).relative_to(Path(base)).as_posix()
    except ValueError:
        return Path(name).as_posix()


# --- step 3: merge ---------------------------------------------------------------------------


def merge_run(options: job.Options, log: Callable[[str], None] = _log) -> reports.QualityReport:
    assert options.merge_from is not None
    began = time.perf_counter()
    source, evaluation = job.load_evaluation(options)
    envelopes = shards.read_summaries(
        options.merge_from, summaries.JOB, options.region, options.endpoint_url
    )
    _check_run(envelopes[0].context, options, envelopes[0].shard)
    s3 = s3_client(options.region, options.endpoint_url) if uri.is_s3(options.merge_from) else None
    parts = []
    for envelope in envelopes:
        arrays_file = str((envelope.body.get("arrays") or {}).get("file", ""))
        if arrays_file != summaries.arrays_name(shards.summary_name(envelope.shard)):
            raise shards.ShardError(f"summary {envelope.shard!r} names no arrays file of its own")
        data = uri.read_bytes(uri.join(options.merge_from, arrays_file), s3=s3)
        parts.append(summaries.from_files(envelope, data))
    merged = summaries.merge(parts)
    log(f"merged {len(parts)} shard summaries: {merged.capture_files} capture file(s)")
    if options.endpoint_name is None and len(merged.endpoints) > 1:
        raise job.UsageError(
            f"the shards read several endpoints ({', '.join(merged.endpoints)}); "
            "pass --endpoint-name"
        )
    tally = job.Tally(
        merged.capture_files,
        merged.label_files,
        len(merged.roots),
        options.endpoint_name or (merged.endpoints[0] if merged.endpoints else None),
    )
    joined = complete(merged.matches, merged.capture, merged.labels)
    return job.judge(options, source, evaluation, joined, tally, began, log)


def _check_run(context: dict[str, object], options: job.Options, shard: str) -> None:
    expected = run_context(options)
    found = context.get("run")
    if found != expected:
        found = found if isinstance(found, dict) else {}
        differ = sorted(k for k in expected if found.get(k) != expected[k])
        raise shards.ShardError(
            f"shard {shard!r} summarised another run than this merge's ({', '.join(differ)} "
            "differ): pass every step the same --end, --window-hours, --label-delay-hours, "
            "labels and --facet columns"
        )


# --- locally: --shards N ---------------------------------------------------------------------


def local_run(
    options: job.Options,
    log: Callable[[str], None] = _log,
    progress: job.RecordsHook | None = None,
) -> reports.QualityReport:
    """List, summarise each shard in its own process, merge in memory."""
    began = time.perf_counter()
    source, evaluation = job.load_evaluation(options)
    job.input_parser(options)  # a facet the model lacks is a usage error before any fan-out
    files = job.list_files(options, log)
    parts = shards.partition(files.capture, options.shards)
    tasks = [
        ShardTask(options, f"shard-{n}", part, tuple(files.labels), (), ())
        for n, part in enumerate(parts, start=1)
    ]
    log(f"{options.shards} shards of {', '.join(str(len(p)) for p in parts)} capture file(s)")
    # No more processes than cores: more would only take turns (and memory).
    processes = min(len(tasks), os.cpu_count() or 1)
    merged = summaries.merge(shards.fan_out(summarise, tasks, processes))
    if progress is not None:
        progress(merged.capture.lines + merged.labels.counts.lines)
    tally = job.Tally(len(files.capture), len(files.labels), files.folders, files.endpoint)
    joined = complete(merged.matches, merged.capture, merged.labels)
    return job.judge(options, source, evaluation, joined, tally, began, log)
