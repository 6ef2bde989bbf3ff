"""Running drift statistics: fixed-size state per feature, updated one chunk of rows at a time.

Numeric features keep counts over the baseline's histogram bins (for PSI) and a seeded
reservoir sample of rows (for KS); categorical features keep category counts (for PSI and a
chi-square test). Memory does not grow with the number of records.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats  # type: ignore[import-untyped]

from monitoring.baseline import Baseline, CategoricalBaseline, NumericBaseline

# Stands in for an empty bin's share, so PSI stays finite (the usual choice in practice).
EPSILON = 1e-4
RESERVOIR_SIZE = 10_000
SEED = 20_261_124
UNSEEN = "(unseen)"
# Distinct unseen categories remembered by name for the report; the rest are only counted.
MAX_UNSEEN_NAMES = 100


@dataclass(frozen=True)
class FeatureDrift:
    name: str
    kind: str  # "numeric" | "categorical"
    count: int
    psi: float
    drifted: bool
    test: str  # "ks" | "chi2"
    statistic: float
    p_value: float
    buckets: tuple[str, ...]
    expected: tuple[float, ...]  # baseline proportion per bucket
    observed: tuple[float, ...]  # live proportion per bucket
    unseen: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "count": self.count,
            "psi": _round(self.psi),
            "drifted": self.drifted,
            "test": self.test,
            "statistic": _round(self.statistic),
            "p_value": _round(self.p_value),
            "buckets": [
                {"bucket": b, "expected": _round(e), "observed": _round(o)}
                for b, e, o in zip(self.buckets, self.expected, self.observed, strict=True)
            ],
            "unseen_categories": self.unseen,
        }


def psi(expected: np.ndarray, observed: np.ndarray) -> float:
    """Population stability index of two proportion vectors over the same buckets."""
    e = np.maximum(expected, EPSILON)
    o = np.maximum(observed, EPSILON)
    return float(np.sum((o - e) * np.log(o / e)))


class NumericState:
    def __init__(self, baseline: NumericBaseline) -> None:
        self.baseline = baseline
        self.inner_edges = np.asarray(baseline.edges[1:-1])
        self.counts = np.zeros(len(baseline.proportions), dtype=np.int64)

    def update(self, values: np.ndarray) -> None:
        # Same binning as training/baseline.py: open outer bins, right-closed inner edges.
        bins = np.searchsorted(self.inner_edges, values, side="right")
        self.counts += np.bincount(bins, minlength=len(self.counts))

    def result(
        self, sample: np.ndarray, threshold: float, rng: np.random.Generator
    ) -> FeatureDrift:
        total = int(self.counts.sum())
        expected = np.asarray(self.baseline.proportions)
        observed = self.counts / total
        value = psi(expected, observed)
        values = [v for _, v in self.baseline.quantiles]
        if len(set(values)) == len(values):
            test = "ks"
            statistic, p_value = ks_against_quantiles(sample, self.baseline.quantiles, rng)
        else:
            # Tied quantiles mean atoms (e.g. 72% of customers have 0 voice-mail messages)
            # whose size the 11 quantiles cannot tell, so no CDF built from them is right
            # and KS would flag every sample. The histogram's counts are exact: test those.
            test = "chi2"
            statistic, p_value = chi_square(self.counts, expected)
        edges = self.baseline.edges
        buckets = tuple(_bin_label(i, edges) for i in range(len(self.baseline.proportions)))
        return FeatureDrift(
            self.baseline.name, "numeric", total, value, value >= threshold, test,
            statistic, p_value, buckets, tuple(expected), tuple(observed), {},
        )  # fmt: skip


def _bin_label(i: int, edges: tuple[float, ...]) -> str:
    low = "-inf" if i == 0 else f"{edges[i]:g}"
    high = "inf" if i == len(edges) - 2 else f"{edges[i + 1]:g}"
    return f"({low}, {high}]"


def ks_against_quantiles(
    sample: np.ndarray, quantiles: tuple[tuple[float, float], ...], rng: np.random.Generator
) -> tuple[float, float]:
    """One-sample KS test of ``sample`` against the CDF the baseline quantiles describe.

    The CDF is linear between the quantile knots. Integer-valued features (calls, messages)
    have ties that a continuous KS test would read as drift, so both sides are made
    continuous first: each integer k is spread uniformly over [k - 0.5, k + 0.5) (a seeded
    jitter) and a quantile shared by several probabilities becomes a linear ramp over that
    interval instead of a jump. With 11 knots the test is approximate; PSI decides drift.
    """
    if len(sample) == 0:
        return math.nan, math.nan
    probs = np.array([p for p, _ in quantiles])
    values = np.array([v for _, v in quantiles])
    discrete = bool(np.all(values == np.round(values)) and np.all(sample == np.round(sample)))
    if discrete:
        sample = sample + rng.uniform(-0.5, 0.5, size=len(sample))
        knots_x, knots_p = _integer_knots(values, probs)
    else:
        knots_x, knots_p = values, probs
    if np.ptp(knots_x) == 0:  # a constant baseline: any spread at all is a change
        return (0.0, 1.0) if np.all(sample == knots_x[0]) else (1.0, 0.0)
    # np.interp needs ascending x; where knots share an x keep the step's upper value.
    knots_p = np.maximum.accumulate(knots_p)

    def cdf(x: np.ndarray) -> np.ndarray:
        return np.asarray(np.interp(x, knots_x, knots_p, left=0.0, right=1.0))

    result = stats.ks_1samp(sample, cdf)
    return float(result.statistic), float(result.pvalue)


def _integer_knots(values: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CDF knots of an integer feature spread over half-integers (see ks_against_quantiles)."""
    low, high = values.min(), values.max()
    xs: list[float] = []
    ps: list[float] = []
    for v in np.unique(values):
        at = probs[values == v]
        below, above = (
            (0.0 if v == low else float(at.min())),
            (1.0 if v == high else float(at.max())),
        )
        if below < above:  # the value carries visible mass: a ramp over its unit interval
            xs += [float(v) - 0.5, float(v) + 0.5]
            ps += [below, above]
        else:
            xs.append(float(v))
            ps.append(below)
    return np.array(xs), np.array(ps)


