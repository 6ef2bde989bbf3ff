"""The data contract: a pandera schema every raw file must satisfy before training.

Validation is lazy: all failing columns and checks are collected into one report, so a
data producer fixes everything in one round instead of one error at a time.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from training import dataset as ds
from training.bootstrap import ensure_container_packages

# pandera is not in SageMaker's scikit-learn image: install it from the code bundle's wheels
# before importing it (a no-op where it is installed). Here rather than in the entry points,
# because they import DataValidationError from this module before doing anything else.
ensure_container_packages()
import pandera.pandas as pa  # noqa: E402
from pandera.errors import SchemaError, SchemaErrors  # noqa: E402

# The 50 states and DC, as the dataset codes them.
US_STATES = (
    "AK", "AL", "AR", "AZ", "CA", "CO", "CT", "DC", "DE", "FL", "GA", "HI", "IA", "ID", "IL",
    "IN", "KS", "KY", "LA", "MA", "MD", "ME", "MI", "MN", "MO", "MS", "MT", "NC", "ND", "NE",
    "NH", "NJ", "NM", "NV", "NY", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT",
    "VA", "VT", "WA", "WI", "WV", "WY",
)  # fmt: skip
AREA_CODES = ("area_code_408", "area_code_415", "area_code_510")
YES_NO = ("yes", "no")

# Physical bounds with headroom: wide enough for real drift (which monitoring should see),
# narrow enough to reject units mix-ups, sign errors and sentinel values like -1 or 99999.
RANGES: dict[str, tuple[float, float]] = {
    "account_length": (0, 1000),
    "number_vmail_messages": (0, 500),
    "total_day_minutes": (0, 720),
    "total_day_calls": (0, 500),
    "total_day_charge": (0, 200),
    "total_eve_minutes": (0, 720),
    "total_eve_calls": (0, 500),
    "total_eve_charge": (0, 200),
    "total_night_minutes": (0, 720),
    "total_night_calls": (0, 500),
    "total_night_charge": (0, 200),
    "total_intl_minutes": (0, 300),
    "total_intl_calls": (0, 100),
    "total_intl_charge": (0, 100),
    "number_customer_service_calls": (0, 50),
}
CATEGORIES: dict[str, tuple[str, ...]] = {
    "state": US_STATES,
    "area_code": AREA_CODES,
    "international_plan": YES_NO,
    "voice_mail_plan": YES_NO,
    ds.TARGET: (ds.POSITIVE_LABEL, ds.NEGATIVE_LABEL),
}


@dataclass(frozen=True)
class Limits:
    min_rows: int = 500
    max_rows: int = 5_000_000
    max_duplicate_fraction: float = 0.01


def schema(limits: Limits = Limits()) -> pa.DataFrameSchema:
    columns: dict[str, pa.Column] = {}
    for name, (low, high) in RANGES.items():
        integer = name in ds.INTEGER_FEATURES
        columns[name] = pa.Column(
            "int64" if integer else "float64",
            pa.Check.in_range(low, high),
            nullable=False,
            # Floats may arrive as integers (e.g. 10 minutes); ints must not be floats,
            # because coercing 1.5 calls to 1 would hide a broken producer.
            coerce=not integer,
        )
    for name, allowed in CATEGORIES.items():
        columns[name] = pa.Column(str, pa.Check.isin(list(allowed)), nullable=False)
    return pa.DataFrameSchema(
        {name: columns[name] for name in ds.COLUMNS},
        checks=[
            # pandera reports frame-wide checks by their error text, so it leads with a name.
            pa.Check(
                lambda df: limits.min_rows <= len(df) <= limits.max_rows,
                name="row_count",
                error=f"row_count: between {limits.min_rows} and {limits.max_rows} rows",
            ),
            pa.Check(
                lambda df: len(df) == 0 or df.duplicated().mean() <= limits.max_duplicate_fraction,
                name="duplicate_rows",
                error=f"duplicate_rows: at most {limits.max_duplicate_fraction:.0%} of rows",
            ),
        ],
        strict=True,
        ordered=False,
        name="churn_raw_v1",
    )


@dataclass(frozen=True)
class Failure:
    column: str
    check: str
    failing_values: int
    examples: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ValidationReport:
    rows: int
    failures: list[Failure]

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "ok": self.ok, "failures": [asdict(f) for f in self.failures]}

    def to_text(self) -> str:
        if self.ok:
            return f"data contract satisfied ({self.rows} rows)"
        lines = [f"data contract violated ({self.rows} rows, {len(self.failures)} problems):"]
        for f in self.failures:
            shown = f" e.g. {', '.join(f.examples)}" if f.examples else ""
            lines.append(f"  - {f.column}: {f.check} failed for {f.failing_values} value(s){shown}")
        return "\n".join(lines)


class DataValidationError(Exception):
    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.to_text())
        self.report = report


def read_csv(data: bytes) -> pd.DataFrame:
    """Parse raw CSV bytes; unreadable files become a report, not a pandas traceback."""
    text = data.decode("utf-8", errors="replace")
    if not text.strip():
        raise DataValidationError(
            ValidationReport(0, [Failure("<file>", "not_empty", 1, ["the file is empty"])])
        )
    header = text.splitlines()[0]
    delimiter = _sniff_delimiter(header)
    if delimiter != ",":
        raise DataValidationError(
            ValidationReport(
                0,
                [
                    Failure(
                        "<file>", "delimiter", 1, [f"header is separated by {delimiter!r}, not ','"]
                    )
                ],
            )
        )
    try:
        return pd.read_csv(io.StringIO(text), dtype=dict.fromkeys(CATEGORIES, str))
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataValidationError(
            ValidationReport(0, [Failure("<file>", "parse_csv", 1, [str(exc).strip()])])
        ) from None


def _sniff_delimiter(header: str) -> str:
    try:
        return csv.Sniffer().sniff(header, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def validate(
    frame: pd.DataFrame, limits: Limits = Limits()
) -> tuple[pd.DataFrame, ValidationReport]:
    """The frame as the contract coerces it, and a report of every failing column and check."""
    try:
        validated = schema(limits).validate(frame, lazy=True)
    except SchemaErrors as exc:
        return frame, ValidationReport(len(frame), _failures(exc.failure_cases))
    except SchemaError as exc:  # raised instead of SchemaErrors for some frame-wide problems
        return frame, ValidationReport(len(frame), [Failure("<frame>", str(exc.check), 1, [])])
    return validated, ValidationReport(len(validated), [])


def require_valid(frame: pd.DataFrame, limits: Limits = Limits()) -> pd.DataFrame:
    validated, report = validate(frame, limits)
    if not report.ok:
        raise DataValidationError(report)
    return validated


# Checks about which columns exist; pandera reports the column name as the failure case.
_PRESENCE_CHECKS = ("column_in_dataframe", "column_in_schema")


def _failures(cases: pd.DataFrame) -> list[Failure]:
    failures = []
    presence = cases["check"].isin(_PRESENCE_CHECKS)
    frame_wide = cases["schema_context"].eq("DataFrameSchema") & ~presence
    column = cases["column"].astype(object).where(~frame_wide, "<frame>")
    cases = cases.assign(
        column=column.where(~presence, cases["failure_case"]).fillna("<frame>").astype(str),
        check=cases["check"].astype(str),
    )
    for (column, check), group in cases.groupby(["column", "check"], sort=True):
        failures.append(Failure(str(column), _readable(str(check)), len(group), _examples(group)))
    return failures


def _examples(group: pd.DataFrame, limit: int = 3) -> list[str]:
    """Offending values, or the rows where a value is missing."""
    values: list[str] = group["failure_case"].dropna().astype(str).unique().tolist()
    if values:
        return values[:limit]
    rows = group["index"].dropna().astype(int).tolist()
    return [f"row {row}" for row in rows[:limit]]


def _readable(check: str) -> str:
    """Tidy pandera's check names: presence checks, and isin() with long category lists."""
    renamed = {"column_in_dataframe": "column_present", "column_in_schema": "column_expected"}
    if check in renamed:
        return renamed[check]
    match = re.fullmatch(r"isin\(\[(.*)\]\)", check)
    if match:
        allowed = [v.strip() for v in match.group(1).split(",")]
        if len(allowed) > 6:
            return f"isin({len(allowed)} allowed values, e.g. {', '.join(allowed[:3])})"
    return check


def report_json(report: ValidationReport) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n"
