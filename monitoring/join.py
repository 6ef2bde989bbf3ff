"""Join a window's captured predictions with their ground-truth labels.

Capture lines and label lines are streamed once each; what is kept is what the metrics need,
in flat arrays: per capture record its id (as a 64-bit hash), its row count and, per row,
the positive score and the facet columns bias needs; per label line its id hash and labels.
A million predictions and a million labels take tens of MB.

Ids are compared as 64-bit hashes of the strings: Python's ``hash()`` in one process (one
hash seed, the fastest), ``stable_hash`` (BLAKE2b) when shards in other processes or on
other instances must agree; two distinct ids among a few million collide with probability
about 1e-7.

The join is two halves so that it can be split over shards (monitoring/quality_shards.py):
``match`` looks each capture record up among the labels (every shard reads all of them), and
``complete`` then applies the rules that need the whole window, duplicates and orphans, to
the matches of one shard or of all shards put together.

The rules, each counted:

- the join key of a capture record is ``eventMetadata.inferenceId`` when present, else its
  ``eventId`` (Model Monitor's rule, see monitoring/ground_truth.py);
- a capture record whose key occurs more than once in the window (a caller reusing an
  InferenceId) cannot be matched to one label: all of them are left out (duplicate records);
- a key labelled more than once keeps the last label read (hour folders in time order, files
  by name, lines in order): a later upload corrects an earlier one (duplicate labels);
- a label for a request of N rows must hold N labels (label row mismatch otherwise);
- labels whose key matches no capture record of the window are orphans (late labels of
  earlier windows land here too); records without a label are unlabelled;
- a malformed line of either kind is counted by reason and skipped, never fatal.
"""

from __future__ import annotations

import hashlib
import math
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from monitoring.capture import RecordParser
from monitoring.ground_truth import LabelError, Vocabulary
from monitoring.ground_truth import parse as parse_label
from monitoring.json_lines import parse_json_line
from monitoring.predictions import OutputError, OutputReader

KeyHash = Callable[[str], int]


def stable_hash(key: str) -> int:
    """A signed 64-bit hash of ``key`` that every process computes alike (unlike hash())."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


@dataclass
class CaptureCounts:
    lines: int = 0
    outside_window: int = 0
    records: int = 0  # in the window, with a key and a readable answer
    rows: int = 0
    malformed: Counter[str] = field(default_factory=Counter)
    # With facets: records whose request could not be read for them (quality only).
    unreadable_inputs: int = 0


@dataclass
class LabelCounts:
    lines: int = 0
    labels: int = 0  # readable label lines
    malformed: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class JoinCounts:
    capture: CaptureCounts
    labels: LabelCounts
    duplicate_records: int
    duplicate_labels: int
    labelled_records: int
    labelled_rows: int
    unlabelled_records: int
    orphan_labels: int
    label_row_mismatch: int

    def as_dict(self) -> dict[str, Any]:
        c, g = self.capture, self.labels
        return {
            "capture_lines": c.lines,
            "capture_records": c.records,
            "capture_rows": c.rows,
            "outside_window": c.outside_window,
            "unreadable_inputs": c.unreadable_inputs,
            "malformed_records": sum(c.malformed.values()),
            "malformed_records_by_reason": dict(sorted(c.malformed.items())),
            "duplicate_records": self.duplicate_records,
            "label_lines": g.lines,
            "labels": g.labels,
            "malformed_labels": sum(g.malformed.values()),
            "malformed_labels_by_reason": dict(sorted(g.malformed.items())),
            "duplicate_labels": self.duplicate_labels,
            "labelled_records": self.labelled_records,
            "labelled_rows": self.labelled_rows,
            "unlabelled_records": self.unlabelled_records,
            "orphan_labels": self.orphan_labels,
            "label_row_mismatch": self.label_row_mismatch,
        }


@dataclass(frozen=True)
class Joined:
    """The labelled rows of the window: label, score and facet columns, aligned."""

    labels: np.ndarray  # int8, 1 = positive
    scores: np.ndarray  # float64 positive scores
    facets: dict[str, np.ndarray]  # facet column -> values (str objects or float64)
    facet_rows: np.ndarray  # bool: rows whose facet values were read (bias uses only those)
    counts: JoinCounts


class _Column:
    """One facet column, compact: category codes, or numbers."""

    def __init__(self, numeric: bool) -> None:
        self.numeric = numeric
        self.numbers = array("d")
        self.codes = array("i")
        self.categories: dict[str, int] = {}

    def add(self, value: str | float) -> None:
        if self.numeric:
            self.numbers.append(float(value))
        else:
            self.codes.append(self.categories.setdefault(str(value), len(self.categories)))

    def pad(self, count: int) -> None:
        """Placeholders for rows whose values are unknown (left out of bias by the caller)."""
        for _ in range(count):
            self.add(math.nan if self.numeric else "")

    def take(self, index: np.ndarray) -> FacetColumn:
        if self.numeric:
            return FacetColumn(np.frombuffer(self.numbers, dtype=np.float64)[index], None)
        codes = np.frombuffer(self.codes, dtype=np.int32)[index]
        return FacetColumn(codes, tuple(self.categories))


@dataclass(frozen=True)
class FacetColumn:
    """A facet column's values on some rows: numbers, or codes into ``categories``."""

    data: np.ndarray  # float64 numbers, or int32 category codes
    categories: tuple[str, ...] | None  # None: numeric

    @property
    def numeric(self) -> bool:
        return self.categories is None

    def values(self, keep: np.ndarray | None = None) -> np.ndarray:
        data = self.data if keep is None else self.data[keep]
        if self.categories is None:
            numbers: np.ndarray = data.copy()
            return numbers
        names = np.array(self.categories, dtype=object)
        values: np.ndarray = names[data]
        return values


