"""Small windows raise no false alarm, and injected shifts are still caught and named.

Before issue 18 the drift job flagged ``state`` (51 categories) in nearly every unchanged
window of 200 records: its PSI is biased upward on small samples. A feature now drifts only
when its PSI reaches the threshold and its chi-square test, corrected for testing every
feature, rejects. The statistics behind that rule are checked here on inputs small enough
to compute by hand.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats  # type: ignore[import-untyped]

from benchmarks import false_alarms as bench
from monitoring import drift, metrics
from monitoring.baseline import Baseline, CategoricalBaseline
from monitoring.capture import Counts
from monitoring.report import DriftReport
from monitoring.statistics import (
    EPSILON,
    DriftRule,
    DriftState,
    FeatureDrift,
    adjust,
    chi_square,
    expected_psi,
    pool,
)
from training import baseline as baselines
from training import dataset as ds

ALPHA = 0.01
WINDOWS = 30


def chi2_sf_1(x: float) -> float:
    """Survival function of chi-square with 1 degree of freedom: erfc(sqrt(x / 2))."""
    return math.erfc(math.sqrt(x / 2))


# --- the statistics, by hand --------------------------------------------------------------


def test_pooling_merges_the_least_expected_buckets_until_each_expects_enough() -> None:
    shares = np.array([0.02, 0.03, 0.05, 0.90])
    # 100 rows expect 2, 3, 5 and 90: the first two only reach 5 together.
    assert pool(shares, 100, 5) == [[0, 1], [2], [3]]
    # 50 rows expect 1, 1.5, 2.5 and 45: the three small ones make 5.
    assert pool(shares, 50, 5) == [[0, 1, 2], [3]]
    # An unseen-category bucket (share 0) always joins the rarest known ones.
    assert pool(np.array([0.1, 0.9, 0.0]), 100, 5) == [[2, 0], [1]]
    # Whatever is left too small at the end joins the last group.
    assert pool(np.array([0.5, 0.5]), 6, 5) == [[0, 1]]


def test_chi_square_goodness_of_fit_by_hand() -> None:
    # 30 and 10 where 20 and 20 are expected: (10^2 + 10^2) / 20 = 10 on 1 df.
    result = chi_square(np.array([30, 10]), np.array([0.5, 0.5]))
    assert result.statistic == pytest.approx(10.0)
    assert result.p_value == pytest.approx(chi2_sf_1(10.0))  # 0.00157
    assert result.buckets == 2


def test_chi_square_pools_before_testing() -> None:
    shares = np.array([0.02, 0.03, 0.05, 0.90])
    # Groups expect 5, 5, 90 and hold 10, 5, 85: 25/5 + 0 + 25/90 on 2 df, whose
    # survival function is exp(-x / 2).
    result = chi_square(np.array([10, 0, 5, 85]), shares)
    expected = 25 / 5 + 25 / 90
    assert result.statistic == pytest.approx(expected) and result.buckets == 3
    assert result.p_value == pytest.approx(math.exp(-expected / 2))
    # Unpooled, bucket 1's 0 against 3 expected would count too; pooled it cannot.
    assert chi_square(np.array([4, 1, 5, 90]), shares).statistic == pytest.approx(0.0)


def test_too_few_rows_to_test_is_no_evidence() -> None:
    result = chi_square(np.array([6, 0]), np.array([0.5, 0.5]))  # 3 expected per bucket
    assert (result.statistic, result.p_value, result.buckets) == (0.0, 1.0, 1)


def test_chi_square_against_a_baseline_sample_is_a_two_sample_test() -> None:
    # Baseline 100 rows split 50/50, live 30/10. Pearson's 2x2 statistic is
    # N (ad - bc)^2 / (row and column totals) = 140 (50*10 - 50*30)^2 / (100*40*80*60).
    result = chi_square(np.array([30, 10]), np.array([0.5, 0.5]), reference_rows=100)
    statistic = 140 * (50 * 10 - 50 * 30) ** 2 / (100 * 40 * 80 * 60)
    assert statistic == pytest.approx(7.2917, abs=1e-4)
    assert result.statistic == pytest.approx(statistic)
    assert result.p_value == pytest.approx(chi2_sf_1(statistic))
    # The baseline's own sampling error weakens the evidence against it.
    assert result.p_value > chi_square(np.array([30, 10]), np.array([0.5, 0.5])).p_value


def test_holm_and_bonferroni_by_hand() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 -> 0.02, 0.03, 0.06, 0.04,
    # made non-decreasing -> 0.02, 0.03, 0.06, 0.06.
    assert adjust(p, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert adjust(p, "bonferroni") == pytest.approx([0.04, 0.16, 0.12, 0.02])
    assert adjust(p, "none") == p
    assert adjust([0.6, 0.5], "bonferroni") == [1.0, 1.0]  # capped at 1
    # A feature without a test is not counted among the m tests.
    holm = adjust([0.01, math.nan], "holm")
    assert holm[0] == pytest.approx(0.01) and math.isnan(holm[1])
    with pytest.raises(ValueError, match="unknown correction 'fdr'"):
        adjust(p, "fdr")


def test_expected_psi_of_an_unchanged_window_by_hand() -> None:
    shares = np.array([0.5, 0.5])
    # One row lands all in one bucket: PSI = 0.5 ln 2 + (0.5 - eps) ln(0.5 / eps), either way.
    one_row = 0.5 * math.log(2) + (0.5 - EPSILON) * math.log(0.5 / EPSILON)
    assert expected_psi(shares, 1) == pytest.approx(one_row)
    # Two rows: 2/0 and 0/2 (a quarter each) score that, 1/1 (half the time) scores 0.
    assert expected_psi(shares, 2) == pytest.approx(one_row / 2)
    # Buckets the baseline never or always sees add nothing: their share is certain.
    assert expected_psi(np.array([0.5, 0.5, 0.0]), 2) == pytest.approx(one_row / 2)
    assert expected_psi(np.array([1.0]), 7) == 0.0
    # Large windows: about (k - 1) / n, chi-square's mean over n.
    assert expected_psi(np.full(10, 0.1), 10_000) == pytest.approx(9 / 10_000, rel=0.02)


def _two_feature_state(rows: list[tuple[str, str]]) -> DriftState:
    frequencies = {"a": 0.5, "b": 0.5}
    base = Baseline(
        source="test",
        rows=0,  # proportions taken as exact: the goodness-of-fit test
        feature_order=("c", "d"),
        features={
            "c": CategoricalBaseline("c", frequencies),
            "d": CategoricalBaseline("d", frequencies),
        },
    )
    state = DriftState(base)
    state.update(np.empty((len(rows), 0)), [[c for c, _ in rows], [d for _, d in rows]])
    return state


def test_the_rule_needs_both_a_large_psi_and_a_corrected_significant_test() -> None:
    # c: 30 a / 10 b (PSI 0.25 ln 1.5 + 0.25 ln 2 = 0.2747, p 0.00157); d: 20 / 20.
    rows = [("a", "a")] * 20 + [("a", "b")] * 10 + [("b", "b")] * 10
    c, d = _two_feature_state(rows).results(DriftRule(0.2, ALPHA, "holm"))
    assert c.psi == pytest.approx(0.25 * math.log(1.5) + 0.25 * math.log(2))
    assert c.p_value == pytest.approx(chi2_sf_1(10.0))
    assert c.p_value_adjusted == pytest.approx(2 * chi2_sf_1(10.0))  # Holm, m = 2
    assert (c.significant, c.drifted) == (True, True)
    assert (d.psi, d.p_value, d.significant, d.drifted) == (0.0, 1.0, False, False)
    # Significant on its own at 0.002, but not once corrected for the two tests.
    c, _ = _two_feature_state(rows).results(DriftRule(0.2, 0.002, "holm"))
    assert c.p_value < 0.002 < c.p_value_adjusted and not c.drifted
    assert _two_feature_state(rows).results(DriftRule(0.2, 0.002, "none"))[0].drifted
    # Above the PSI threshold is not enough either: PSI 0.2747 against 0.3.
    assert not _two_feature_state(rows).results(DriftRule(0.3, ALPHA, "holm"))[0].drifted


def test_four_rows_all_in_one_category_score_a_huge_psi_but_do_not_drift() -> None:
    (c, _) = _two_feature_state([("a", "a"), ("a", "b")] * 2).results(DriftRule())
    all_in_a = 0.5 * math.log(2) + (0.5 - EPSILON) * math.log(0.5 / EPSILON)
    assert c.psi == pytest.approx(all_in_a)  # 4.60: an empty bucket floored at EPSILON
    # Four rows from the baseline itself: 4/0 or 0/4 one time in 8, 3/1 or 1/3 half the time.
    three_one = 0.25 * math.log(1.5) + 0.25 * math.log(2)
    assert c.psi_expected == pytest.approx(all_in_a / 8 + three_one / 2)  # 0.71
    assert (c.test_buckets, c.p_value, c.drifted) == (1, 1.0, False)


def test_the_drift_score_counts_only_features_whose_test_is_significant() -> None:
    def feature(name: str, psi: float, significant: bool) -> FeatureDrift:
        return FeatureDrift(
            name, "categorical", 200, psi, False, "chi2", 1.0, 0.5, ("a",), (1.0,), (1.0,), {},
            significant=significant,
        )  # fmt: skip

    moment = datetime(2026, 11, 24, tzinfo=UTC)
    report = DriftReport(
        capture="c", baseline="b", endpoint="e", start=moment, end=moment, psi_threshold=0.2,
        ks_alpha=ALPHA, counts=Counts(lines=200, in_window=200, used=200, rows=200),
        features=[feature("state", 0.37, False), feature("total_day_minutes", 0.05, True)],
        files=1, folders=1, seconds=0.1,
    )  # fmt: skip
    assert (report.drift_score, report.max_psi, report.drifted) == (0.05, 0.37, [])
    published = {d["MetricName"]: d["Value"] for d in metrics.datums(report, "e", moment)}
    assert published["DriftScore"] == 0.05  # the alarm's metric stays below 0.2
    nothing = replace(report, features=[feature("state", 0.37, False)])
    assert nothing.drift_score == 0.0
    empty = replace(report, features=[])
    assert (empty.drift_score, empty.max_psi) == (None, None)


# --- the job on real capture records ---------------------------------------------------------


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> bench.Setup:
    """The shipped churn data and its baseline: unchanged windows are drawn from it."""
    root = tmp_path_factory.mktemp("small-windows")
    data = bench.reference()
    path = root / "baseline.json"
    path.write_text(json.dumps(baselines.compute(data.loc[:, list(ds.FEATURES)])))
    return bench.Setup(data, path, root)


def _report(setup: bench.Setup, rows: pd.DataFrame, tmp: Path, *extra: str) -> dict[str, Any]:
    bench.write_capture(rows, tmp / "capture")
    out = tmp / "out"
    code = drift.main(
        ["--capture", str(tmp / "capture"), "--baseline", str(setup.baseline), "--output",
         str(out), "--end", bench.END.isoformat(), "--window-hours", "1", *extra],
    )  # fmt: skip
    assert code == 0
    report: dict[str, Any] = json.loads((out / "drift.json").read_text())
    return report


def test_unchanged_windows_of_200_records_raise_no_false_alarm(setup: bench.Setup) -> None:
    windows = bench.null_windows(setup.data, 200, WINDOWS, seed=1)
    reports = [bench.drift_report(setup, w)[0] for w in windows]
    alarms = sum(bool(r.drifted) for r in reports)
    # Holm keeps the chance of any false flag in a window at alpha at most, so the count
    # of alarms is at most Binomial(30, 0.01): 3 or more happens once in 300 runs.
    assert alarms <= stats.binom.ppf(0.999, WINDOWS, ALPHA)
    assert all(r.drift_score is not None and r.drift_score < 0.2 for r in reports if not r.drifted)
    # These are the windows that fooled the PSI-only rule: state's PSI reaches 0.2.
    fooled = [[f.name for f in r.features if f.psi >= 0.2] for r in reports]
    assert sum(names == ["state"] for names in fooled) >= 0.8 * WINDOWS


def test_every_injected_shift_is_caught_at_1000_records_and_only_it(setup: bench.Setup) -> None:
    check = bench.MONITORS["data drift"](setup)
    changes = bench.scenarios(seed=2)
    assert {len(c.features) for c in changes} == {1, 3, 6}
    assert set(bench.SHIFTABLE) <= {f for c in changes for f in c.features}
    for window in bench.shifted_windows(setup.data, 1_000, changes, seed=2):
        assert check(window).named == window.shift.features, window.shift.describe()


def test_a_small_unchanged_window_reports_the_rule_and_the_chance_level(
    setup: bench.Setup, tmp_path: Path
) -> None:
    rows = bench.draw(setup.data, 200, np.random.default_rng(5))
    report = _report(setup, rows, tmp_path)
    state = report["features"]["state"]
    assert state["psi"] >= 0.2 and not state["drifted"]  # the old false alarm
    assert 0.25 < state["psi_expected_unchanged"] < 0.45  # chance level at 200 rows
    assert 2 <= state["test_buckets"] < 52  # 51 states and (unseen), pooled
    assert state["p_value"] <= state["p_value_adjusted"] <= 1
    assert report["drifted_features"] == []
    assert report["max_psi"] == max(f["psi"] for f in report["features"].values())
    assert report["drift_score"] < 0.2
    assert report["thresholds"] == {
        "psi": 0.2, "ks_alpha": 0.01, "correction": "holm", "min_expected": 5.0,
    }  # fmt: skip
    assert "after Holm's correction" in report["rule"]
    page = (tmp_path / "out" / "drift.html").read_text()
    assert "PSI if unchanged" in page and "Holm" in page


def test_the_correction_and_pooling_are_options(setup: bench.Setup, tmp_path: Path) -> None:
    rows = bench.draw(setup.data, 200, np.random.default_rng(5))
    report = _report(setup, rows, tmp_path, "--correction", "none", "--min-expected", "20")
    features = report["features"].values()
    assert all(f["p_value_adjusted"] == f["p_value"] for f in features)
    assert report["thresholds"]["min_expected"] == 20.0
    # 200 rows at >= 20 expected per bucket: at most 10 buckets for state.
    assert report["features"]["state"]["test_buckets"] <= 10


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--min-expected", "0"], "--min-expected must be a positive number, got 0"),
        (["--min-expected", "nan"], "--min-expected must be a positive number, got nan"),
    ],
)
def test_bad_rule_options_exit_2_with_one_line(
    tmp_path: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert drift.main(["--capture", str(tmp_path), "--baseline", str(tmp_path), *extra]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"


def test_an_unknown_correction_is_refused_by_the_parser(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        drift.main(["--capture", str(tmp_path), "--baseline", str(tmp_path), "--correction", "x"])
    assert exit_.value.code == 2
    assert "invalid choice: 'x'" in capsys.readouterr().err
