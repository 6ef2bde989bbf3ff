"""The data contract rejects bad data before training, naming every failing column and check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from training import contract
from training import dataset as ds
from training.ingest import to_csv_bytes


@pytest.fixture(scope="module")
def good() -> pd.DataFrame:
    return ds.load_shipped()


def _csv(frame: pd.DataFrame) -> bytes:
    return to_csv_bytes(frame)


def _report(data: bytes) -> contract.ValidationReport:
    try:
        frame = contract.read_csv(data)
    except contract.DataValidationError as exc:
        return exc.report
    return contract.validate(frame)[1]


def _failed(report: contract.ValidationReport) -> set[tuple[str, str]]:
    return {(f.column, f.check) for f in report.failures}


def test_the_shipped_dataset_satisfies_the_contract(good: pd.DataFrame) -> None:
    report = _report(_csv(good))
    assert report.ok, report.to_text()
    assert report.rows == 5000


@dataclass(frozen=True)
class BadData:
    id: str
    corrupt: Callable[[pd.DataFrame], bytes]
    column: str
    check: str


def _edit(edit: Callable[[pd.DataFrame], None]) -> Callable[[pd.DataFrame], bytes]:
    def corrupt(frame: pd.DataFrame) -> bytes:
        copy = frame.copy()
        edit(copy)
        return _csv(copy)

    return corrupt


def _set_cell(
    column: str, value: object, rows: slice = slice(0, 3)
) -> Callable[[pd.DataFrame], bytes]:
    def edit(frame: pd.DataFrame) -> None:
        frame[column] = frame[column].astype(object)
        frame.loc[frame.index[rows], column] = value

    return _edit(edit)


BAD_DATA = [
    BadData("missing-column", lambda f: _csv(f.drop(columns=["total_day_minutes"])), "total_day_minutes", "column_present"),
    BadData("unexpected-column", _edit(lambda f: f.insert(0, "customer_ssn", "000-00-0000")), "customer_ssn", "column_expected"),
    BadData("text-in-integer-column", _set_cell("total_day_calls", "many"), "total_day_calls", "dtype('int64')"),
    BadData("fraction-in-integer-column", _set_cell("number_customer_service_calls", 1.5), "number_customer_service_calls", "dtype('int64')"),
    BadData("negative-minutes", _set_cell("total_eve_minutes", -12.5), "total_eve_minutes", "in_range(0, 720)"),
    BadData("sentinel-value", _set_cell("account_length", 99999), "account_length", "in_range(0, 1000)"),
    BadData("all-null-column", _set_cell("total_night_charge", np.nan, slice(None)), "total_night_charge", "not_nullable"),
    BadData("some-nulls", _set_cell("voice_mail_plan", np.nan), "voice_mail_plan", "not_nullable"),
    BadData("unknown-category", _set_cell("state", "XX"), "state", "isin(51 allowed values"),
    BadData("bad-label", _set_cell("churn", "maybe"), "churn", "isin(['yes', 'no'])"),
    BadData("duplicates-beyond-limit", lambda f: _csv(pd.concat([f, f.iloc[:200]], ignore_index=True)), "<frame>", "duplicate_rows: at most 1% of rows"),
    BadData("too-few-rows", lambda f: _csv(f.iloc[:100]), "<frame>", "row_count: between 500 and 5000000 rows"),
    BadData("empty-file", lambda f: b"", "<file>", "not_empty"),
    BadData("header-only", lambda f: _csv(f.iloc[:0]), "<frame>", "row_count: between 500 and 5000000 rows"),
    BadData("semicolon-delimiter", lambda f: f.to_csv(index=False, sep=";").encode(), "<file>", "delimiter"),
    BadData("ragged-rows", lambda f: _csv(f) + b"KS,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22\n", "<file>", "parse_csv"),
]  # fmt: skip


@pytest.mark.parametrize("bad", BAD_DATA, ids=lambda b: b.id)
def test_bad_data_is_rejected_with_a_report_naming_column_and_check(
    bad: BadData, good: pd.DataFrame
) -> None:
    report = _report(bad.corrupt(good))

    assert not report.ok
    matches = [f for f in report.failures if f.column == bad.column and bad.check in f.check]
    assert matches, report.to_text()
    assert matches[0].failing_values >= 1
    assert bad.column in report.to_text()


def test_one_report_lists_every_problem(good: pd.DataFrame) -> None:
    frame = good.copy()
    frame["state"] = frame["state"].astype(object)
    frame.loc[0, "state"] = "XX"
    frame.loc[1, "total_day_minutes"] = -1.0
    frame = frame.drop(columns=["area_code"])

    report = _report(_csv(frame))

    assert _failed(report) == {
        ("state", "isin(51 allowed values, e.g. 'AK', 'AL', 'AR')"),
        ("total_day_minutes", "in_range(0, 720)"),
        ("area_code", "column_present"),
    }
    state = next(f for f in report.failures if f.column == "state")
    assert state.examples == ["XX"]


def test_missing_values_are_reported_by_row(good: pd.DataFrame) -> None:
    frame = good.copy()
    frame["voice_mail_plan"] = frame["voice_mail_plan"].astype(object)
    frame.loc[[7, 11], "voice_mail_plan"] = None
    (failure,) = _report(_csv(frame)).failures
    assert (failure.column, failure.check) == ("voice_mail_plan", "not_nullable")
    assert failure.examples == ["row 7", "row 11"]


def test_require_valid_raises_with_the_report(good: pd.DataFrame) -> None:
    frame = good.copy()
    frame.loc[5, "total_intl_calls"] = -3
    with pytest.raises(contract.DataValidationError, match="total_intl_calls") as caught:
        contract.require_valid(frame)
    assert caught.value.report.to_dict()["ok"] is False


def test_floats_written_as_integers_are_accepted(good: pd.DataFrame) -> None:
    frame = good.copy()
    frame["total_intl_minutes"] = frame["total_intl_minutes"].round().astype(int)
    validated, report = contract.validate(contract.read_csv(_csv(frame)))
    assert report.ok, report.to_text()
    assert validated["total_intl_minutes"].dtype == np.float64