class Predictions:
    """Capture lines -> per-record keys and per-row scores (and facet values)."""

    def __init__(
        self,
        start: datetime,
        end: datetime,
        outputs: OutputReader,
        inputs: RecordParser | None = None,
        facets: Sequence[str] = (),
        key_hash: KeyHash = hash,
    ) -> None:
        self.start, self.end = start, end
        self.key_hash = key_hash
        self._start_text = start.strftime("%Y-%m-%dT%H:%M:%S")
        self._end_text = end.strftime("%Y-%m-%dT%H:%M:%S")
        self.outputs, self.inputs = outputs, inputs
        self.counts = CaptureCounts()
        self.keys = array("q")
        self.sizes = array("i")
        self.scores = array("d")
        self._facets: list[tuple[str, int, bool]] = []
        if facets:
            if inputs is None:
                raise ValueError("facets need the input parser")
            for name in facets:
                if name in inputs.categorical:
                    self._facets.append((name, inputs.categorical.index(name), False))
                elif name in inputs.numeric:
                    self._facets.append((name, inputs.numeric.index(name), True))
                else:
                    raise ValueError(f"facet column {name!r} is not one of the model's features")
        self.columns = {name: _Column(numeric) for name, _, numeric in self._facets}
        self.facet_rows = array("b")  # per row: were its facet values read?

    def add(self, line: bytes) -> None:
        if not line.strip():
            return
        self.counts.lines += 1
        try:
            record = parse_json_line(line)
            key, scores = self._read(record)
        except OutputError as exc:
            self.counts.malformed[exc.reason] += 1
            return
        except _OutsideWindowError:
            self.counts.outside_window += 1
            return
        except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError
            self.counts.malformed["bad_json"] += 1
            return
        if self._facets:
            self._add_facets(line, len(scores))
        self.keys.append(self.key_hash(key))
        self.sizes.append(len(scores))
        self.scores.extend(scores)
        self.counts.records += 1
        self.counts.rows += len(scores)

    def _add_facets(self, line: bytes, size: int) -> None:
        """The request's facet values; a request the input parser cannot read (or whose
        rows do not match the answer's) still counts for quality, but not for bias."""
        assert self.inputs is not None
        rows = self.inputs.parse(line)
        readable = len(rows) == size
        if not readable:
            self.counts.unreadable_inputs += 1
        for name, index, numeric in self._facets:
            column = self.columns[name]
            if not readable:
                column.pad(size)
                continue
            for row in rows:
                column.add(row.numeric[index] if numeric else row.categorical[index])
        self.facet_rows.extend([readable] * size)

    def _read(self, record: Any) -> tuple[str, list[float]]:
        try:
            metadata = record["eventMetadata"]
            when = metadata["inferenceTime"]
            key = metadata.get("inferenceId") or metadata["eventId"]
            output = record["captureData"]["endpointOutput"]
        except (KeyError, TypeError, AttributeError):
            raise OutputError("missing_fields") from None
        if not isinstance(key, str) or not key or not isinstance(when, str):
            raise OutputError("missing_fields")
        self._check_window(when)
        return key, self.outputs.scores(output)

    def _check_window(self, when: str) -> None:
        # As monitoring/capture.py: most records compare as text, without parsing.
        text = when[:19]
        fast = when.endswith("Z") and len(text) == 19 and text[10] == "T"
        if fast and self._start_text < text < self._end_text:
            return
        try:
            moment = datetime.fromisoformat(when)
        except ValueError:
            raise OutputError("bad_timestamp") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if not self.start <= moment < self.end:
            raise _OutsideWindowError


