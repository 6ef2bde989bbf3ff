"""Plain CSV bodies of many capture records, parsed in one call by pyarrow's CSV reader.

Most capture is a CSV row or a few. Parsed one record at a time in Python, each cell costs a
string object and a float() call; pyarrow's reader (in the scikit-learn image, and here)
reads a batch of bodies in C++. It only ever answers for a batch in which every body is
plain and valid: anything pyarrow's reader and Python's float() could disagree on (a
non-printable character, an empty or null cell, a feature name in a cell, a number pyarrow
refuses, a non-finite one) makes ``parse`` return None, and the caller parses each body
alone, exactly. So what this accepts, Python's float() accepts with the same value:
tests/test_capture_fast_path.py fuzzes that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

try:
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.compute as pc  # type: ignore[import-untyped]
    import pyarrow.csv as pacsv  # type: ignore[import-untyped]
except ImportError:  # the per-record path does the same, more slowly
    HAVE_PYARROW = False
else:
    HAVE_PYARROW = True

# Bodies per reader call: its fixed cost (~0.1 ms) spread thin, a batch still small.
BATCH_RECORDS = 2048
BLOCK_BYTES = 1 << 22


@dataclass(frozen=True)
class Block:
    """Rows of several records, column by column."""

    numeric: np.ndarray  # rows x numeric features, float64
    categorical: list[list[str]]  # one value list per categorical feature
    rows: int


class CsvBatchReader:
    """Reads batches of headerless, unquoted CSV bodies in the feature order."""

    def __init__(
        self, order: Sequence[str], categorical: Sequence[str], numeric: Sequence[str]
    ) -> None:
        self.categorical, self.numeric = tuple(categorical), tuple(numeric)
        # A feature name that reads as a number could hide a header in a numeric column.
        self.enabled = HAVE_PYARROW and not any(_is_number(name) for name in order)
        if not self.enabled:
            return
        self._read = pacsv.ReadOptions(
            column_names=list(order), use_threads=False, block_size=BLOCK_BYTES
        )
        self._parse = pacsv.ParseOptions(
            delimiter=",", quote_char=False, escape_char=False, ignore_empty_lines=True
        )
        types = {name: pa.float64() for name in numeric}
        types.update({name: pa.string() for name in categorical})
        self._convert = pacsv.ConvertOptions(
            column_types=types, strings_can_be_null=False, quoted_strings_can_be_null=False
        )
        # A header cell, or an empty category: the reference parser must decide.
        self._not_values = pa.array(["", *order])

    def parse(self, bodies: list[str]) -> Block | None:
        """Every body's rows, or None when any body needs the per-record parser."""
        if not self.enabled:
            return None
        text = "\n".join(bodies)
        # Whitespace and line breaks other than "\n" are not printable: the reference
        # parser strips them (and a BOM), pyarrow would not.
        if text.isascii():
            data = text.encode()
            if data.translate(None, _PRINTABLE_ASCII):
                return None
        elif text.replace("\n", "").isprintable():
            data = text.encode()
        else:
            return None
        try:
            table = pacsv.read_csv(
                pa.BufferReader(data),
                read_options=self._read,
                parse_options=self._parse,
                convert_options=self._convert,
            )
        except pa.ArrowException:  # a wrong width, a non-number, ...
            return None
        numeric = [table.column(name) for name in self.numeric]
        if any(column.null_count for column in numeric):  # NA, null, nan, empty, ...
            return None
        matrix = np.empty((table.num_rows, len(numeric)))
        for j, column in enumerate(numeric):
            matrix[:, j] = column.to_numpy()
        if not np.isfinite(matrix).all():
            return None
        categorical = [table.column(name) for name in self.categorical]
        for column in categorical:
            if pc.any(pc.is_in(column, value_set=self._not_values)).as_py():
                return None
        values = [column.to_pylist() for column in categorical]
        return Block(matrix, values, table.num_rows)


_PRINTABLE_ASCII = bytes(range(0x20, 0x7F)) + b"\n"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
