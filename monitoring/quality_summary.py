"""One shard's part of the quality job, as files, and the exact merge of all shards' parts.

A shard reads some capture files and all of the window's labels, and keeps what the join
keeps (monitoring/join.py ``match``): per capture record its id hash, row count, and whether
a label names it and has its row count; per row of a record whose label fits, the label,
score and facet values. Those arrays go to ``summary-<shard>.npz`` (numpy's format, no
pickles) and the rest to ``summary-<shard>.json`` (monitoring/shards.py's envelope; the JSON
names the npz and its SHA-256, and is written last, so a summary is never half there).

The merge puts the shards' records back in the order one pass reads them, file by file
(capture files sort as ``<endpoint>/<variant>/yyyy/mm/dd/hh/<name>`` relative to --capture,
the order monitoring/store.py lists them in, whichever shard read which), then applies the
rules that need the whole window (``join.complete``): an id captured twice is a duplicate
even when its copies were read by different shards, and a label is an orphan only when no
shard's record claimed it. The joined rows are then the same arrays, in the same order, as
one pass's, so every metric, resampled standard deviation, DeLong variance and seeded bias
bootstrap comes out bit for bit the same.

Size: 14 bytes per capture record (id hash, row count, two flags) and 9 per labelled row
(score, label), plus, with --facet, 1 per row and 8 (a number) or 4 (a category code) per
facet column and row. 100 million one-row labelled predictions are about 2.3 GB of
summaries, all held by the merge, which then needs what one pass needs for the metrics
(sorts and ranks of the scores). Counts per distinct score would do for DeLong's variance,
but not for the metrics' standard deviations (Model Monitor's: five seeded 80% subsamples
of the rows, by position), so the rows themselves travel, in order.
"""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitoring.join import CaptureCounts, FacetColumn, LabelCounts, LabelIndex, Labels, Matches
from monitoring.shards import ShardError, Summary

JOB = "quality"
ARRAYS_SUFFIX = ".npz"
_CAPTURE_FIELDS = ("lines", "outside_window", "records", "rows", "unreadable_inputs")


@dataclass(frozen=True)
class FileBlock:
    """A capture file a shard read, relative to --capture, and its records in the window."""

    name: str
    records: int

    @property
    def order(self) -> tuple[str, ...]:
        return tuple(self.name.split("/"))


@dataclass(frozen=True)
class ShardSummary:
    shard: str
    context: dict[str, Any]  # the run and the labels: equal in every shard of one run
    files: tuple[FileBlock, ...]  # in reading order
    capture: CaptureCounts
    roots: tuple[str, ...]  # variant folders, relative to --capture
    endpoints: tuple[str, ...]
    matches: Matches


@dataclass(frozen=True)
class Merged:
    matches: Matches
    capture: CaptureCounts
    labels: LabelIndex
    capture_files: int
    label_files: int
    roots: tuple[str, ...]
    endpoints: tuple[str, ...]


def label_context(labels: Labels, files: int) -> dict[str, Any]:
    """What every shard must have read alike: counts and a digest of the parsed labels."""
    keys = np.frombuffer(labels.keys, dtype=np.int64)
    digest = hashlib.sha256()
    for part in (labels.keys, labels.sizes, labels.values):
        digest.update(memoryview(part).cast("B"))
    return {
        "files": files,
        "lines": labels.counts.lines,
        "labels": labels.counts.labels,
        "malformed": dict(sorted(labels.counts.malformed.items())),
        "unique": len(np.unique(keys)),
        "sha256": digest.hexdigest(),
    }


def label_index(context: dict[str, Any]) -> LabelIndex:
    labels = context["labels"]
    counts = LabelCounts(
        lines=int(labels["lines"]),
        labels=int(labels["labels"]),
        malformed=Counter({str(k): int(v) for k, v in labels["malformed"].items()}),
    )
    return LabelIndex(counts, int(labels["unique"]))


# --- to and from files ----------------------------------------------------------------------


def arrays_name(summary_name: str) -> str:
    return summary_name.removesuffix(".json") + ARRAYS_SUFFIX


def to_files(summary: ShardSummary, arrays_file: str) -> tuple[Summary, bytes]:
    """The JSON envelope and the npz bytes of ``summary``."""
    m = summary.matches
    arrays = {
        "keys": m.keys,
        "sizes": m.sizes,
        "found": m.found,
        "same_size": m.same_size,
        "labels": m.labels,
        "scores": m.scores,
    }
    if m.facets:  # without facets every row is readable: no need to ship a byte per row
        arrays["facet_rows"] = m.facet_rows
    facets = {}
    for number, (name, column) in enumerate(m.facets.items()):
        arrays[f"facet_{number}"] = column.data
        facets[name] = {
            "array": f"facet_{number}",
            "categories": None if column.categories is None else list(column.categories),
        }
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    data = buffer.getvalue()
    c = summary.capture
    body = {
        "files": [[f.name, f.records] for f in summary.files],
        "capture": {
            **{name: getattr(c, name) for name in _CAPTURE_FIELDS},
            "malformed": dict(sorted(c.malformed.items())),
        },
        "roots": list(summary.roots),
        "endpoints": list(summary.endpoints),
        "facets": facets,
        "arrays": {
            "file": arrays_file,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        },
    }
    return Summary(JOB, summary.shard, summary.context, body), data