def chi_square(counts: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    """Chi-square goodness of fit of bucket counts to the baseline's proportions."""
    # Expected counts must be positive: smooth with the epsilon PSI uses, so an unseen
    # category weighs heavily instead of dividing by zero.
    smoothed = np.maximum(expected, EPSILON)
    smoothed = smoothed / smoothed.sum()
    result = stats.chisquare(counts, smoothed * counts.sum())
    return float(result.statistic), float(result.pvalue)


class CategoricalState:
    def __init__(self, baseline: CategoricalBaseline) -> None:
        self.baseline = baseline
        self.counts: Counter[str] = Counter()

    def update(self, values: list[str]) -> None:
        self.counts.update(values)

    def result(self, threshold: float) -> FeatureDrift:
        known = sorted(self.baseline.frequencies)
        unseen = {k: v for k, v in self.counts.items() if k not in self.baseline.frequencies}
        total = sum(self.counts.values())
        buckets = [*known, UNSEEN]
        expected = np.array([self.baseline.frequencies[k] for k in known] + [0.0])
        observed_counts = np.array([self.counts.get(k, 0) for k in known] + [sum(unseen.values())])
        observed = observed_counts / total
        value = psi(expected, observed)
        statistic, p_value = chi_square(observed_counts, expected)
        named = dict(Counter(unseen).most_common(MAX_UNSEEN_NAMES))
        return FeatureDrift(
            self.baseline.name, "categorical", total, value, value >= threshold, "chi2",
            statistic, p_value, tuple(buckets), tuple(expected), tuple(observed),
            named,
        )  # fmt: skip


class Reservoir:
    """A uniform sample of up to ``size`` rows of the stream (Algorithm R, vectorised).

    Row i (0-based, over the whole stream) replaces slot j ~ U{0..i} when j < size. Within a
    chunk numpy's fancy assignment keeps the last write to a slot, which is exactly the
    sequential algorithm's outcome.
    """

    def __init__(self, width: int, size: int, rng: np.random.Generator) -> None:
        self.sample = np.empty((size, width))
        self.size, self.seen, self.rng = size, 0, rng

    def update(self, rows: np.ndarray) -> None:
        n = len(rows)
        fill = max(0, min(n, self.size - self.seen))
        if fill:
            self.sample[self.seen : self.seen + fill] = rows[:fill]
        if fill < n:
            positions = np.arange(self.seen + fill, self.seen + n)
            slots = (self.rng.random(len(positions)) * (positions + 1)).astype(np.int64)
            keep = slots < self.size
            self.sample[slots[keep]] = rows[fill:][keep]
        self.seen += n

    def values(self) -> np.ndarray:
        return self.sample[: min(self.seen, self.size)]


class DriftState:
    """All features' running state for one job."""

    def __init__(self, baseline: Baseline, reservoir_size: int = RESERVOIR_SIZE) -> None:
        self.rng = np.random.default_rng(SEED)
        self.numeric = [NumericState(f) for f in baseline.numeric]
        self.categorical = [CategoricalState(f) for f in baseline.categorical]
        self.reservoir = Reservoir(len(self.numeric), reservoir_size, self.rng)
        self.rows = 0

    def update(self, numeric: np.ndarray, categorical: list[list[str]]) -> None:
        """``numeric``: rows x numeric features; ``categorical``: one value list per feature."""
        if len(numeric) == 0:
            return
        for column, state in enumerate(self.numeric):
            state.update(numeric[:, column])
        for values, cat_state in zip(categorical, self.categorical, strict=True):
            cat_state.update(values)
        self.reservoir.update(numeric)
        self.rows += len(numeric)

    def results(self, psi_threshold: float) -> list[FeatureDrift]:
        if self.rows == 0:
            return []
        sample = self.reservoir.values()
        out = [
            state.result(sample[:, i], psi_threshold, self.rng)
            for i, state in enumerate(self.numeric)
        ]
        out += [state.result(psi_threshold) for state in self.categorical]
        return out


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 6)
