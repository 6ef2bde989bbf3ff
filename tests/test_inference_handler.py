"""The handler: every content type round-trips, every bad input gets a 4xx that says why."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from inference import handler
from inference.handler import RequestError


@pytest.fixture(scope="module")
def model(model_dir: Path) -> handler.ServingModel:
    return handler.model_fn(str(model_dir))


@pytest.fixture(scope="module")
def rows(test_rows: pd.DataFrame) -> pd.DataFrame:
    return test_rows.iloc[:25].reset_index(drop=True)


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


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
@pytest.mark.parametrize("accept", ["application/json", "text/csv", "*/*", None])
def test_every_content_type_round_trips(
    payload: str, accept: str | None, model: handler.ServingModel, rows: pd.DataFrame
) -> None:
    body, content_type = PAYLOADS[payload](rows)
    expected = model.pipeline.predict_proba(rows)[:, 1]

    response, response_type = handler.transform(model, body, content_type, accept)

    if response_type == "text/csv":
        parsed = [line.split(",") for line in response.strip().split("\n")]
        probabilities = np.array([float(p[2]) for p in parsed])
        labels = [p[0] for p in parsed]
        assert accept == "text/csv"
    else:
        document = json.loads(response)
        probabilities = np.array([p["probabilities"]["yes"] for p in document["predictions"]])
        labels = [p["label"] for p in document["predictions"]]
        assert document["model_sha256"] == model.sha256
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    assert labels == ["yes" if p >= 0.5 else "no" for p in expected]


def test_a_single_row_and_bytes_body_work(model: handler.ServingModel, rows: pd.DataFrame) -> None:
    body = rows.iloc[:1].to_csv(index=False, header=False).encode()
    response, _ = handler.transform(model, body, "text/csv", "application/json")
    assert len(json.loads(response)["predictions"]) == 1


@dataclass(frozen=True)
class Bad:
    id: str
    body: Callable[[pd.DataFrame], bytes | str]
    content_type: str | None
    status: int
    says: str
    accept: str | None = None


def _csv_with(column: str, value: str) -> Callable[[pd.DataFrame], str]:
    def make(frame: pd.DataFrame) -> str:
        copy = frame.iloc[:3].astype(object).copy()
        copy.loc[1, column] = value
        return copy.to_csv(index=False, header=False)

    return make


def _records_with(column: str, value: Any) -> Callable[[pd.DataFrame], str]:
    def make(frame: pd.DataFrame) -> str:
        records = frame.iloc[:2].to_dict(orient="records")
        records[1][column] = value
        return json.dumps({"records": records})

    return make


BAD_INPUTS = [
    Bad("empty-body", lambda f: b"", "text/csv", 400, "request body is empty"),
    Bad("blank-body", lambda f: "  \n ", "application/json", 400, "request body is empty"),
    Bad("missing-content-type", lambda f: "1,2", None, 415, "Content-Type (missing) is not supported"),
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


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=lambda b: b.id)
def test_bad_input_is_a_4xx_naming_the_problem(
    bad: Bad, model: handler.ServingModel, test_rows: pd.DataFrame
) -> None:
    with pytest.raises(RequestError) as caught:
        handler.transform(model, bad.body(test_rows), bad.content_type, bad.accept)
    assert caught.value.status_code == bad.status
    assert 400 <= caught.value.status_code < 500
    assert bad.says in caught.value.message, caught.value.message


def test_batches_over_the_row_limit_are_413(
    model: handler.ServingModel, test_rows: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handler, "MAX_ROWS", 10)
    body = test_rows.iloc[:11].to_csv(index=False, header=False)
    with pytest.raises(RequestError) as caught:
        handler.transform(model, body, "text/csv", None)
    assert caught.value.status_code == 413
    assert "11 rows; the limit is 10" in caught.value.message


def test_object_arrays_are_refused_without_unpickling(model: handler.ServingModel) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([[object()]], dtype=object), allow_pickle=True)
    with pytest.raises(RequestError, match="refuses") as caught:
        handler.input_fn(buffer.getvalue(), "application/x-npy")
    assert caught.value.status_code == 400


def test_model_fn_refuses_a_tampered_model(model_dir: Path, tmp_path: Path) -> None:
    for name in ("model.joblib", "manifest.json", "baseline.json"):
        (tmp_path / name).write_bytes((model_dir / name).read_bytes())
    with (tmp_path / "model.joblib").open("ab") as handle:
        handle.write(b"!")
    with pytest.raises(handler.ModelLoadError, match="refusing to load it"):
        handler.model_fn(str(tmp_path))


def test_model_fn_refuses_a_model_from_another_scikit_learn(
    model_dir: Path, tmp_path: Path
) -> None:
    for name in ("model.joblib", "baseline.json"):
        (tmp_path / name).write_bytes((model_dir / name).read_bytes())
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["libraries"]["scikit-learn"] = "1.4.2"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(handler.ModelLoadError, match=r"trained with scikit-learn 1\.4\.2"):
        handler.model_fn(str(tmp_path))


def test_model_fn_explains_a_directory_that_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(handler.ModelLoadError, match="is not a model directory from training"):
        handler.model_fn(str(tmp_path))


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, "application/json"),
        ("", "application/json"),
        ("*/*", "application/json"),
        ("text/csv", "text/csv"),
        ("application/xml, text/csv;q=0.5", "text/csv"),
        ("text/*", "text/csv"),
    ],
)
def test_accept_negotiation(accept: str | None, chosen: str) -> None:
    assert handler.choose_accept(accept) == chosen
