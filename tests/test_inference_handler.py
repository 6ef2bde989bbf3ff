"""The handler: every content type round-trips, every bad input gets a 4xx that says why."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from serving_cases import BAD_INPUTS, HOSTILE_INPUTS, PAYLOADS, Bad

from inference import handler
from inference.handler import RequestError


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
@pytest.mark.parametrize("accept", ["application/json", "text/csv", "*/*", None])
def test_every_content_type_round_trips(
    payload: str, accept: str | None, serving_model: handler.ServingModel, rows: pd.DataFrame
) -> None:
    body, content_type = PAYLOADS[payload](rows)
    expected = serving_model.pipeline.predict_proba(rows)[:, 1]

    response, response_type = handler.transform(serving_model, body, content_type, accept)

    if response_type == "text/csv":
        parsed = [line.split(",") for line in response.strip().split("\n")]
        probabilities = np.array([float(p[2]) for p in parsed])
        labels = [p[0] for p in parsed]
        assert accept == "text/csv"
    else:
        document = json.loads(response)
        probabilities = np.array([p["probabilities"]["yes"] for p in document["predictions"]])
        labels = [p["label"] for p in document["predictions"]]
        assert document["model_sha256"] == serving_model.sha256
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    assert labels == ["yes" if p >= 0.5 else "no" for p in expected]


def test_csv_categories_that_look_like_numbers_are_categories(
    serving_model: handler.ServingModel, rows: pd.DataFrame
) -> None:
    # pandas would parse such a column as numbers, which the model's encoder cannot take.
    frame = rows.iloc[:3].astype({"area_code": str, "state": str}).copy()
    frame["area_code"] = ["1", "01", "415"]
    frame["state"] = ["\x01", "7", "KS"]
    body = frame.to_csv(index=False, header=False).encode()

    response, _ = handler.transform(serving_model, body, "text/csv", "application/json")

    expected = serving_model.pipeline.predict_proba(frame)[:, 1]
    got = [p["probabilities"]["yes"] for p in json.loads(response)["predictions"]]
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_a_single_row_and_bytes_body_work(
    serving_model: handler.ServingModel, rows: pd.DataFrame
) -> None:
    body = rows.iloc[:1].to_csv(index=False, header=False).encode()
    response, _ = handler.transform(serving_model, body, "text/csv", "application/json")
    assert len(json.loads(response)["predictions"]) == 1


@pytest.mark.parametrize("bad", [*BAD_INPUTS, *HOSTILE_INPUTS], ids=lambda b: b.id)
def test_bad_input_is_a_4xx_naming_the_problem(
    bad: Bad, serving_model: handler.ServingModel, test_rows: pd.DataFrame
) -> None:
    with pytest.raises(RequestError) as caught:
        handler.transform(serving_model, bad.body(test_rows), bad.content_type, bad.accept)
    assert caught.value.status_code == bad.status
    assert 400 <= caught.value.status_code < 500
    assert bad.says in caught.value.message, caught.value.message


def test_batches_over_the_row_limit_are_413(
    serving_model: handler.ServingModel, test_rows: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handler, "MAX_ROWS", 10)
    body = test_rows.iloc[:11].to_csv(index=False, header=False)
    with pytest.raises(RequestError) as caught:
        handler.transform(serving_model, body, "text/csv", None)
    assert caught.value.status_code == 413
    assert "more than 10 rows; the limit is 10" in caught.value.message


# --- what the limits must not refuse -----------------------------------------------------


def _one_record_with(rows: pd.DataFrame, **values: object) -> str:
    record = rows.iloc[0].to_dict() | values
    return json.dumps({"records": [record]})


@pytest.mark.parametrize(
    "state",
    [
        "]" * 50 + "[" * 50,  # brackets inside a string are text, not nesting
        '\\"' + "[" * 50,  # an escaped backslash, an escaped quote, then brackets
        "{" * 500,
    ],
)
def test_brackets_inside_json_strings_do_not_count_as_nesting(
    serving_model: handler.ServingModel, rows: pd.DataFrame, state: str
) -> None:
    body = _one_record_with(rows, state=state)
    response, _ = handler.transform(serving_model, body, "application/json", None)
    assert len(json.loads(response)["predictions"]) == 1


def test_json_nested_to_the_limit_is_parsed_and_the_value_named(
    serving_model: handler.ServingModel, rows: pd.DataFrame
) -> None:
    # 3 levels of request, then a value nested to the limit: the column check names it.
    nested = "[" * (handler.MAX_JSON_DEPTH - 3) + "1" + "]" * (handler.MAX_JSON_DEPTH - 3)
    body = _one_record_with(rows, total_day_calls="@").replace('"@"', nested)
    with pytest.raises(RequestError, match="row 1, column total_day_calls: expected a number"):
        handler.transform(serving_model, body, "application/json", None)
    deeper = body.replace(nested, f"[{nested}]")
    with pytest.raises(RequestError, match=f"more than {handler.MAX_JSON_DEPTH} levels deep"):
        handler.transform(serving_model, deeper, "application/json", None)


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


# Text full of what the nesting count must see through: brackets, quotes and backslashes
# (json.dumps escapes the last two, and writes anything past ASCII as \uXXXX).
_TRICKY_TEXT = st.text(alphabet='[]{}"\\:,é ab', max_size=8)
_JSON_VALUES = st.recursive(
    st.none() | st.integers() | _TRICKY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TRICKY_TEXT, inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    value=_JSON_VALUES,
    wrappers=st.lists(st.sampled_from(["list", "dict"]), max_size=20),
    key=st.sampled_from(["records", "instances"]),
)
def test_json_nesting_is_counted_outside_strings_exactly(
    value: object, wrappers: list[str], key: str
) -> None:
    # Wrapped to any depth in lists and objects whose strings hold brackets (a closing one
    # counted as the body's hides a level), as a cell of a request of either shape.
    for wrapper in wrappers:
        value = ["]}", value] if wrapper == "list" else {'"}]\\': value}
    document = {"records": [{"state": value}]} if key == "records" else {"instances": [[value]]}
    body = json.dumps(document)

    try:
        handler.parse_input(body, "application/json")
        refused = ""
    except RequestError as error:
        refused = error.message

    too_deep = "levels deep" in refused
    assert too_deep == (_depth(document) > handler.MAX_JSON_DEPTH), (body, refused)


@pytest.fixture
def no_int_digit_limit() -> Iterator[None]:
    before = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)  # as PYTHONINTMAXSTRDIGITS=0 would leave it
    try:
        yield
    finally:
        sys.set_int_max_str_digits(before)


@pytest.mark.usefixtures("no_int_digit_limit")
def test_json_integers_stay_bounded_where_python_does_not_bound_them(
    serving_model: handler.ServingModel, rows: pd.DataFrame
) -> None:
    body = _one_record_with(rows, total_day_calls="@").replace('"@"', "9" * 200_000)
    with pytest.raises(RequestError, match="a JSON integer longer than 4300 digits") as caught:
        handler.transform(serving_model, body, "application/json", None)
    assert caught.value.status_code == 400
    good = _one_record_with(rows)
    assert handler.transform(serving_model, good, "application/json", None)


def test_a_quoted_comma_is_part_of_one_csv_value(
    serving_model: handler.ServingModel, rows: pd.DataFrame
) -> None:
    frame = rows.iloc[:2].astype({"state": str}).copy()
    frame["state"] = ["K,S", "multi\nline"]
    body = frame.to_csv(index=False, header=False)

    response, _ = handler.transform(serving_model, body, "text/csv", None)

    expected = serving_model.pipeline.predict_proba(frame)[:, 1]
    got = [p["probabilities"]["yes"] for p in json.loads(response)["predictions"]]
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_blank_lines_before_and_after_a_header_are_skipped_as_pandas_skips_them(
    serving_model: handler.ServingModel, rows: pd.DataFrame
) -> None:
    header, first = rows.iloc[:1].to_csv(index=False).splitlines()
    body = f"\n  \n{header}\r\n\t\n\n{first}\n"
    response, _ = handler.transform(serving_model, body, "text/csv", None)
    assert len(json.loads(response)["predictions"]) == 1


def test_object_arrays_are_refused_without_unpickling(serving_model: handler.ServingModel) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([[object()]], dtype=object), allow_pickle=True)
    with pytest.raises(RequestError, match="refuses") as caught:
        handler.parse_input(buffer.getvalue(), "application/x-npy")
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
