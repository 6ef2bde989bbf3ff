"""Parse SageMaker data-capture records into feature rows, one line at a time.

Only the request side (``endpointInput``) matters for feature drift. Bodies may be CSV
(headerless in feature order, or with a header naming the features), JSON
(``{"instances": [[...]]}`` or ``{"records": [{...}]}``, as inference/handler.py accepts)
or either of those base64-encoded. A record the handler would have refused, or one that is
not a capture record at all, is counted under a reason and skipped as a whole: a request is
served (and so belongs to the live distribution) only if every row in it is valid.

Two paths give the same rows and counts: the reference one below (``fast=False``: json and a
check per cell) and, by default, orjson (monitoring.json_lines) plus monitoring.capture_fast
for the plain bodies, which hands everything else back to the reference code.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from monitoring import json_lines
from monitoring.baseline import Baseline
from monitoring.capture_arrow import BATCH_RECORDS, Block, CsvBatchReader
from monitoring.capture_fast import Columns, CsvLayouts, csv_columns, json_columns

CSV_TYPES = frozenset({"text/csv"})
JSON_TYPES = frozenset({"application/json", "application/jsonlines"})


class MalformedError(Exception):
    """A record to skip; ``reason`` is the counter it is reported under."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Row:
    categorical: tuple[str, ...]  # in Baseline.categorical order
    numeric: tuple[float, ...]  # in Baseline.numeric order


@dataclass
class Counts:
    lines: int = 0
    in_window: int = 0
    outside_window: int = 0
    used: int = 0
    rows: int = 0
    malformed: Counter[str] = field(default_factory=Counter)

    @property
    def malformed_total(self) -> int:
        return sum(self.malformed.values())


class RowSink(Protocol):
    """Where ``RecordParser.parse_into`` puts rows: flat row-major columns, or a block."""

    def add_rows(self, columns: Columns) -> None: ...

    def add_block(self, block: Block) -> None: ...


