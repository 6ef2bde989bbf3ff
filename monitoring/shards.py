"""Run a monitoring job over N processing instances (or N local processes): shard, then merge.

A week of capture does not fit one instance, so a job whose statistics merge exactly (the
drift job's bin and category counts, the quality job's confusion counts) runs in three modes.
Both jobs (monitoring.drift, monitoring.quality) take the same flags:

``--list-to <manifest uri>``
    Mode 1, list: find the window's input files as the single job would and write them as a
    SageMaker manifest (``manifest_for``, ``write_manifest``), and beside it ``window.json``,
    the window it chose (``write_window``, ``window_uri``). The pipeline's next step reads
    its capture input from that manifest with S3DataType ``ManifestFile`` and
    S3DataDistributionType ``ShardedByS3Key``, so each instance downloads its share of the
    files below the ProcessingInput's LocalPath, keeping the keys' relative paths.
``--window-from <window.json | folder | s3 uri>``
    Modes 2 and 3: the window the list step chose, instead of --end (and --window-hours).
    The steps start minutes apart, so "now" differs between them; the pipeline passes the
    list step's window.json (a folder holding it: a ProcessingInput's LocalPath). See
    ``read_window``.
``--baseline <folder>`` in mode 2
    The summarise step runs network isolated, so it cannot resolve a model package ARN:
    the list step also writes ``baseline/`` beside the manifest (``write_baseline_copy``:
    baseline.json and manifest.json, which monitoring.baseline.load reads back equal), and
    the pipeline passes that folder. Contexts compare ``fingerprint``s, not the sources.
``--summary-to <folder | s3 prefix>`` [``--shard-id <id>``]
    Mode 2, summarise: read this instance's files (``--capture`` is the local download folder)
    and write its mergeable statistics, nothing else, as ``summary-<shard id>.json``
    (``write_summary``). The shard id defaults to the SageMaker host (``host_id``: current_host
    in /opt/ml/config/resourceconfig.json), else ``local``; every instance uploads to the same
    prefix, so the names must differ.
``--merge-from <folder | s3 prefix>``
    Mode 3, merge: read every ``summary-*.json`` there (``read_summaries``), merge them and
    finish as the single job does (``--output``, ``--publish``). The merged result equals the
    single pass over all files exactly, whichever files each shard got.
``--shards N`` (local only)
    Partition the files into N shards (``partition``), summarise each in its own process
    (``fan_out``), merge in memory. N is 1 to 100 (``check_shard_count``).

A summary is JSON: ``{"format": SUMMARY_FORMAT, "version": 1, "job": "<job>", "shard": "<id>",
"context": {...}, "body": {...}}``. ``context`` names what the statistics are of (baseline,
window, thresholds): merge refuses summaries whose contexts differ, since their counts do
not add up to one window.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from monitoring.baseline import Baseline, NumericBaseline
from monitoring.store import s3_client, write_files
from training import uri

MIN_SHARDS = 1
MAX_SHARDS = 100
# SageMaker writes this on every processing instance; its keys ("current_host", "hosts")
# as AWS's own processing containers read them (aws/sagemaker-spark-container,
# smspark/job.py; amazon-sagemaker-examples' distributed processing scripts).
RESOURCE_CONFIG = Path("/opt/ml/config/resourceconfig.json")
LOCAL_SHARD = "local"
WINDOW_FILE = "window.json"
SUMMARY_FORMAT = "mlops-kit/shard-summary"
SUMMARY_VERSION = 1
_SUMMARY_PREFIX = "summary-"
_SUMMARY_SUFFIX = ".json"
# Host names are "algo-1", ...; anything else becomes a file name, so keep it plain.
_SHARD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")

T = TypeVar("T")
R = TypeVar("R")


class ShardError(Exception):
    """A caller mistake in sharding: bad count, manifest, shard id or summaries (exit 2)."""


# --- the manifest ------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    """SageMaker's ManifestFile: one S3 prefix and keys relative to it.

    Format from the SageMaker API reference (S3DataSource / ProcessingS3Input, S3Uri):
    ``[{"prefix": "s3://bucket/some/prefix/"}, "relative/key-1", ...]``; SageMaker appends each
    element to the prefix, so every object comes from the prefix's bucket.
    """

    prefix: str
    keys: tuple[str, ...]

    @property
    def uris(self) -> tuple[str, ...]:
        return tuple(self.prefix + key for key in self.keys)

    def to_json(self) -> bytes:
        return json.dumps([{"prefix": self.prefix}, *self.keys], indent=0).encode()


def manifest_for(files: Sequence[str], prefix: str) -> Manifest:
    """The manifest of ``files`` (s3:// URIs) relative to ``prefix`` (the capture prefix).

    Relative to the capture prefix rather than the bucket, so each instance's download
    folder has the capture layout (<endpoint>/<variant>/yyyy/mm/dd/hh) the job reads.
    """
    if not uri.is_s3(prefix):
        raise ShardError(f"a manifest needs an s3:// capture prefix, got {prefix!r}")
    base = prefix.rstrip("/") + "/"
    uri.split(base)  # raises UriError without a bucket
    keys = []
    for name in files:
        if not name.startswith(base) or len(name) == len(base):
            raise ShardError(f"{name} is not below the capture prefix {base}")
        keys.append(name[len(base) :])
    return Manifest(base, tuple(keys))


def parse_manifest(data: bytes, source: str = "manifest") -> Manifest:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        raise ShardError(f"{source} is not JSON") from None
    if (
        not isinstance(document, list)
        or not document
        or not isinstance(document[0], dict)
        or not isinstance(document[0].get("prefix"), str)
        or not all(isinstance(key, str) and key for key in document[1:])
    ):
        raise ShardError(f'{source} is not a manifest: [{{"prefix": "s3://..."}}, "key", ...]')
    return Manifest(document[0]["prefix"], tuple(document[1:]))


def write_manifest(
    target: str, manifest: Manifest, region: str | None = None, endpoint_url: str | None = None
) -> None:
    s3 = s3_client(region, endpoint_url) if uri.is_s3(target) else None
    uri.write_bytes(target, manifest.to_json(), s3=s3)


def read_manifest(
    source: str, region: str | None = None, endpoint_url: str | None = None
) -> Manifest:
    s3 = s3_client(region, endpoint_url) if uri.is_s3(source) else None
    return parse_manifest(uri.read_bytes(source, s3=s3), source)


# --- the window ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """[start, end) in UTC: the records a run judges."""

    start: datetime
    end: datetime

    def to_json(self) -> bytes:
        return json.dumps({"start": self.start.isoformat(), "end": self.end.isoformat()}).encode()


def window_uri(manifest_uri: str) -> str:
    """Where the list step writes its window: beside the manifest."""
    if uri.is_s3(manifest_uri):
        return manifest_uri.rsplit("/", 1)[0] + "/" + WINDOW_FILE
    return str(Path(manifest_uri).with_name(WINDOW_FILE))


def write_window(
    target: str, window: Window, region: str | None = None, endpoint_url: str | None = None
) -> None:
    s3 = s3_client(region, endpoint_url) if uri.is_s3(target) else None
    uri.write_bytes(target, window.to_json(), s3=s3)


def read_window(source: str, region: str | None = None, endpoint_url: str | None = None) -> Window:
    """The window in ``source``: a window.json file or URI, or a folder holding one (at any
    depth: SageMaker may keep the key's path below the input's LocalPath)."""
    path = Path(source)
    if not uri.is_s3(source) and path.is_dir():
        found = sorted(path.rglob(WINDOW_FILE))
        if len(found) != 1:
            raise ShardError(
                f"--window-from {source}: expected one {WINDOW_FILE}, found {len(found)}"
            )
        source = str(found[0])
    elif not uri.is_s3(source) and not path.is_file():
        raise ShardError(f"--window-from {source}: no such file or folder")
    s3 = s3_client(region, endpoint_url) if uri.is_s3(source) else None
    try:
        document = json.loads(uri.read_bytes(source, s3=s3))
        start = datetime.fromisoformat(document["start"])
        end = datetime.fromisoformat(document["end"])
    except (ValueError, KeyError, TypeError):
        raise ShardError(f"--window-from {source}: not a window.json (start, end)") from None
    if start.tzinfo is None or end.tzinfo is None or not start < end:
        raise ShardError(f"--window-from {source}: start and end must be UTC, start first")
    return Window(start.astimezone(UTC), end.astimezone(UTC))


# --- the baseline copy ---------------------------------------------------------------------


BASELINE_FOLDER = "baseline"


def baseline_files(baseline: Baseline) -> list[tuple[str, bytes]]:
    """``baseline`` as a model folder (baseline.json, manifest.json) that loads back equal.

    The summarise step has no network, so it cannot resolve a model package ARN or read the
    archive: the list step leaves this copy beside the manifest. Formats: monitoring/
    baseline.py's parse (version 1) and its feature order, categorical then numeric.
    """
    features: dict[str, Any] = {}
    for name in baseline.feature_order:
        f = baseline.features[name]
        if isinstance(f, NumericBaseline):
            features[name] = {
                "type": "numeric",
                "histogram": {"edges": list(f.edges), "proportions": list(f.proportions)},
                "quantiles": {repr(q): v for q, v in f.quantiles},
            }
        else:
            features[name] = {"type": "categorical", "frequencies": dict(f.frequencies)}
    document = {"version": 1, "rows": baseline.rows, "features": features}
    order = {
        "categorical": [f.name for f in baseline.categorical],
        "numeric": [f.name for f in baseline.numeric],
    }
    return [
        ("baseline.json", json.dumps(document, sort_keys=True).encode()),
        ("manifest.json", json.dumps({"features": order}, sort_keys=True).encode()),
    ]


def write_baseline_copy(
    manifest_uri: str,
    baseline: Baseline,
    region: str | None = None,
    endpoint_url: str | None = None,
) -> list[str]:
    """Write ``baseline_files`` into ``baseline/`` beside the manifest; their paths."""
    if uri.is_s3(manifest_uri):
        folder = manifest_uri.rsplit("/", 1)[0] + "/" + BASELINE_FOLDER
    else:
        folder = str(Path(manifest_uri).with_name(BASELINE_FOLDER))
    return write_files(baseline_files(baseline), folder, region, endpoint_url)


def fingerprint(baseline: Baseline) -> str:
    """The baseline's content, hashed: the same for the ARN and its copy in any folder."""
    return hashlib.sha256(b"".join(data for _, data in baseline_files(baseline))).hexdigest()


# --- shards --------------------------------------------------------------------------------


def check_shard_count(count: int) -> int:
    if not MIN_SHARDS <= count <= MAX_SHARDS:
        raise ShardError(f"--shards must be {MIN_SHARDS} to {MAX_SHARDS}, got {count}")
    return count


def add_arguments(
    parser: argparse.ArgumentParser, *, about: str, list_help: str, summary_help: str
) -> argparse._ArgumentGroup:
    """The contract's flags, in a "sharding" group a job may add its own flags to."""
    group = parser.add_argument_group("sharding", about)
    group.add_argument(
        "--shards",
        type=int,
        default=1,
        help=f"Read the window in N local processes, then merge ({MIN_SHARDS}-{MAX_SHARDS}; "
        "default 1).",
    )
    group.add_argument("--list-to", help=list_help)
    group.add_argument("--summary-to", help=summary_help)
    group.add_argument(
        "--shard-id", help="With --summary-to: the summary's name (default: the SageMaker host)."
    )
    group.add_argument(
        "--window-from",
        help="With --summary-to or --merge-from: the list step's window.json (file, folder "
        "holding it, or s3:// URI) instead of --end and --window-hours.",
    )
    group.add_argument(
        "--merge-from",
        help="Merge the summaries in this folder or s3:// prefix, then report as usual.",
    )
    return group


def mode_problem(args: Any) -> str | None:
    """Why a job's parsed sharding flags (the contract above) do not make one mode, or None.

    ``args`` is the job's argparse namespace: shards, list_to, summary_to, shard_id,
    window_from, merge_from, end and publish."""
    if not MIN_SHARDS <= args.shards <= MAX_SHARDS:
        return f"--shards must be {MIN_SHARDS} to {MAX_SHARDS}, got {args.shards}"
    modes = [
        flag
        for flag, value in (
            ("--shards", args.shards > 1 or None),
            ("--list-to", args.list_to),
            ("--summary-to", args.summary_to),
            ("--merge-from", args.merge_from),
        )
        if value is not None
    ]
    if len(modes) > 1:
        return f"{' and '.join(modes)} are different modes: pass one"
    if args.shard_id is not None and args.summary_to is None:
        return "--shard-id names a summary: it needs --summary-to"
    if args.window_from is not None and args.summary_to is None and args.merge_from is None:
        return "--window-from is for the --summary-to and --merge-from steps"
    if args.window_from is not None and args.end is not None:
        return "--window-from sets the window: leave out --end"
    if args.summary_to is not None and args.publish:
        return "--summary-to publishes nothing: the --merge-from step does"
    return None


def partition(files: Sequence[T], count: int) -> list[tuple[T, ...]]:
    """``count`` shards of ``files``, in order, sizes differing by at most one.

    ShardedByS3Key gives each of N instances about 1/N of the objects (SageMaker API
    reference, S3DataDistributionType); which ones is not documented, and merging does not
    depend on it. Shards beyond the number of files are empty, as instances can be.
    """
    check_shard_count(count)
    size, extra = divmod(len(files), count)
    shards, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        shards.append(tuple(files[start:end]))
        start = end
    return shards


def host_id(resource_config: Path = RESOURCE_CONFIG) -> str:
    """This processing instance's host name ("algo-1", ...), or "local" outside SageMaker."""
    try:
        host = json.loads(resource_config.read_text()).get("current_host")
    except (OSError, ValueError, AttributeError):
        return LOCAL_SHARD
    return host if isinstance(host, str) and _SHARD_ID.match(host) else LOCAL_SHARD


def check_shard_id(shard_id: str) -> str:
    if not _SHARD_ID.match(shard_id):
        raise ShardError(
            f"--shard-id {shard_id!r}: use letters, digits, '.', '_' or '-' (at most 63)"
        )
    return shard_id


def fan_out(worker: Callable[[T], R], tasks: Sequence[T], processes: int | None = None) -> list[R]:
    """``worker`` over ``tasks``, one process each (at most ``processes``), results in order.

    Spawned, not forked, so a worker starts clean on every platform and from threads; so
    ``worker`` and the tasks must pickle (a module-level function, frozen dataclasses).
    """
    if not tasks:
        return []
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=processes or len(tasks), mp_context=context) as pool:
        return list(pool.map(worker, tasks))