def from_files(summary: Summary, data: bytes) -> ShardSummary:
    """The shard summary of ``summary`` and its npz bytes, checked."""
    body = summary.body
    where = f"summary {summary.shard!r}"
    try:
        arrays_meta = body["arrays"]
        if hashlib.sha256(data).hexdigest() != arrays_meta["sha256"]:
            raise ShardError(f"{where}: {arrays_meta['file']} is not the file it was written with")
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        facets = {
            name: FacetColumn(
                arrays[spec["array"]],
                None if spec["categories"] is None else tuple(map(str, spec["categories"])),
            )
            for name, spec in body["facets"].items()
        }
        matches = Matches(
            keys=arrays["keys"].astype(np.int64, copy=False),
            sizes=arrays["sizes"].astype(np.int32, copy=False),
            found=arrays["found"].astype(bool, copy=False),
            same_size=arrays["same_size"].astype(bool, copy=False),
            labels=arrays["labels"].astype(np.int8, copy=False),
            scores=arrays["scores"].astype(np.float64, copy=False),
            facets=facets,
            facet_rows=(
                arrays["facet_rows"].astype(bool, copy=False)
                if facets
                else np.ones(len(arrays["labels"]), dtype=bool)
            ),
        )
        capture = body["capture"]
        counts = CaptureCounts(
            **{name: int(capture[name]) for name in _CAPTURE_FIELDS},
            malformed=Counter({str(k): int(v) for k, v in capture["malformed"].items()}),
        )
        files = tuple(FileBlock(str(name), int(records)) for name, records in body["files"])
        roots = tuple(map(str, body["roots"]))
        endpoints = tuple(map(str, body["endpoints"]))
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise ShardError(f"{where} is malformed ({type(exc).__name__}: {exc})") from None
    _check_shapes(where, files, counts, matches)
    return ShardSummary(summary.shard, summary.context, files, counts, roots, endpoints, matches)


def _check_shapes(
    where: str, files: Sequence[FileBlock], counts: CaptureCounts, m: Matches
) -> None:
    records = len(m.keys)
    rows = int(m.row_counts.sum())
    if (
        sum(f.records for f in files) != records
        or counts.records != records
        or any(len(a) != records for a in (m.sizes, m.found, m.same_size))
        or any(len(a) != rows for a in (m.labels, m.scores, m.facet_rows))
        or any(len(c.data) != rows for c in m.facets.values())
    ):
        raise ShardError(f"{where}: its arrays do not match its counts")


# --- the merge --------------------------------------------------------------------------------


def merge(summaries: Sequence[ShardSummary]) -> Merged:
    """All shards' matches in one pass's reading order, and their counts added up."""
    if not summaries:
        raise ShardError("nothing to merge")
    read_by: dict[str, str] = {}
    blocks = []  # (order, shard index, first record, records, first row, rows)
    for index, summary in enumerate(summaries):
        row_ends = np.cumsum(summary.matches.row_counts)
        record = 0
        for block in summary.files:
            if block.name in read_by:
                raise ShardError(
                    f"{block.name} was summarised by shards {read_by[block.name]!r} and "
                    f"{summary.shard!r}: one run's shards read disjoint files"
                )
            read_by[block.name] = summary.shard
            first_row = int(row_ends[record - 1]) if record else 0
            last_row = int(row_ends[record + block.records - 1]) if block.records else first_row
            blocks.append((block.order, index, record, block.records, first_row, last_row))
            record += block.records
    blocks.sort()

    def records(field: str) -> np.ndarray:
        parts = [getattr(summaries[i].matches, field)[a : a + n] for _, i, a, n, _, _ in blocks]
        return np.concatenate(parts) if parts else getattr(summaries[0].matches, field)[:0]

    def rows(per_shard: Sequence[np.ndarray]) -> np.ndarray:
        parts = [per_shard[i][a:b] for _, i, _, _, a, b in blocks]
        return np.concatenate(parts) if parts else per_shard[0][:0]

    shards = [s.matches for s in summaries]
    matches = Matches(
        keys=records("keys"),
        sizes=records("sizes"),
        found=records("found"),
        same_size=records("same_size"),
        labels=rows([m.labels for m in shards]),
        scores=rows([m.scores for m in shards]),
        facets={
            name: _merged_facet(name, [m.facets.get(name) for m in shards], rows)
            for name in shards[0].facets
        },
        facet_rows=rows([m.facet_rows for m in shards]),
    )
    capture = CaptureCounts()
    for summary in summaries:
        for name in _CAPTURE_FIELDS:
            setattr(capture, name, getattr(capture, name) + getattr(summary.capture, name))
        capture.malformed.update(summary.capture.malformed)
    context = summaries[0].context
    return Merged(
        matches=matches,
        capture=capture,
        labels=label_index(context),
        capture_files=len(read_by),
        label_files=int(context["labels"]["files"]),
        roots=tuple(sorted({r for s in summaries for r in s.roots})),
        endpoints=tuple(sorted({e for s in summaries for e in s.endpoints})),
    )


def _merged_facet(
    name: str,
    columns: Sequence[FacetColumn | None],
    rows: Callable[[Sequence[np.ndarray]], np.ndarray],
) -> FacetColumn:
    present = [c for c in columns if c is not None]
    if len(present) < len(columns) or any(c.numeric != present[0].numeric for c in present):
        raise ShardError(f"the shards' summaries disagree on the facet column {name!r}")
    if present[0].numeric:
        return FacetColumn(rows([c.data for c in present]), None)
    # Each shard numbered its categories as it met them: renumber into one list.
    merged: dict[str, int] = {}
    codes = []
    for column in present:
        remap = np.array(
            [merged.setdefault(c, len(merged)) for c in column.categories or ()], dtype=np.int32
        )
        codes.append(remap[column.data] if len(column.data) else column.data)
    return FacetColumn(rows(codes).astype(np.int32, copy=False), tuple(merged))
