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
    Bad("non-numeric", _csv_with("total_day_minutes", "lots"), "text/csv", 400, "row 2, column total_day_minutes: 'lots' is not a number"),
    Bad("carriage-return-in-first-row", lambda f: "a\rb,c\n1,2", "text/csv", 400, "the first CSV row is unreadable"),
    Bad("missing-number", _csv_with("total_eve_charge", ""), "text/csv", 400, "row 2, column total_eve_charge: is missing"),
    Bad("nan", _csv_with("total_night_minutes", "NaN"), "text/csv", 400, "row 2, column total_night_minutes: is missing or NaN"),
    Bad("nan-everywhere", lambda f: _all_numbers_nan(f.iloc[:3]), "text/csv", 400, "row 1, column account_length: is missing or NaN"),
    Bad("oversized-batch", lambda f: _rows(f, MAX_ROWS + 1), "text/csv", 413, f"the batch has {MAX_ROWS + 1} rows; the limit is {MAX_ROWS}"),
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
    Bad("npy-numbers-for-categories", lambda f: _npy(np.zeros((2, 19))), "application/x-npy", 400, "row 1, column state: expected a non-empty text value"),
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
