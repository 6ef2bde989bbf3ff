"""Parse SageMaker data-capture records into feature rows, one line at a time.

Only the request side (``endpointInput``) matters for feature drift. Bodies may be CSV
(headerless in feature order, or with a header naming the features), JSON
(``{"instances": [[...]]}`` or ``{"records": [{...}]}``, as inference/handler.py accepts)
or either of those base64-encoded. A record the handler would have refused, or one that is
not a capture record at all, is counted under a reason and skipped as a whole: a request is
served (and so belongs to the live distribution) only if every row in it is valid.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from monitoring.baseline import Baseline

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


class RecordParser:
    """Turns capture lines into rows, counting what it skips and why."""

    def __init__(self, baseline: Baseline, start: datetime, end: datetime) -> None:
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

    def parse(self, line: bytes) -> list[Row]:
        """The record's rows, or [] when it is outside the window or malformed."""
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
            cells_per_line = [[c.strip() for c in r] for r in csv.reader(io.StringIO(text)) if r]
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
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            raise MalformedError("bad_json_body") from None
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
        except (TypeError, ValueError):
            raise MalformedError("non_numeric") from None
        return Row(categorical, numeric)


class _OutsideWindowError(Exception):
    pass


def _number(value: Any) -> float:
    if isinstance(value, bool):  # JSON true/false are not numbers to the handler
        raise TypeError
    number = float(value)
    if not math.isfinite(number):
        raise ValueError
    return number
