"""Requests every serving stack must answer alike: good payloads, bad ones, and fuzz.

Shared by the handler's own tests, the local server's, and the tests that run the handler
inside the scikit-learn image's two real serving stacks (test_serving_image.py).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from training.dataset import FEATURES

# The handler's default row limit (inference.handler.MAX_ROWS): one row more is a 413.
MAX_ROWS = 5000


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _structured(frame: pd.DataFrame) -> np.ndarray:
    return frame.to_records(
        index=False, column_dtypes={c: "U20" for c in frame.columns if frame[c].dtype == object}
    )


PAYLOADS: dict[str, Callable[[pd.DataFrame], tuple[bytes | str, str]]] = {
    "csv": lambda f: (f.to_csv(index=False, header=False), "text/csv"),
    "csv-with-header": lambda f: (f.to_csv(index=False), "text/csv; charset=utf-8"),
    "csv-shuffled-header": lambda f: (f[list(reversed(f.columns))].to_csv(index=False), "text/csv"),
    "json-instances": lambda f: (json.dumps({"instances": f.to_numpy().tolist()}), "application/json"),
    "json-records": lambda f: (json.dumps({"records": f.to_dict(orient="records")}), "application/json"),
    "npy-strings": lambda f: (_npy(f.astype(str).to_numpy().astype("U20")), "application/x-npy"),
    "npy-structured": lambda f: (_npy(_structured(f)), "application/x-npy"),
}  # fmt: skip


@dataclass(frozen=True)
class Bad:
    id: str
    body: Callable[[pd.DataFrame], bytes | str]
    content_type: str | None
    status: int
    says: str
    accept: str | None = None
    # Where sagemaker-containers' worker answers otherwise, because it fills in a missing
    # header itself (Content-Type defaults to application/json there).
    in_worker: tuple[int, str] | None = None

    def expected(self, *, worker: bool) -> tuple[int, str]:
        return self.in_worker if worker and self.in_worker else (self.status, self.says)

    def headers(self) -> dict[str, str]:
        headers = {} if self.content_type is None else {"Content-Type": self.content_type}
        return headers | ({} if self.accept is None else {"Accept": self.accept})

    def payload(self, rows: pd.DataFrame) -> bytes:
        body = self.body(rows)
        return body.encode("utf-8") if isinstance(body, str) else body


def _csv_with(column: str, value: str) -> Callable[[pd.DataFrame], str]:
    def make(frame: pd.DataFrame) -> str:
        copy = frame.iloc[:3].astype(object).copy()
        copy.loc[1, column] = value
        return copy.to_csv(index=False, header=False)

    return make


def _all_numbers_nan(frame: pd.DataFrame) -> str:
    numbers = frame.select_dtypes("number").columns
    return frame.assign(**dict.fromkeys(numbers, float("nan"))).to_csv(
        index=False, header=False, na_rep="NaN"
    )


def _rows(frame: pd.DataFrame, count: int) -> str:
    repeated = pd.concat([frame] * (count // len(frame) + 1)).iloc[:count]
    return repeated.to_csv(index=False, header=False)


def _header(frame: pd.DataFrame) -> str:
    return ",".join(frame.columns)


def _records_with(column: str, value: Any) -> Callable[[pd.DataFrame], str]:
    def make(frame: pd.DataFrame) -> str:
        records = frame.iloc[:2].to_dict(orient="records")
        records[1][column] = value
        return json.dumps({"records": records})

    return make


BAD_INPUTS = [
    Bad("empty-body", lambda f: b"", "text/csv", 400, "request body is empty"),
    Bad("blank-body", lambda f: "  \n ", "application/json", 400, "request body is empty"),
    Bad("missing-content-type", lambda f: "1,2", None, 415, "Content-Type (missing) is not supported", in_worker=(400, "body is not valid JSON")),
    Bad("unsupported-content-type", lambda f: "<x/>", "application/xml", 415, "use one of text/csv, application/json"),
    Bad("unsupported-accept", lambda f: f.iloc[:1].to_csv(index=False), "text/csv", 406, "Accept application/xml is not supported", "application/xml"),
    Bad("too-few-values", lambda f: f.iloc[:2, :-1].to_csv(index=False, header=False), "text/csv", 400, "each row must have 19 values in this order: state, area_code"),
    Bad("too-many-values", lambda f: f.iloc[:2].assign(extra=1).to_csv(index=False, header=False), "text/csv", 400, "got 20"),
    Bad("unknown-column", lambda f: f.iloc[:2].assign(customer_id=7).to_csv(index=False), "text/csv", 400, "unknown column(s) customer_id"),
    Bad("missing-column", lambda f: f.iloc[:2].drop(columns=["total_eve_calls"]).to_csv(index=False), "text/csv", 400, "missing column(s) total_eve_calls"),
    Bad("duplicate-column", lambda f: f.iloc[:2].to_csv(index=False).replace("total_eve_calls", "total_day_calls", 1), "text/csv", 400, "duplicate column(s) total_day_calls"),
    # pandas made the first of 20 values the row index and shifted the rest left: a 200.
    Bad("csv-header-then-a-wider-row", lambda f: f"{_header(f)}\n1,{f.iloc[:1].to_csv(index=False, header=False)}", "text/csv", 400, "the first CSV data row has 20 values but the header names 19 columns"),
    Bad("non-numeric", _csv_with("total_day_minutes", "lots"), "text/csv", 400, "row 2, column total_day_minutes: 'lots' is not a number"),
    # pandas ends a row at a bare carriage return, so the first row is "a".
    Bad("carriage-return-in-first-row", lambda f: "a\rb,c\n1,2", "text/csv", 400, f"each row must have 19 values in this order: {', '.join(FEATURES)}; got 1"),
    Bad("csv-first-row-over-the-csv-field-limit", lambda f: "x" * 200_000 + ",1\n", "text/csv", 400, "the first CSV row is unreadable: field larger than field limit"),
    Bad("missing-number", _csv_with("total_eve_charge", ""), "text/csv", 400, "row 2, column total_eve_charge: is missing"),
    Bad("nan", _csv_with("total_night_minutes", "NaN"), "text/csv", 400, "row 2, column total_night_minutes: is missing or NaN"),
    Bad("nan-everywhere", lambda f: _all_numbers_nan(f.iloc[:3]), "text/csv", 400, "row 1, column account_length: is missing or NaN"),
    Bad("oversized-batch", lambda f: _rows(f, MAX_ROWS + 1), "text/csv", 413, f"the batch has more than {MAX_ROWS} rows; the limit is {MAX_ROWS}"),
    Bad("infinity", _csv_with("total_intl_calls", "inf"), "text/csv", 400, "row 2, column total_intl_calls: inf is not allowed"),
    Bad("empty-category", _csv_with("state", ""), "text/csv", 400, "row 2, column state: expected a non-empty text value"),
    Bad("ragged-csv", lambda f: f.iloc[:2].to_csv(index=False, header=False) + "KS,1,2\n,,,,,,,,,,,,,,,,,,,,,,,,,\n", "text/csv", 400, "body is not valid CSV"),
    Bad("not-utf8", lambda f: b"\xff\xfe\x00bad", "text/csv", 400, "body is not UTF-8 text"),
    Bad("malformed-json", lambda f: '{"instances": [[1, 2]', "application/json", 400, "body is not valid JSON"),
    Bad("json-wrong-shape", lambda f: json.dumps({"data": [1]}), "application/json", 400, '{"instances": [[value, ...], ...]}'),
    Bad("json-both-keys", lambda f: json.dumps({"instances": [], "records": []}), "application/json", 400, "JSON body must be"),
    Bad("json-records-not-objects", lambda f: json.dumps({"records": [1, 2]}), "application/json", 400, "records[0] is not an object"),
    Bad("json-ragged-instances", lambda f: json.dumps({"instances": [[1, 2], [1]]}), "application/json", 400, "row 2 has 1 values but row 1 has 2"),
    Bad("json-empty-instances", lambda f: json.dumps({"instances": []}), "application/json", 400, "the batch has no rows"),
    Bad("json-boolean-number", _records_with("total_day_calls", True), "application/json", 400, "row 2, column total_day_calls: expected a number, got True"),
    Bad("json-null-number", _records_with("total_day_calls", None), "application/json", 400, "row 2, column total_day_calls: is missing or NaN"),
    Bad("json-number-category", _records_with("state", 5), "application/json", 400, "row 2, column state: expected a non-empty text value, got 5"),
    Bad("npy-object-array", lambda f: np.lib.format.magic(1, 0) + b"junk", "application/x-npy", 400, "body is not a .npy array"),
    Bad("npy-3d", lambda f: _npy(np.zeros((2, 2, 2))), "application/x-npy", 400, "npy array must be 2-D"),
    Bad("npy-structured-2d", lambda f: _npy(np.zeros((2, 2), dtype=[("state", "U2"), ("x", "f8")])), "application/x-npy", 400, "a structured npy array must be 1-D, one record per row; got 2-D"),
    Bad("npy-structured-0d", lambda f: _npy(np.zeros((), dtype=[("state", "U2")])), "application/x-npy", 400, "a structured npy array must be 1-D, one record per row; got 0-D"),
    Bad("npy-numbers-for-categories", lambda f: _npy(np.zeros((2, 19))), "application/x-npy", 400, "row 1, column state: expected a non-empty text value"),
]  # fmt: skip


# --- hostile bodies: each once cost a worker seconds to gigabytes, was a 500, or echoed MBs --
# Limits the handler names (inference.handler): MAX_COLUMNS, MAX_HEADER_CHARS,
# MAX_JSON_DEPTH, and CPython's int_max_str_digits for JSON integers.
MAX_COLUMNS = 64
MAX_HEADER_CHARS = 4096
MAX_JSON_DEPTH = 16
MAX_INT_DIGITS = 4300


Body = Callable[[pd.DataFrame], bytes | str]


def _built_once(make: Body) -> Body:
    """The body ``make`` builds from the first frame it is given (the session's test rows):
    hostile bodies run to megabytes, and every test of every stack sends them."""
    built: list[bytes | str] = []

    def body(frame: pd.DataFrame) -> bytes | str:
        if not built:
            built.append(make(frame))
        return built[0]

    return body


def _records_with_raw(column: str, raw_json: str) -> Callable[[pd.DataFrame], str]:
    """Two records whose second has ``raw_json`` (JSON text json.dumps cannot write: nested
    thousands deep, or an integer over Python's digit limit) as ``column``'s value."""

    def make(frame: pd.DataFrame) -> str:
        return _records_with(column, "@raw@")(frame).replace('"@raw@"', raw_json)

    return make


def _deep_arrays(depth: int) -> str:
    return "[" * depth + "]" * depth


def _npy_declaring(shape: tuple[int, ...], descr: str) -> bytes:
    """A .npy header declaring ``shape`` and ``descr``, followed by 64 bytes of data."""
    buffer = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + bytes(64)


# The probe's findings first (issue 16), at the sizes it sent; then what else the same
# flaws allowed. Every body stays under SageMaker's 6 MB payload limit, so the local server
# and the image's worker reach the handler with each of them.
_TOO_DEEP = f"body nests JSON more than {MAX_JSON_DEPTH} levels deep"
_CSV_TOO_WIDE = f"the first CSV row has more than {MAX_COLUMNS} values"
HOSTILE_INPUTS = [
    Bad("json-arrays-1000-deep", _built_once(lambda f: _deep_arrays(1000)), "application/json", 400, _TOO_DEEP),
    Bad("json-arrays-100000-deep", _built_once(lambda f: _deep_arrays(100_000)), "application/json", 400, _TOO_DEEP),
    Bad("json-arrays-1000000-deep", _built_once(lambda f: _deep_arrays(1_000_000)), "application/json", 400, _TOO_DEEP),
    Bad("json-objects-100000-deep", _built_once(lambda f: '{"a":' * 100_000 + "1" + "}" * 100_000), "application/json", 400, _TOO_DEEP),
    Bad("json-cell-5000-deep", _built_once(_records_with_raw("state", _deep_arrays(5000))), "application/json", 400, _TOO_DEEP),
    Bad("json-integer-10-to-the-400", _built_once(_records_with("total_day_calls", 10**400)), "application/json", 400, "row 2, column total_day_calls: 10000"),
    Bad("json-integer-5001-digits", _built_once(_records_with_raw("total_day_calls", "7" * 5001)), "application/json", 400, f"a JSON integer longer than {MAX_INT_DIGITS} digits"),
    Bad("csv-header-10000-duplicates", _built_once(lambda f: ",".join(["state"] * 10_000) + "\n"), "text/csv", 400, _CSV_TOO_WIDE),
    Bad("csv-header-20000-duplicates", _built_once(lambda f: ",".join(["state"] * 20_000) + "\n"), "text/csv", 400, _CSV_TOO_WIDE),
    Bad("csv-header-40000-duplicates", _built_once(lambda f: ",".join(["state"] * 40_000) + "\n"), "text/csv", 400, _CSV_TOO_WIDE),
    Bad("csv-header-1000000-duplicates", _built_once(lambda f: "state" + ",x" * 1_000_000 + "\n"), "text/csv", 400, _CSV_TOO_WIDE),
    Bad("csv-header-600000-unique-names", _built_once(lambda f: "state," + ",".join(f"c{i}" for i in range(600_000)) + "\n"), "text/csv", 400, _CSV_TOO_WIDE),
    Bad("json-record-100000-unknown-keys", _built_once(lambda f: json.dumps({"records": [{f"k{i}": 1 for i in range(100_000)}]})), "application/json", 400, f"there are 100000 different column names in the JSON records, more than the {MAX_COLUMNS}"),
    Bad("csv-1-row-of-1000000-values", _built_once(lambda f: "1," * 999_999 + "1\n"), "text/csv", 400, _CSV_TOO_WIDE),
    # A header, then a first data row wider than it: pandas took 2 minutes and 2 GB to make
    # the extra leading values a million-level row index.
    Bad("csv-header-then-1000000-values", _built_once(lambda f: _header(f) + "\n" + "1," * 999_999 + "1\n"), "text/csv", 400, f"the first CSV data row has more than {MAX_COLUMNS} values"),
    Bad("csv-header-then-a-quoted-newline-and-1000000-values", _built_once(lambda f: _header(f) + '\nKS,"\n"' + ",1" * 1_000_000 + "\n"), "text/csv", 400, f"the first CSV data row has more than {MAX_COLUMNS} values"),
    Bad("csv-header-then-2900000-one-value-rows", _built_once(lambda f: _header(f) + "\n" + "1\n" * 2_900_000), "text/csv", 413, f"the batch has more than {MAX_ROWS} rows; the limit is {MAX_ROWS}"),
    Bad("csv-40000-rows", _built_once(lambda f: _rows(f, 40_000)), "text/csv", 413, f"the batch has more than {MAX_ROWS} rows; the limit is {MAX_ROWS}"),
    Bad("csv-header-names-over-the-size-limit", _built_once(lambda f: _header(f) + "".join(f",{i}{'n' * 999}" for i in range(5)) + "\n" + f.iloc[:1].to_csv(index=False, header=False)), "text/csv", 400, f"more than the {MAX_HEADER_CHARS} characters"),
    Bad("csv-a-5mb-value-where-a-number-belongs", _built_once(_csv_with("total_day_minutes", "9" * 5_000_000 + "x")), "text/csv", 400, "row 2, column total_day_minutes: '9999"),
    Bad("json-instances-1-row-of-1000000-values", _built_once(lambda f: json.dumps({"instances": [[1] * 1_000_000]})), "application/json", 400, f"row 1 has 1000000 values, more than the {MAX_COLUMNS}"),
    Bad("json-5000-records-with-100000-distinct-keys", _built_once(lambda f: json.dumps({"records": [{f"k{i}_{j}": 1 for j in range(20)} for i in range(5000)]})), "application/json", 400, f"there are 100000 different column names in the JSON records, more than the {MAX_COLUMNS}"),
    Bad("json-records-names-over-the-size-limit", _built_once(lambda f: json.dumps({"records": [{f"{i}{'n' * 999}": 1 for i in range(5)}]})), "application/json", 400, f"more than the {MAX_HEADER_CHARS} characters"),
    Bad("json-1000000-instances", _built_once(lambda f: json.dumps({"instances": [[1]] * 1_000_000})), "application/json", 413, f"body has 1000002 JSON arrays and objects; a batch of at most {MAX_ROWS} rows (the limit) has {MAX_ROWS + 2}"),
    # Closing brackets inside a string, then nesting: a count that ignored strings saw depth 1.
    Bad("json-deep-after-brackets-in-a-string", _built_once(lambda f: '["' + "]" * 100_000 + '",' + _deep_arrays(100_000) + "]"), "application/json", 400, _TOO_DEEP),
    Bad("json-deep-after-escaped-quotes", _built_once(lambda f: '["\\\\\\"' + "]" * 1000 + '",' + _deep_arrays(1000) + "]"), "application/json", 400, _TOO_DEEP),
    Bad("npy-declaring-10-million-rows", _built_once(lambda f: _npy_declaring((10**7, 10**7), "<f8")), "application/x-npy", 413, f"the batch has 10000000 rows; the limit is {MAX_ROWS}"),
    Bad("npy-declaring-380-gb-of-text", _built_once(lambda f: _npy_declaring((5000, 19), "<U1000000")), "application/x-npy", 400, "its header declares 380000000000 bytes of data but 64 follow"),
    Bad("npy-1-row-of-100000-values", _built_once(lambda f: _npy(np.zeros((1, 100_000)))), "application/x-npy", 400, f"the array has 100000 columns, more than the {MAX_COLUMNS}"),
]  # fmt: skip


CONTENT_TYPES = st.sampled_from(
    [
        "text/csv",
        "application/json",
        "application/x-npy",
        "text/plain",
        "",
        "text/csv; charset=latin-1",
        "application/json; x=y",
        "*/*",
    ]
)
ACCEPTS = st.sampled_from(
    ["application/json", "text/csv", "*/*", "", "image/png", "text/*, application/json"]
)


def bodies(rows: pd.DataFrame) -> st.SearchStrategy[bytes]:
    valid = rows.iloc[:3].to_csv(index=False, header=False)
    return st.one_of(
        st.binary(max_size=512),
        st.text(max_size=256).map(str.encode),
        st.just(valid.encode()),
        st.lists(st.sampled_from(valid.split(",")), max_size=40).map(
            lambda cells: ",".join(cells).encode()
        ),
        st.recursive(
            st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
            lambda inner: (
                st.lists(inner, max_size=5)
                | st.dictionaries(
                    st.sampled_from(["instances", "records", "state", "x"]), inner, max_size=4
                )
            ),
            max_leaves=20,
        ).map(lambda doc: json.dumps(doc).encode()),
    )


def fuzzed_request(data: st.DataObject, rows: pd.DataFrame) -> tuple[bytes, dict[str, str]]:
    """A body and headers drawn for one fuzzed request."""
    body = data.draw(bodies(rows))
    return body, {"Content-Type": data.draw(CONTENT_TYPES), "Accept": data.draw(ACCEPTS)}
