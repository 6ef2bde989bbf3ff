"""The common capture bodies to flat columns, at C speed, or None for the reference parser.

monitoring.capture's per-cell parsing (a strip, a type check and a float() per cell, a Row
per row) is exact but costs most of the drift job's time. These functions take only the
plain cases: an unquoted CSV body with no whitespace but newlines, or JSON instances/records
whose cells are already numbers and non-empty strings. They convert whole rows with C-level
getters and ``map(float, ...)``. On anything else, including every malformed body, they
return None and the reference parser decides, so rows, reasons and counts cannot differ
(tests/test_capture_fast_path.py feeds both the same corpus).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import eq, itemgetter, methodcaller
from typing import Any

# Flat row-major values of the record's rows: numeric, categorical, and the row count.
Columns = tuple[list[float], list[str], int]
Getter = Callable[[Any], tuple[Any, ...]]

_NUMBERS = frozenset({int, float})  # bool is its own type: the handler refuses true/false
_TEXT = frozenset({str})
MAX_HEADERS = 64  # distinct CSV headers remembered; more are parsed the reference way
MAX_CACHED_ROWS = 256  # getters kept per row count (larger bodies build their own)
_COMMAS = methodcaller("count", ",")


def getter(keys: Sequence[int] | Sequence[str]) -> Getter:
    """``lambda cells: tuple(cells[k] for k in keys)``, at C speed for two keys or more."""
    if len(keys) >= 2:
        return itemgetter(*keys)
    if len(keys) == 1:
        key = keys[0]
        return lambda cells: (cells[key],)
    return lambda cells: ()


@dataclass(frozen=True)
class Layout:
    """Where a request row's features are: by position in CSV and instances, by name in
    records."""

    width: int
    names: frozenset[str]
    categorical_index: tuple[int, ...]
    numeric_index: tuple[int, ...]
    categorical_by_name: Getter
    numeric_by_name: Getter
    # Row count -> getters of every row's categorical and numeric cells from the body's
    # cells, concatenated row after row: one C call per body instead of one per row.
    _getters: dict[int, tuple[Getter, Getter]] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, order: Sequence[str], categorical: Sequence[str], numeric: Sequence[str]) -> Layout:
        position = {name: i for i, name in enumerate(order)}
        return cls(
            width=len(order),
            names=frozenset(order),
            categorical_index=tuple(position[n] for n in categorical),
            numeric_index=tuple(position[n] for n in numeric),
            categorical_by_name=getter(list(categorical)),
            numeric_by_name=getter(list(numeric)),
        )

    def getters(self, rows: int) -> tuple[Getter, Getter]:
        """Getters of ``rows`` rows' categorical and numeric cells from their flat cells."""
        found = self._getters.get(rows)
        if found is None:
            starts = range(0, rows * self.width, self.width)
            found = (
                getter([s + i for s in starts for i in self.categorical_index]),
                getter([s + i for s in starts for i in self.numeric_index]),
            )
            if rows <= MAX_CACHED_ROWS:
                self._getters[rows] = found
        return found


class CsvLayouts:
    """The layout for a body's columns: the feature order, or a header's order (cached)."""

    def __init__(self, order: Sequence[str], categorical: Sequence[str], numeric: Sequence[str]):
        self.default = Layout.of(order, categorical, numeric)
        self._categorical, self._numeric = tuple(categorical), tuple(numeric)
        self._headers: dict[tuple[str, ...], Layout | None] = {}

    def for_header(self, cells: list[str]) -> Layout | None:
        """The layout a header names; None when it is no valid header (the reference
        parser says why)."""
        key = tuple(cells)
        if key in self._headers:
            return self._headers[key]
        valid = len(set(key)) == len(key) and set(key) == self.default.names
        layout = Layout.of(key, self._categorical, self._numeric) if valid else None
        if len(self._headers) < MAX_HEADERS:
            self._headers[key] = layout
        return layout


def csv_columns(text: str, layouts: CsvLayouts) -> Columns | None:
    """An unquoted CSV body's rows; None unless every cell is plain."""
    # Quotes need the csv module; a space (or, below, any other whitespace or line break,
    # none of which is printable) would need the reference parser's strips and splitlines.
    if '"' in text or " " in text:
        return None
    lines = text.split("\n")
    if "" in lines:  # the final newline, or blank lines: the reference skips them
        lines = [line for line in lines if line]
    if not lines or not all(map(str.isprintable, lines)):
        return None
    layout = layouts.default
    first = lines[0].split(",")
    if not layout.names.isdisjoint(first):  # a header, as the reference tells one
        header = layouts.for_header(first)
        if header is None:
            return None
        layout, lines = header, lines[1:]
    rows = len(lines)
    # Every line holds exactly one cell per feature.
    if not rows or set(map(_COMMAS, lines)) != {layout.width - 1}:
        return None
    cells = ",".join(lines).split(",") if rows > 1 else lines[0].split(",")
    categorical_of, numeric_of = layout.getters(rows)
    categorical = categorical_of(cells)
    if "" in categorical:
        return None
    try:
        values = list(map(float, numeric_of(cells)))
    except ValueError:
        return None
    # A sum is finite only if every term is (inf and nan propagate); one that overflows
    # just goes the slow way.
    if not math.isfinite(sum(values)):
        return None
    return values, list(categorical), rows


def json_columns(document: Any, layout: Layout) -> Columns | None:
    """A parsed ``{"instances": [[...]]}`` or ``{"records": [{...}]}`` body's rows; None
    unless every cell is a finite number or a non-empty string where the feature wants it."""
    if type(document) is not dict:
        return None
    by_name = "records" in document
    if by_name == ("instances" in document):  # neither or both
        return None
    items = document["records"] if by_name else document["instances"]
    if type(items) is not list or not items:
        return None
    rows = len(items)
    if by_name:
        if set(map(type, items)) != {dict}:
            return None
        # eq, not names.__eq__: a frozenset does not compare itself with a keys view.
        if not all(map(eq, map(dict.keys, items), repeat(layout.names))):
            return None
        categorical = tuple(chain.from_iterable(map(layout.categorical_by_name, items)))
        numbers = tuple(chain.from_iterable(map(layout.numeric_by_name, items)))
    else:
        if set(map(type, items)) != {list} or set(map(len, items)) != {layout.width}:
            return None
        cells = list(chain.from_iterable(items))
        categorical_of, numeric_of = layout.getters(rows)
        categorical, numbers = categorical_of(cells), numeric_of(cells)
    if not _TEXT.issuperset(map(type, categorical)) or "" in categorical:
        return None
    if not _NUMBERS.issuperset(map(type, numbers)):
        return None  # numbers as text, true/false, null: the reference decides
    try:
        values = list(map(float, numbers))
    except OverflowError:  # an integer beyond float range
        return None
    if not math.isfinite(sum(values)):
        return None
    return values, list(categorical), rows
