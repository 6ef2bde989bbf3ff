"""False alarms and detection of the monitors, on unchanged and on shifted windows.

Run with ``.venv/bin/python -m benchmarks.false_alarms``. The reference distribution is the
shipped churn data; the baseline is built from it as training builds one. A window is a
seeded draw of rows from that same data, written as real capture records (one row per
record, rotating CSV, JSON and base64 bodies), so an unchanged window is exactly the null
hypothesis: every alarm on it is false. Shifted windows change chosen features only
(``shift``): x1.3 on a usage column, or a share of 25-40% of the rows moved to a
category's rarest value. A monitor detects a shift when it names every shifted feature;
it is exact when it names nothing else.

Monitors live in a registry (``MONITORS``): a factory that takes the shared ``Setup`` and
returns a check of one window. Other monitors (model quality, attribution) plug in the same
way; ``Window.rows`` carries the label column for them.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from inference.capture import capture_record
from monitoring import drift
from monitoring.report import DriftReport
from training import dataset as ds

console = Console()
END = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ENDPOINT = "churn-prod"
WINDOWS = 30
NULL_SIZES = (200, 1_000, 5_000)
# 200 is beyond what the issue asks (1,000 and 5,000): it shows what small windows still see.
SHIFT_SIZES = (200, 1_000, 5_000)
# Every shiftable feature alone, then this many seeded draws of 3 and of 6 features.
MIXED_COUNTS = (3, 6)
MIXES_PER_COUNT = 8
USAGE_FACTOR = 1.3
REWEIGHT_RANGE = (0.25, 0.40)
# The usage columns a price or behaviour change moves: minutes, calls, charges per period.
USAGE_FEATURES = tuple(
    f"total_{period}_{kind}"
    for period in ("day", "eve", "night", "intl")
    for kind in ("minutes", "calls", "charge")
)
SHIFTABLE = USAGE_FEATURES + ds.CATEGORICAL_FEATURES


@dataclass(frozen=True)
class Shift:
    """What a shifted window changes: features scaled, and categories reweighted by share."""

    scaled: tuple[str, ...] = ()
    reweighted: tuple[tuple[str, float], ...] = ()

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(sorted((*self.scaled, *(name for name, _ in self.reweighted))))

    def describe(self) -> str:
        parts = [f"{name} x{USAGE_FACTOR:g}" for name in self.scaled]
        parts += [f"{name} {share:.0%} moved" for name, share in self.reweighted]
        return ", ".join(parts) or "unchanged"


@dataclass(frozen=True)
class Window:
    name: str
    rows: pd.DataFrame  # feature columns and the label, one capture record per row
    shift: Shift = field(default_factory=Shift)

    @property
    def size(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class Verdict:
    flagged: bool
    named: tuple[str, ...]  # features (or metrics) the monitor blames; () when unflagged


@dataclass(frozen=True)
class Setup:
    """What every monitor may use: the reference data, its baseline and a scratch folder."""

    data: pd.DataFrame
    baseline: Path
    scratch: Path


Check = Callable[[Window], Verdict]
MONITORS: dict[str, Callable[[Setup], Check]] = {}


def monitor(name: str) -> Callable[[Callable[[Setup], Check]], Callable[[Setup], Check]]:
    def register(factory: Callable[[Setup], Check]) -> Callable[[Setup], Check]:
        MONITORS[name] = factory
        return factory

    return register


# --- windows ----------------------------------------------------------------------------


def reference() -> pd.DataFrame:
    return ds.load_shipped().loc[:, list(ds.COLUMNS)]


def draw(data: pd.DataFrame, size: int, rng: np.random.Generator) -> pd.DataFrame:
    """``size`` rows drawn with replacement: a sample of the baseline's own distribution."""
    return data.iloc[rng.integers(0, len(data), size=size)].reset_index(drop=True)


def shift(
    rows: pd.DataFrame, change: Shift, data: pd.DataFrame, rng: np.random.Generator
) -> pd.DataFrame:
    """The rows with ``change`` applied; ``data`` tells each category's rarest value."""
    out = rows.copy()
    for name in change.scaled:
        scaled = out[name] * USAGE_FACTOR
        # Keep each column's grain: whole calls, minutes to 0.1, charges to the cent.
        digits = 0 if name in ds.INTEGER_FEATURES else 2 if name.endswith("_charge") else 1
        out[name] = scaled.round(digits)
    for name, share in change.reweighted:
        counts = data[name].astype(str).value_counts()
        rarest = min(counts.index, key=lambda value: (counts[value], value))
        values = out[name].astype(str).to_numpy(dtype=object)
        # A total-variation shift of ``share``: that share of all rows, taken from the
        # other categories, becomes the rarest one.
        others = np.flatnonzero(values != rarest)
        moved = rng.choice(others, size=min(len(others), round(share * len(out))), replace=False)
        values[moved] = rarest
        out[name] = values
    return out


