"""Running drift statistics: fixed-size state per feature, updated one chunk of rows at a time.

Numeric features keep counts over the baseline's histogram bins, categorical features keep
category counts; PSI and a chi-square test both read those counts. Memory does not grow
with the number of records.

PSI alone over-reads small windows: an unchanged window of n rows over k buckets scores
about (k - 1) / n on average, more where buckets come out empty (0.35 for the 51 states
at 200 rows, against a threshold of 0.2; see ``expected_psi``). So a feature drifts only
when its PSI reaches the threshold *and* a test on the same buckets rejects "unchanged" at
alpha after a correction for testing every feature (``DriftRule``). The test compares the
live counts with the baseline's counts (a two-sample test: the baseline is itself a
sample), pooling sparse buckets until each expects ``min_expected`` live rows, so it stays
valid on small windows and on windows larger than the training data.

The state is counts only, so shards of a window merge exactly (``DriftState.to_summary``,
``from_summary``, ``merge``): the merged PSI, chi-square statistic and p-value are the single
pass's, bit for bit. A KS test would need a mergeable sketch, but it is no longer part of the
rule (issue 18 replaced it with the chi-square test on the same buckets), so none is kept.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import stats  # type: ignore[import-untyped]

from monitoring.baseline import Baseline, CategoricalBaseline, NumericBaseline

# Stands in for an empty bin's share, so PSI stays finite (the usual choice in practice).
EPSILON = 1e-4
UNSEEN = "(unseen)"
# Distinct unseen categories remembered by name for the report; the rest are only counted.
MAX_UNSEEN_NAMES = 100
CORRECTIONS = ("holm", "bonferroni", "none")
# Cochran's rule for the chi-square approximation: at least 5 expected rows per bucket.
MIN_EXPECTED = 5.0
# Binomial tail left out on each side when averaging PSI over a bucket's possible counts.
_TAIL = 1e-12


@dataclass(frozen=True)
class DriftRule:
    """When a feature drifts: PSI at the threshold and a test significant after correction."""

    psi_threshold: float = 0.2
    alpha: float = 0.01
    correction: str = "holm"  # over the features' p-values; one of CORRECTIONS
    min_expected: float = MIN_EXPECTED  # chi-square buckets are pooled up to this

    def describe(self) -> str:
        corrected = {
            "holm": "after Holm's correction over the features",
            "bonferroni": "after Bonferroni's correction over the features",
            "none": "with no correction for testing several features",
        }[self.correction]
        return (
            f"PSI >= {self.psi_threshold:g} and a chi-square test of the same buckets "
            f"(pooled to >= {self.min_expected:g} expected rows) rejects at {self.alpha:g} "
            f"{corrected}"
        )


@dataclass(frozen=True)
class Evidence:
    statistic: float
    p_value: float
    buckets: int  # buckets compared after pooling; below 2 there is no test (p = 1)


@dataclass(frozen=True)
class FeatureDrift:
    name: str
    kind: str  # "numeric" | "categorical"
    count: int
    psi: float
    drifted: bool
    test: str  # "chi2"
    statistic: float
    p_value: float
    buckets: tuple[str, ...]
    expected: tuple[float, ...]  # baseline proportion per bucket
    observed: tuple[float, ...]  # live proportion per bucket
    unseen: dict[str, int]
    # The defaults describe a feature judged by PSI alone, as before the test gate.
    p_value_adjusted: float = math.nan  # p_value after the correction over all features
    significant: bool = True  # p_value_adjusted <= alpha
    psi_expected: float = math.nan  # mean PSI of an unchanged window of ``count`` rows
    test_buckets: int = 0  # buckets the test compared after pooling

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "count": self.count,
            "psi": _round(self.psi),
            "psi_expected_unchanged": _round(self.psi_expected),
            "drifted": self.drifted,
            "test": self.test,
            "statistic": _round(self.statistic),
            "p_value": _round(self.p_value),
            "p_value_adjusted": _round(self.p_value_adjusted),
            "significant": self.significant,
            "test_buckets": self.test_buckets,
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


def expected_psi(expected: np.ndarray, rows: int) -> float:
    """Mean PSI of ``rows`` rows drawn from ``expected`` itself: what no change scores.

    PSI is a sum over buckets, so its mean is the sum of each bucket's mean, taken over
    that bucket's binomial count (exact up to a tail of 1e-12 on each side).
    """
    if rows <= 0:
        return math.nan
    shares = np.asarray(expected, dtype=np.float64)
    p = shares[(shares > 0) & (shares < 1)]  # other buckets' shares are certain: PSI 0
    if len(p) == 0:
        return 0.0
    low = stats.binom.ppf(_TAIL, rows, p).astype(np.int64)
    high = stats.binom.ppf(1 - _TAIL, rows, p).astype(np.int64)
    # Every bucket's likely counts side by side, each with its own share: one pmf call.
    k = np.concatenate([np.arange(a, b + 1) for a, b in zip(low, high, strict=True)])
    share = np.repeat(p, high - low + 1)
    o, e = np.maximum(k / rows, EPSILON), np.maximum(share, EPSILON)
    return float(np.sum(stats.binom.pmf(k, rows, share) * (o - e) * np.log(o / e)))


def pool(shares: np.ndarray, rows: int, min_expected: float) -> list[list[int]]:
    """Groups of bucket indices, each expecting at least ``min_expected`` of ``rows`` rows.

    Buckets are taken from the least expected up and merged until a group reaches the
    minimum, the usual way to keep a chi-square test valid; what is left at the end (all
    of it too small) joins the last group. Grouping reads the baseline's shares only, never
    the live counts, so it cannot be tuned by the data it tests.
    """
    groups: list[list[int]] = []
    current: list[int] = []
    mass = 0.0
    for i in np.argsort(shares, kind="stable"):
        current.append(int(i))
        mass += float(shares[i]) * rows
        if mass >= min_expected and mass > 0:
            groups.append(current)
            current, mass = [], 0.0
    if current:
        if groups:
            groups[-1] += current
        else:
            groups.append(current)
    return groups


def chi_square(
    counts: np.ndarray,
    expected: np.ndarray,
    min_expected: float = MIN_EXPECTED,
    reference_rows: int = 0,
) -> Evidence:
    """Chi-square test of live bucket counts against the baseline's proportions.

    Buckets expecting fewer than ``min_expected`` live rows are pooled first (``pool``):
    with 51 states and 200 rows each state expects 4, too few for the chi-square
    distribution to hold, and an unseen category (expected 0) cannot be divided by.
    With ``reference_rows`` (the baseline's row count) it is Pearson's test of homogeneity
    of the two samples, so the baseline's own sampling error is not read as drift; with 0
    the proportions are taken as exact (goodness of fit). Fewer than two groups: too few
    rows to test, no evidence, p = 1.
    """
    counts = np.asarray(counts, dtype=np.float64)
    shares = np.asarray(expected, dtype=np.float64)
    shares = shares / shares.sum()
    rows = int(counts.sum())
    groups = pool(shares, rows, min_expected)
    if len(groups) < 2:
        return Evidence(0.0, 1.0, len(groups))
    live = np.array([counts[g].sum() for g in groups])
    base = np.array([shares[g].sum() for g in groups])
    if reference_rows > 0:
        table = np.vstack([base * reference_rows, live])
        statistic, p_value, _, _ = stats.chi2_contingency(table, correction=False)
    else:
        statistic, p_value = stats.chisquare(live, base * rows)
    return Evidence(float(statistic), float(p_value), len(groups))


def adjust(p_values: list[float], correction: str) -> list[float]:
    """P-values adjusted for testing every feature (NaN stays NaN and is not counted).

    Holm's step-down: the i-th smallest of m p-values becomes (m - i + 1) p, made
    non-decreasing and capped at 1. Like Bonferroni's m p it keeps the chance of any
    false flag among the m features at alpha, and it rejects at least as much.
    """
    if correction not in CORRECTIONS:
        raise ValueError(f"unknown correction {correction!r}; use one of {CORRECTIONS}")
    finite = [i for i, p in enumerate(p_values) if not math.isnan(p)]
    m = len(finite)
    out = list(p_values)
    if correction == "bonferroni":
        for i in finite:
            out[i] = min(1.0, m * p_values[i])
    elif correction == "holm":
        running = 0.0
        for rank, i in enumerate(sorted(finite, key=lambda j: p_values[j])):
            running = max(running, min(1.0, (m - rank) * p_values[i]))
            out[i] = running
    return out


class NumericState:
    def __init__(self, baseline: NumericBaseline, reference_rows: int) -> None:
        self.baseline = baseline
        self.reference_rows = reference_rows
        self.inner_edges = np.asarray(baseline.edges[1:-1])
        self.counts = np.zeros(len(baseline.proportions), dtype=np.int64)

    def update(self, values: np.ndarray) -> None:
        # Same binning as training/baseline.py: open outer bins, right-closed inner edges.
        bins = np.searchsorted(self.inner_edges, values, side="right")
        self.counts += np.bincount(bins, minlength=len(self.counts))

    def result(self, min_expected: float) -> FeatureDrift:
        """The feature's PSI and raw test; DriftState.results decides whether it drifted."""
        total = int(self.counts.sum())
        expected = np.asarray(self.baseline.proportions)
        observed = self.counts / total
        value = psi(expected, observed)
        # The test reads the bins PSI reads: it asks whether this PSI is more than chance.
        # (A KS test against the 11 baseline quantiles is only approximate: on unchanged
        # 5,000-row windows it rejected for some feature in half of them.)
        result = chi_square(self.counts, expected, min_expected, self.reference_rows)
        edges = self.baseline.edges
        buckets = tuple(_bin_label(i, edges) for i in range(len(self.baseline.proportions)))
        return FeatureDrift(
            self.baseline.name, "numeric", total, value, False, "chi2",
            result.statistic, result.p_value, buckets, tuple(expected), tuple(observed), {},
            psi_expected=expected_psi(expected, total), test_buckets=result.buckets,
        )  # fmt: skip


def top_unseen(unseen: dict[str, int]) -> list[tuple[str, int]]:
    """The MAX_UNSEEN_NAMES commonest unseen categories, ties by name.

    By name rather than first appearance (Counter.most_common), so the names do not depend
    on which shard read which file first.
    """
    return sorted(unseen.items(), key=lambda item: (-item[1], item[0]))[:MAX_UNSEEN_NAMES]


def _bin_label(i: int, edges: tuple[float, ...]) -> str:
    low = "-inf" if i == 0 else f"{edges[i]:g}"
    high = "inf" if i == len(edges) - 2 else f"{edges[i + 1]:g}"
    return f"({low}, {high}]"


class CategoricalState:
    def __init__(self, baseline: CategoricalBaseline, reference_rows: int) -> None:
        self.baseline = baseline
        self.reference_rows = reference_rows
        self.counts: Counter[str] = Counter()

    def update(self, values: list[str]) -> None:
        self.counts.update(values)

    def result(self, min_expected: float) -> FeatureDrift:
        """The feature's PSI and raw test; DriftState.results decides whether it drifted."""
        known = sorted(self.baseline.frequencies)
        unseen = {k: v for k, v in self.counts.items() if k not in self.baseline.frequencies}
        total = sum(self.counts.values())
        buckets = [*known, UNSEEN]
        expected = np.array([self.baseline.frequencies[k] for k in known] + [0.0])
        observed_counts = np.array([self.counts.get(k, 0) for k in known] + [sum(unseen.values())])
        observed = observed_counts / total
        value = psi(expected, observed)
        result = chi_square(observed_counts, expected, min_expected, self.reference_rows)
        named = dict(top_unseen(unseen))
        return FeatureDrift(
            self.baseline.name, "categorical", total, value, False, "chi2",
            result.statistic, result.p_value, tuple(buckets), tuple(expected), tuple(observed),
            named, psi_expected=expected_psi(expected, total), test_buckets=result.buckets,
        )  # fmt: skip


class DriftState:
    """All features' running state for one job."""

    def __init__(self, baseline: Baseline) -> None:
        self.numeric = [NumericState(f, baseline.rows) for f in baseline.numeric]
        self.categorical = [CategoricalState(f, baseline.rows) for f in baseline.categorical]
        self.rows = 0

    def update(self, numeric: np.ndarray, categorical: list[list[str]]) -> None:
        """``numeric``: rows x numeric features; ``categorical``: one value list per feature."""
        if len(numeric) == 0:
            return
        for column, state in enumerate(self.numeric):
            state.update(numeric[:, column])
        for values, cat_state in zip(categorical, self.categorical, strict=True):
            cat_state.update(values)
        self.rows += len(numeric)

    def to_summary(self) -> dict[str, Any]:
        """Every count, as JSON: all categories, not only the named unseen ones, since the
        commonest unseen names over all shards cannot be told from each shard's top list."""
        return {
            "rows": self.rows,
            "numeric": {s.baseline.name: s.counts.tolist() for s in self.numeric},
            "categorical": {
                s.baseline.name: dict(sorted(s.counts.items())) for s in self.categorical
            },
        }

    @classmethod
    def from_summary(cls, baseline: Baseline, summary: dict[str, Any]) -> DriftState:
        """The state ``to_summary`` wrote, checked against ``baseline``'s features and bins.

        Raises ValueError naming what does not fit (a summary of another baseline, or edited).
        """
        state = cls(baseline)
        try:
            rows = summary["rows"]
            numeric, categorical = summary["numeric"], summary["categorical"]
            names = {s.baseline.name for s in state.numeric}
            if not isinstance(numeric, dict) or set(numeric) != names:
                raise ValueError(f"numeric features {sorted(numeric)} are not {sorted(names)}")
            names = {s.baseline.name for s in state.categorical}
            if not isinstance(categorical, dict) or set(categorical) != names:
                raise ValueError(
                    f"categorical features {sorted(categorical)} are not {sorted(names)}"
                )
            for num in state.numeric:
                counts = numeric[num.baseline.name]
                if len(counts) != len(num.counts) or not all(_count(c) for c in counts):
                    raise ValueError(f"{num.baseline.name}: {len(num.counts)} bin counts expected")
                num.counts = np.asarray(counts, dtype=np.int64)
            for cat in state.categorical:
                values = categorical[cat.baseline.name]
                if not isinstance(values, dict) or not all(_count(c) for c in values.values()):
                    raise ValueError(f"{cat.baseline.name}: category counts expected")
                cat.counts = Counter({str(k): v for k, v in values.items() if v})
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a drift state summary ({exc})") from None
        if (
            not _count(rows)
            or any(int(n.counts.sum()) != rows for n in state.numeric)
            or any(sum(c.counts.values()) != rows for c in state.categorical)
        ):
            raise ValueError(f"the features' counts do not add up to its {rows!r} rows")
        state.rows = rows
        return state

    def merge(self, other: DriftState) -> None:
        """Add ``other``'s counts (a shard of the same baseline) to this state."""
        if [s.baseline for s in self.numeric] != [s.baseline for s in other.numeric] or [
            s.baseline for s in self.categorical
        ] != [s.baseline for s in other.categorical]:
            raise ValueError("cannot merge drift states of different baselines")
        for mine, theirs in zip(self.numeric, other.numeric, strict=True):
            mine.counts = mine.counts + theirs.counts
        for cat, other_cat in zip(self.categorical, other.categorical, strict=True):
            cat.counts.update(other_cat.counts)
        self.rows += other.rows

    def results(self, rule: DriftRule) -> list[FeatureDrift]:
        if self.rows == 0:
            return []
        raw = [state.result(rule.min_expected) for state in self.numeric]
        raw += [state.result(rule.min_expected) for state in self.categorical]
        adjusted = adjust([f.p_value for f in raw], rule.correction)
        out = []
        for feature, p in zip(raw, adjusted, strict=True):
            significant = p <= rule.alpha  # False for NaN: no test, no evidence
            drifted = significant and feature.psi >= rule.psi_threshold
            out.append(
                replace(feature, p_value_adjusted=p, significant=significant, drifted=drifted)
            )
        return out


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 6)