# --- summaries ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """One shard's mergeable statistics; ``body`` is the job's own (see its from_summary)."""

    job: str
    shard: str
    context: dict[str, Any]
    body: dict[str, Any]

    def to_json(self) -> bytes:
        document = {
            "format": SUMMARY_FORMAT,
            "version": SUMMARY_VERSION,
            "job": self.job,
            "shard": self.shard,
            "context": self.context,
            "body": self.body,
        }
        return json.dumps(document, sort_keys=True, allow_nan=False).encode()


def summary_name(shard_id: str) -> str:
    return f"{_SUMMARY_PREFIX}{check_shard_id(shard_id)}{_SUMMARY_SUFFIX}"


def write_summary(
    target: str, summary: Summary, region: str | None = None, endpoint_url: str | None = None
) -> str:
    """Write ``summary`` into the folder or s3:// prefix ``target``; its path."""
    path = uri.join(target, summary_name(summary.shard))
    s3 = s3_client(region, endpoint_url) if uri.is_s3(target) else None
    uri.write_bytes(path, summary.to_json(), s3=s3)
    return path


def list_summaries(
    source: str, region: str | None = None, endpoint_url: str | None = None
) -> list[str]:
    """Every summary file directly in the folder or s3:// prefix ``source``, sorted."""
    if not uri.is_s3(source):
        folder = Path(source)
        if not folder.is_dir():
            raise ShardError(f"--merge-from {source}: no such folder")
        return sorted(str(p) for p in folder.glob(f"{_SUMMARY_PREFIX}*{_SUMMARY_SUFFIX}"))
    bucket, key = uri.split(source.rstrip("/") + "/")
    paginator = s3_client(region, endpoint_url).get_paginator("list_objects_v2")
    names = []
    for page in paginator.paginate(Bucket=bucket, Prefix=key + _SUMMARY_PREFIX, Delimiter="/"):
        names += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".json")]
    return sorted(f"s3://{bucket}/{name}" for name in names)