def scenarios(seed: int = 18, per_count: int = MIXES_PER_COUNT) -> list[Shift]:
    """Each SHIFTABLE feature alone, then ``per_count`` seeded mixes of each MIXED_COUNTS."""
    rng = np.random.default_rng(seed)

    def change(chosen: list[str]) -> Shift:
        scaled = tuple(n for n in chosen if n in USAGE_FEATURES)
        reweighted = tuple(
            (n, round(float(rng.uniform(*REWEIGHT_RANGE)), 2))
            for n in chosen
            if n in ds.CATEGORICAL_FEATURES
        )
        return Shift(scaled, reweighted)

    out = [change([name]) for name in SHIFTABLE]
    for count in MIXED_COUNTS:
        for _ in range(per_count):
            out.append(change(sorted(rng.choice(SHIFTABLE, size=count, replace=False).tolist())))
    return out


def null_windows(data: pd.DataFrame, size: int, count: int, seed: int) -> Iterator[Window]:
    rng = np.random.default_rng([seed, size])
    for i in range(count):
        yield Window(f"unchanged {size} #{i}", draw(data, size, rng))


def shifted_windows(
    data: pd.DataFrame, size: int, changes: list[Shift], seed: int
) -> Iterator[Window]:
    rng = np.random.default_rng([seed, size, 1])
    for i, change in enumerate(changes):
        rows = shift(draw(data, size, rng), change, data, rng)
        yield Window(f"shifted {size} #{i}", rows, change)


# --- capture ----------------------------------------------------------------------------


def write_capture(rows: pd.DataFrame, root: Path) -> Path:
    """The rows as capture records under root/<endpoint>/AllTraffic/yyyy/mm/dd/hh/."""
    when = END - timedelta(minutes=30)
    folder = root / ENDPOINT / "AllTraffic" / when.strftime("%Y/%m/%d/%H")
    folder.mkdir(parents=True, exist_ok=True)
    features = rows.loc[:, list(ds.FEATURES)]
    lines = []
    for i, row in enumerate(features.itertuples(index=False)):
        values = list(row)
        csv = ",".join(map(str, values))
        kind = i % 4
        if kind == 1:
            body, content_type = json.dumps({"instances": [values]}), "application/json"
        elif kind == 2:
            record = {"records": [dict(zip(ds.FEATURES, values, strict=True))]}
            body, content_type = json.dumps(record), "application/json"
        else:
            body, content_type = csv, "text/csv"
        line = capture_record(
            request_body=body.encode(),
            request_content_type=content_type,
            response_body=b'{"predictions": [0.1]}',
            response_content_type="application/json",
            when=when,
            event_id=str(i),
        )
        if kind == 3:  # what an endpoint without CaptureContentTypeHeader stores
            endpoint_input = line["captureData"]["endpointInput"]
            endpoint_input["data"] = base64.b64encode(csv.encode()).decode()
            endpoint_input["encoding"] = "BASE64"
        lines.append(json.dumps(line, separators=(",", ":")))
    (folder / "part-0000.jsonl").write_text("\n".join(lines) + "\n")
    return root


# --- monitors ---------------------------------------------------------------------------


def drift_report(setup: Setup, window: Window) -> tuple[DriftReport, drift.Options]:
    """The drift job's report on the window, run with the job's default options."""
    with tempfile.TemporaryDirectory(dir=setup.scratch) as tmp:
        root = write_capture(window.rows, Path(tmp))
        options = drift.parse_options(
            ["--capture", str(root), "--baseline", str(setup.baseline), "--end", END.isoformat(),
             "--window-hours", "1", "--output", str(root / "out")]
        )  # fmt: skip
        report = drift.run(options, log=lambda _: None)
    assert report.counts.used == window.size, (report.counts, window.size)
    return report, options


@monitor("data drift")
def data_drift(setup: Setup) -> Check:
    """The drift job as it ships: its drifted features."""

    def check(window: Window) -> Verdict:
        report, _ = drift_report(setup, window)
        return Verdict(bool(report.drifted), tuple(sorted(report.drifted)))

    return check


@monitor("data drift, PSI only (old rule)")
def psi_only(setup: Setup) -> Check:
    """The rule before issue 18: a feature drifts when its PSI reaches the threshold."""

    def check(window: Window) -> Verdict:
        report, options = drift_report(setup, window)
        named = sorted(f.name for f in report.features if f.psi >= options.psi_threshold)
        return Verdict(bool(named), tuple(named))

    return check


# --- the measurement --------------------------------------------------------------------


@dataclass(frozen=True)
class NullResult:
    monitor: str
    size: int
    windows: int
    alarms: int
    blamed: dict[str, int]  # feature -> windows it was named in

    @property
    def rate(self) -> float:
        return self.alarms / self.windows