class RecordParser:
    """Turns capture lines into rows, counting what it skips and why.

    ``fast`` (default FAST) picks the path, not the result: both give the same rows, reasons
    and counts.
    """

    def __init__(
        self, baseline: Baseline, start: datetime, end: datetime, *, fast: bool | None = None
    ) -> None:
        self.order = baseline.feature_order
        self.position = {name: i for i, name in enumerate(self.order)}
        self.categorical = tuple(f.name for f in baseline.categorical)
        self.numeric = tuple(f.name for f in baseline.numeric)
        self._cat_index = tuple(self.position[n] for n in self.categorical)
        self._num_index = tuple(self.position[n] for n in self.numeric)
        self.start, self.end = start, end
        # ISO strings of the window bounds: most records compare as text, without parsing.
        self._start_text = start.strftime("%Y-%m-%dT%H:%M:%S")
        self._end_text = end.strftime("%Y-%m-%dT%H:%M:%S")
        self.counts = Counts()
        self.fast = FAST if fast is None else fast
        self._layouts = CsvLayouts(self.order, self.categorical, self.numeric)
        self._batch = CsvBatchReader(self.order, self.categorical, self.numeric)
        self._pending: list[str] = []  # CSV bodies parse_into holds for the next batch
        self._batching = self._pending if self._batch.enabled else None
        self._media_types: dict[str, str] = {}  # observedContentType -> media type

    def parse(self, line: bytes) -> list[Row]:
        """The record's rows, or [] when it is outside the window or malformed."""
        if not self.fast:
            return self._parse_reference(line)
        columns = self._columns(line)
        if columns is None:
            return []
        numeric, categorical, rows = columns
        n, c = len(self.numeric), len(self.categorical)
        return [
            Row(tuple(categorical[i * c : i * c + c]), tuple(numeric[i * n : i * n + n]))
            for i in range(rows)
        ]

    def parse_into(self, line: bytes, sink: RowSink) -> None:
        """``parse`` for a consumer that does not need rows per record (the drift job).

        Plain CSV bodies wait in a batch, read in one go (monitoring.capture_arrow), so a
        record's rows may reach ``sink`` with a later line's: call ``finish_into`` after the
        last line. ``counts`` holds the waiting records as lines (and in_window) only.
        """
        if not self.fast:
            rows = self._parse_reference(line)
            if rows:
                sink.add_rows(_flatten(rows))
            return
        columns = self._columns(line, self._batching)
        if columns is _WAITING:
            if len(self._pending) >= BATCH_RECORDS:
                self.finish_into(sink)
        elif columns is not None:
            sink.add_rows(columns)

    def finish_into(self, sink: RowSink) -> None:
        """Parse the batch of bodies ``parse_into`` holds, and count its records."""
        pending, counts = self._pending, self.counts
        if not pending:
            return
        block = self._batch.parse(pending)
        if block is not None:
            counts.used += len(pending)
            counts.rows += block.rows
            sink.add_block(block)
        else:  # some body is not plain: each one alone, exactly
            for body in pending:
                try:
                    columns = self._body_columns(body, "text/csv")
                except MalformedError as exc:
                    counts.malformed[exc.reason] += 1
                    continue
                except (ValueError, RecursionError):  # as in _parse_reference
                    counts.malformed["bad_json"] += 1
                    continue
                counts.used += 1
                counts.rows += columns[2]
                sink.add_rows(columns)
        pending.clear()

    def _columns(self, line: bytes, pending: list[str] | None = None) -> Columns | None:
        """The fast path's ``parse``: None when skipped (and counted); _WAITING when the body
        joined ``pending`` (its record is counted used when the batch is parsed)."""
        if not line.strip():
            return None
        counts = self.counts
        counts.lines += 1
        try:
            record = json_lines.loads(line)
            body, content_type = self._input(record)
            columns = self._body_columns(body, content_type, pending)
            if columns is _WAITING:
                return columns
        except MalformedError as exc:
            counts.malformed[exc.reason] += 1
            return None
        except _OutsideWindowError:
            counts.outside_window += 1
            return None
        except (ValueError, RecursionError):  # as in _parse_reference
            counts.malformed["bad_json"] += 1
            return None
        counts.used += 1
        counts.rows += columns[2]
        return columns

    def _body_columns(
        self, body: bytes | str, content_type: str, pending: list[str] | None = None
    ) -> Columns:
        """``_rows`` as flat columns: the plain cases in capture_fast, the rest in ``_rows``;
        with ``pending``, a CSV body that may be plain joins it instead (_WAITING)."""
        media_type = self._media_types.get(content_type)
        if media_type is None:
            media_type = content_type.split(";")[0].strip().lower()
            if len(self._media_types) < MAX_MEDIA_TYPES:
                self._media_types[content_type] = media_type
        if isinstance(body, bytes) and media_type in _ALL_TYPES:
            try:
                body = body.decode("utf-8")
            except UnicodeDecodeError:
                raise MalformedError("bad_text") from None
        columns: Columns | None = None
        if media_type in CSV_TYPES:
            assert isinstance(body, str)
            # No quotes or spaces (capture_arrow checks the rest) and a non-empty line.
            if pending is not None and '"' not in body and " " not in body and body.strip():
                pending.append(body)
                return _WAITING
            columns = csv_columns(body, self._layouts)
        elif media_type in JSON_TYPES:
            assert isinstance(body, str)
            document = self._json_document(body, json_lines.loads)
            columns = json_columns(document, self._layouts.default)
            if columns is None:
                return _flatten(self._json_rows(document))
        if columns is None:
            return _flatten(self._rows(body, content_type))
        return columns

    def _parse_reference(self, line: bytes) -> list[Row]:
        if not line.strip():
            return []
        self.counts.lines += 1
        try:
            record = json.loads(line)
            body, content_type = self._input(record)
            rows = self._rows(body, content_type)
        except MalformedError as exc:
            self.counts.malformed[exc.reason] += 1
            return []
        except _OutsideWindowError:
            self.counts.outside_window += 1
            return []
        except (ValueError, RecursionError):  # json.JSONDecodeError and UnicodeDecodeError
            self.counts.malformed["bad_json"] += 1
            return []
        self.counts.used += 1
        self.counts.rows += len(rows)
        return rows

    def _input(self, record: Any) -> tuple[bytes | str, str]:
        try:
            when = record["eventMetadata"]["inferenceTime"]
            endpoint_input = record["captureData"]["endpointInput"]
            data = endpoint_input["data"]
            encoding = str(endpoint_input.get("encoding", "")).upper()
            content_type = str(endpoint_input.get("observedContentType", ""))
        except (KeyError, TypeError):
            raise MalformedError("missing_fields") from None
        if not isinstance(data, str) or not isinstance(when, str):
            raise MalformedError("missing_fields")
        self._check_window(when)
        self.counts.in_window += 1
        if encoding == "BASE64":
            try:
                return base64.b64decode(data, validate=True), content_type
            except (binascii.Error, ValueError):
                raise MalformedError("bad_base64") from None
        if encoding not in ("CSV", "JSON"):
            raise MalformedError("unknown_encoding")
        return data, content_type

    def _check_window(self, when: str) -> None:
        text = when[:19]
        fast = when.endswith("Z") and len(text) == 19 and text[10] == "T"
        if fast and self._start_text < text < self._end_text:
            return  # strictly inside the window, whatever the fraction of a second
        try:
            moment = datetime.fromisoformat(when)
        except ValueError:
            raise MalformedError("bad_timestamp") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if not self.start <= moment < self.end:
            raise _OutsideWindowError

    def _rows(self, body: bytes | str, content_type: str) -> list[Row]:
        media_type = content_type.split(";")[0].strip().lower()
        if media_type not in CSV_TYPES and media_type not in JSON_TYPES:
            raise MalformedError("unsupported_content_type")
        if isinstance(body, bytes):
            try:
                body = body.decode("utf-8")
            except UnicodeDecodeError:
                raise MalformedError("bad_text") from None
        if media_type in CSV_TYPES:
            return self._csv(body)
        return self._json(body)

    # --- CSV ---------------------------------------------------------------------------

    def _csv(self, text: str) -> list[Row]:
        text = text.lstrip("\ufeff")
        if '"' in text:
            try:
                cells_per_line = [
                    [c.strip() for c in r] for r in csv.reader(io.StringIO(text)) if r
                ]
            except csv.Error:  # e.g. a bare carriage return, or a field over csv's limit
                raise MalformedError("bad_csv") from None
        else:  # the common case: no quoting, so a split is exact and several times faster
            cells_per_line = [
                [c.strip() for c in line.split(",")] for line in text.splitlines() if line.strip()
            ]
        if not cells_per_line:
            raise MalformedError("empty_body")
        first = cells_per_line[0]
        if set(first) & self.position.keys():
            if len(set(first)) != len(first) or set(first) != self.position.keys():
                raise MalformedError("bad_header")
            index = {name: i for i, name in enumerate(first)}
            cat_index = tuple(index[n] for n in self.categorical)
            num_index = tuple(index[n] for n in self.numeric)
            cells_per_line = cells_per_line[1:]
            if not cells_per_line:
                raise MalformedError("empty_body")
        else:
            cat_index, num_index = self._cat_index, self._num_index
        width = len(self.order)
        rows = []
        for cells in cells_per_line:
            if len(cells) != width:
                raise MalformedError("wrong_column_count")
            rows.append(self._row(cells, cat_index, num_index))
        return rows

    # --- JSON --------------------------------------------------------------------------

    def _json(self, text: str) -> list[Row]:
        return self._json_rows(self._json_document(text, json.loads))

    @staticmethod
    def _json_document(text: str, loads: Callable[[str], Any]) -> Any:
        try:
            return loads(text)
        except (ValueError, RecursionError):
            raise MalformedError("bad_json_body") from None

    def _json_rows(self, document: Any) -> list[Row]:
        if not isinstance(document, dict) or len(document.keys() & {"instances", "records"}) != 1:
            raise MalformedError("bad_json_shape")
        if "records" in document:
            records = document["records"]
            if not isinstance(records, list) or not records:
                raise MalformedError("bad_json_shape")
            rows = []
            for item in records:
                if not isinstance(item, dict):
                    raise MalformedError("bad_json_shape")
                if item.keys() != self.position.keys():
                    raise MalformedError("wrong_column_count")
                cells = [item[name] for name in self.order]
                rows.append(self._row(cells, self._cat_index, self._num_index))
            return rows
        instances = document["instances"]
        if not isinstance(instances, list) or not instances:
            raise MalformedError("bad_json_shape")
        rows = []
        for item in instances:
            if not isinstance(item, list):
                raise MalformedError("bad_json_shape")
            if len(item) != len(self.order):
                raise MalformedError("wrong_column_count")
            rows.append(self._row(item, self._cat_index, self._num_index))
        return rows

    # --- values ------------------------------------------------------------------------

    @staticmethod
    def _row(cells: list[Any], cat_index: tuple[int, ...], num_index: tuple[int, ...]) -> Row:
        categorical = tuple(cells[i] for i in cat_index)
        for value in categorical:
            if not isinstance(value, str) or not value:
                raise MalformedError("bad_category")
        try:
            numeric = tuple(_number(cells[i]) for i in num_index)
        except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond float
            raise MalformedError("non_numeric") from None
        return Row(categorical, numeric)


class _OutsideWindowError(Exception):
    pass


_ALL_TYPES = CSV_TYPES | JSON_TYPES
MAX_MEDIA_TYPES = 64  # distinct content types remembered; a client's random ones are not
# The path RecordParser takes unless told: the fast one, with or without orjson installed.
FAST = True


_WAITING: Columns = ([], [], 0)  # identity-compared: a body left for the next batch


def _flatten(rows: list[Row]) -> Columns:
    numeric = [value for row in rows for value in row.numeric]
    categorical = [value for row in rows for value in row.categorical]
    return numeric, categorical, len(rows)


def _number(value: Any) -> float:
    if isinstance(value, bool):  # JSON true/false are not numbers to the handler
        raise TypeError
    number = float(value)
    if not math.isfinite(number):
        raise ValueError
    return number