def parse_summary(data: bytes, job: str, source: str = "summary") -> Summary:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        raise ShardError(f"{source} is not JSON") from None
    if not isinstance(document, dict) or document.get("format") != SUMMARY_FORMAT:
        raise ShardError(f"{source} is not a shard summary")
    if document.get("version") != SUMMARY_VERSION:
        raise ShardError(
            f"{source} has summary version {document.get('version')!r}, "
            f"this code reads {SUMMARY_VERSION}"
        )
    if document.get("job") != job:
        raise ShardError(f"{source} summarises the {document.get('job')!r} job, not {job!r}")
    shard, context, body = document.get("shard"), document.get("context"), document.get("body")
    if not isinstance(shard, str) or not isinstance(context, dict) or not isinstance(body, dict):
        raise ShardError(f"{source} lacks its shard, context or body")
    return Summary(job, shard, context, body)


def read_summaries(
    source: str, job: str, region: str | None = None, endpoint_url: str | None = None
) -> list[Summary]:
    """Every summary in ``source``, checked to be of ``job``, of one context, from distinct
    shards; at least one."""
    names = list_summaries(source, region, endpoint_url)
    if not names:
        raise ShardError(f"--merge-from {source}: no {_SUMMARY_PREFIX}*.json summaries")
    s3 = s3_client(region, endpoint_url) if uri.is_s3(source) else None
    summaries = [parse_summary(uri.read_bytes(n, s3=s3), job, n) for n in names]
    return check_summaries(summaries, source)


def check_summaries(summaries: Sequence[Summary], source: str = "summaries") -> list[Summary]:
    if not summaries:
        raise ShardError(f"{source}: nothing to merge")
    first = summaries[0]
    seen: set[str] = set()
    for summary in summaries:
        if summary.shard in seen:
            raise ShardError(f"{source}: shard {summary.shard!r} appears twice")
        seen.add(summary.shard)
        if summary.context != first.context:
            differ = sorted(
                k
                for k in summary.context.keys() | first.context.keys()
                if summary.context.get(k) != first.context.get(k)
            )
            raise ShardError(
                f"{source}: shards {first.shard!r} and {summary.shard!r} summarise different "
                f"runs ({', '.join(differ)} differ)"
            )
    return list(summaries)