@dataclass(frozen=True)
class ShiftResult:
    monitor: str
    size: int
    shifted: tuple[str, ...]
    change: str
    named: tuple[str, ...]

    @property
    def caught(self) -> bool:
        return set(self.shifted) <= set(self.named)

    @property
    def exact(self) -> bool:
        return set(self.shifted) == set(self.named)


def measure_null(
    setup: Setup, name: str, check: Check, sizes: tuple[int, ...], windows: int, seed: int
) -> list[NullResult]:
    out = []
    for size in sizes:
        verdicts = [check(w) for w in null_windows(setup.data, size, windows, seed)]
        blamed: dict[str, int] = {}
        for verdict in verdicts:
            for feature in verdict.named:
                blamed[feature] = blamed.get(feature, 0) + 1
        alarms = sum(v.flagged for v in verdicts)
        out.append(NullResult(name, size, windows, alarms, dict(sorted(blamed.items()))))
    return out


def measure_shifts(
    setup: Setup, name: str, check: Check, sizes: tuple[int, ...], changes: list[Shift], seed: int
) -> list[ShiftResult]:
    out = []
    for size in sizes:
        for window in shifted_windows(setup.data, size, changes, seed):
            verdict = check(window)
            out.append(
                ShiftResult(
                    name, size, window.shift.features, window.shift.describe(), verdict.named
                )
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=WINDOWS, help="Unchanged windows per size.")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=list(NULL_SIZES),
        help="Records per unchanged window (default 200 1000 5000).",
    )
    parser.add_argument("--no-shifts", action="store_true", help="Unchanged windows only.")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument(
        "--monitor", action="append", choices=sorted(MONITORS), help="Default: every monitor."
    )
    parser.add_argument("--json", type=Path, default=Path("build/bench/false_alarms.json"))
    args = parser.parse_args(argv)
    if args.windows < 1 or min(args.sizes) < 1:
        parser.error("--windows and --sizes must be 1 or more")
    from training import baseline

    data = reference()
    changes = scenarios(args.seed)
    nulls: list[NullResult] = []
    shifts: list[ShiftResult] = []
    with tempfile.TemporaryDirectory(prefix="false-alarms-") as tmp:
        setup = Setup(data, Path(tmp) / "baseline.json", Path(tmp))
        setup.baseline.write_text(json.dumps(baseline.compute(data.loc[:, list(ds.FEATURES)])))
        for name in args.monitor or list(MONITORS):
            check = MONITORS[name](setup)
            nulls += measure_null(setup, name, check, tuple(args.sizes), args.windows, args.seed)
            if not args.no_shifts:
                shifts += measure_shifts(setup, name, check, SHIFT_SIZES, changes, args.seed)
    _print(nulls, shifts)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "false_alarms": [{**asdict(r), "rate": r.rate} for r in nulls],
                "shifts": [{**asdict(r), "caught": r.caught, "exact": r.exact} for r in shifts],
            },
            indent=2,
        )
        + "\n"
    )
    console.print(f"wrote {args.json}")
    return 0


def _print(nulls: list[NullResult], shifts: list[ShiftResult]) -> None:
    table = Table(title="False alarms on unchanged windows")
    for column in ("monitor", "records", "alarms", "rate", "features named (windows)"):
        table.add_column(
            column, justify="right" if column in ("records", "alarms", "rate") else "left"
        )
    for null in nulls:
        blamed = ", ".join(f"{k} ({v})" for k, v in null.blamed.items()) or "-"
        table.add_row(
            null.monitor, f"{null.size:,}", f"{null.alarms}/{null.windows}", f"{null.rate:.0%}",
            blamed,
        )  # fmt: skip
    console.print(table)
    if not shifts:
        return
    table = Table(title="Injected shifts (caught: every shifted feature named; exact: only those)")
    for column in ("monitor", "records", "features shifted", "caught", "exact", "wrongly named"):
        table.add_column(
            column, justify="left" if column in ("monitor", "wrongly named") else "right"
        )
    groups: dict[tuple[str, int, int], list[ShiftResult]] = {}
    for result in shifts:
        groups.setdefault((result.monitor, result.size, len(result.shifted)), []).append(result)
    for (name, size, count), results in groups.items():
        wrong: Counter[str] = Counter()
        for result in results:
            wrong.update(f"missed {n}" for n in set(result.shifted) - set(result.named))
            wrong.update(f"extra {n}" for n in set(result.named) - set(result.shifted))
        table.add_row(
            name, f"{size:,}", str(count),
            f"{sum(r.caught for r in results)}/{len(results)}",
            f"{sum(r.exact for r in results)}/{len(results)}",
            ", ".join(f"{k} ({v})" for k, v in sorted(wrong.items())) or "-",
        )  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    sys.exit(main())