class _OutsideWindowError(Exception):
    pass


class Labels:
    """Ground-truth lines -> per-line key hashes and flat labels."""

    def __init__(self, vocabulary: Vocabulary | None = None, key_hash: KeyHash = hash) -> None:
        self.vocabulary = vocabulary or Vocabulary()
        self.key_hash = key_hash
        self.counts = LabelCounts()
        self.keys = array("q")
        self.sizes = array("i")
        self.values = array("b")

    def add(self, line: bytes) -> None:
        if not line.strip():
            return
        self.counts.lines += 1
        try:
            label = parse_label(line, self.vocabulary)
        except LabelError as exc:
            self.counts.malformed[exc.reason] += 1
            return
        self.keys.append(self.key_hash(label.event_id))
        self.sizes.append(len(label.labels))
        self.values.extend(label.labels)
        self.counts.labels += 1


@dataclass(frozen=True)
class Matches:
    """Every capture record (in reading order) looked up among all the labels.

    Per record: its key hash, row count, whether a label names it, and whether that label
    (the last read for the key) has as many rows. Per row of each record that matched in
    size, in record order: its label, score, facet values and whether those were read.
    """

    keys: np.ndarray  # int64
    sizes: np.ndarray  # int32
    found: np.ndarray  # bool
    same_size: np.ndarray  # bool (False where not found)
    labels: np.ndarray  # int8, 1 = positive
    scores: np.ndarray  # float64
    facets: dict[str, FacetColumn]
    facet_rows: np.ndarray  # bool

    @property
    def row_counts(self) -> np.ndarray:
        """Rows kept per record: its size if it matched in size, else 0."""
        counts: np.ndarray = np.where(self.found & self.same_size, self.sizes, 0).astype(np.int64)
        return counts


@dataclass(frozen=True)
class LabelIndex:
    """What ``complete`` needs of the labels beyond the matches: their counts."""

    counts: LabelCounts
    unique_keys: int  # distinct ids among the readable labels


def join(predictions: Predictions, labels: Labels) -> Joined:
    matches, index = match(predictions, labels)
    return complete(matches, predictions.counts, index)


def match(predictions: Predictions, labels: Labels) -> tuple[Matches, LabelIndex]:
    record_keys = np.frombuffer(predictions.keys, dtype=np.int64)
    record_sizes = np.frombuffer(predictions.sizes, dtype=np.int32)
    sizes64 = record_sizes.astype(np.int64)
    record_starts = np.cumsum(sizes64) - sizes64
    label_keys = np.frombuffer(labels.keys, dtype=np.int64)
    label_sizes = np.frombuffer(labels.sizes, dtype=np.int32).astype(np.int64)
    label_starts = np.cumsum(label_sizes) - label_sizes

    # The last label read per key: a stable sort keeps reading order within a key.
    order = np.argsort(label_keys, kind="stable")
    sorted_keys = label_keys[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = sorted_keys[1:] != sorted_keys[:-1]
    unique_keys, chosen = sorted_keys[last], order[last]

    position = np.searchsorted(unique_keys, record_keys)
    inside = position < len(unique_keys)
    found = np.zeros(len(record_keys), dtype=bool)
    found[inside] = unique_keys[position[inside]] == record_keys[inside]
    same_size = np.zeros(len(record_keys), dtype=bool)
    same_size[found] = sizes64[found] == label_sizes[chosen[position[found]]]

    records = np.flatnonzero(found & same_size)
    picked = chosen[position[records]]
    row_index = _expand(record_starts[records], sizes64[records])
    label_index = _expand(label_starts[picked], label_sizes[picked])
    values = np.frombuffer(labels.values, dtype=np.int8)
    scores = np.frombuffer(predictions.scores, dtype=np.float64)
    matches = Matches(
        keys=record_keys.copy(),
        sizes=record_sizes.copy(),
        found=found,
        same_size=same_size,
        labels=values[label_index],
        scores=scores[row_index],
        facets={name: column.take(row_index) for name, column in predictions.columns.items()},
        facet_rows=(
            np.frombuffer(predictions.facet_rows, dtype=np.int8)[row_index].astype(bool)
            if predictions.columns
            else np.ones(len(row_index), dtype=bool)
        ),
    )
    return matches, LabelIndex(labels.counts, len(unique_keys))


def complete(matches: Matches, capture: CaptureCounts, labels: LabelIndex) -> Joined:
    """The window's rules on the matches of all its records: a key captured more than once
    is left out wherever its copies were read, and a label is an orphan only if no record
    anywhere claimed it."""
    duplicated = _repeated(matches.keys)
    usable = matches.found & ~duplicated
    labelled = usable & matches.same_size
    matched = matches.found & matches.same_size
    keep = np.repeat(labelled[matched], matches.sizes[matched].astype(np.int64))
    claimed = len(np.unique(matches.keys[matches.found]))
    counts = JoinCounts(
        capture=capture,
        labels=labels.counts,
        duplicate_records=int(duplicated.sum()),
        duplicate_labels=labels.counts.labels - labels.unique_keys,
        labelled_records=int(labelled.sum()),
        labelled_rows=int(keep.sum()),
        unlabelled_records=int((~matches.found & ~duplicated).sum()),
        orphan_labels=labels.unique_keys - claimed,
        label_row_mismatch=int((usable & ~matches.same_size).sum()),
    )
    return Joined(
        labels=matches.labels[keep],
        scores=matches.scores[keep],
        facets={name: column.values(keep) for name, column in matches.facets.items()},
        facet_rows=matches.facet_rows[keep],
        counts=counts,
    )


def _repeated(keys: np.ndarray) -> np.ndarray:
    """True for every element whose key occurs more than once."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    same = ordered[1:] == ordered[:-1]
    flagged = np.zeros(len(keys), dtype=bool)
    flagged[1:] |= same
    flagged[:-1] |= same
    result = np.zeros(len(keys), dtype=bool)
    result[order] = flagged
    return result


def _expand(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """The indices start..start+size-1 of every (start, size), concatenated."""
    total = int(sizes.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(np.cumsum(sizes) - sizes, sizes)
    index: np.ndarray = np.repeat(starts, sizes) + (np.arange(total) - offsets)
    return index
