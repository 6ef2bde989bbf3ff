"""Is a window's model quality worse than the baseline's? Tests that know both sample sizes.

A metric is compared as ``drop = baseline - window`` against the standard error of that
difference, which includes the baseline's own sampling error (evaluation.json's confusion
matrix gives its counts):

- proportions (accuracy, precision, recall): the pooled two-proportion z-test, one-sided;
- F1, a ratio of confusion counts: the delta method on the multinomial counts, both sides;
- AUC: DeLong's variance on the window (its scores are at hand), Hanley & McNeil's on the
  baseline (only its AUC and class counts are); Hanley JA, McNeil BJ (1982), Radiology 143;
  DeLong ER et al. (1988), Biometrics 44.

p-values across the monitored metrics are Holm-corrected, and a metric is flagged only when
its corrected p-value is under alpha *and* the drop is at least a practical minimum, so a
large window does not page on a drop nobody would act on.

Calibration (Brier score, expected calibration error over fixed bins) is measured and
reported; evaluation.json carries no calibration to compare it with.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

PROPORTIONS = ("accuracy", "precision", "recall")
MONITORABLE = ("auc", "accuracy", "precision", "recall", "f1")
CALIBRATION_BINS = 10


@dataclass(frozen=True)
class Confusion:
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def total(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def positives(self) -> int:
        return self.tp + self.fn

    @property
    def negatives(self) -> int:
        return self.tn + self.fp

    @classmethod
    def of(cls, labels: np.ndarray, predicted: np.ndarray) -> Confusion:
        y, p = labels.astype(bool), predicted.astype(bool)
        return cls(
            tp=int(np.sum(y & p)),
            fp=int(np.sum(~y & p)),
            fn=int(np.sum(y & ~p)),
            tn=int(np.sum(~y & ~p)),
        )

    @classmethod
    def from_report(cls, matrix: Mapping[str, Mapping[str, Any]]) -> Confusion:
        """From Model Monitor's ``confusion_matrix``: actual class -> predicted class -> count."""
        return cls(
            tp=int(matrix["1"]["1"]),
            fp=int(matrix["0"]["1"]),
            fn=int(matrix["1"]["0"]),
            tn=int(matrix["0"]["0"]),
        )

    def ratio(self, metric: str) -> tuple[int, int]:
        """(successes, trials) of a proportion metric."""
        if metric == "accuracy":
            return self.tp + self.tn, self.total
        if metric == "precision":
            return self.tp, self.tp + self.fp
        if metric == "recall":
            return self.tp, self.tp + self.fn
        raise ValueError(f"{metric} is not a proportion")

    def f1(self) -> float:
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else 0.0

    def f1_variance(self) -> float:
        """Delta-method variance of F1 = 2a / (2a + b + c) over multinomial cell shares."""
        n = self.total
        if n == 0:
            return 0.0
        share = np.array([self.tp, self.fp, self.fn], dtype=np.float64) / n
        denominator = 2 * share[0] + share[1] + share[2]
        if denominator == 0:
            return 0.0
        gradient = (
            np.array([2 * (share[1] + share[2]), -2 * share[0], -2 * share[0]]) / denominator**2
        )
        return float((gradient**2 @ share - (gradient @ share) ** 2) / n)


@dataclass(frozen=True)
class DropTest:
    metric: str
    window: float
    baseline: float
    standard_error: float
    p_value: float
    p_adjusted: float = math.nan
    flagged: bool = False

    @property
    def drop(self) -> float:
        return self.baseline - self.window

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "window": _finite(self.window),
            "baseline": _finite(self.baseline),
            "drop": _finite(self.drop),
            "standard_error": _finite(self.standard_error),
            "p_value": _finite(self.p_value),
            "p_value_holm": _finite(self.p_adjusted),
            "flagged": self.flagged,
        }


def _finite(value: float) -> float | None:
    return round(value, 6) if math.isfinite(value) else None


def normal_sf(z: float) -> float:
    """P(Z >= z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _one_sided(drop: float, standard_error: float) -> float:
    if standard_error > 0:
        return normal_sf(drop / standard_error)
    return 0.0 if drop > 0 else 1.0


def proportion_drop(metric: str, window: Confusion, baseline: Confusion) -> DropTest:
    """Pooled two-proportion z-test of H1: the window's proportion is below the baseline's."""
    k_w, n_w = window.ratio(metric)
    k_b, n_b = baseline.ratio(metric)
    if n_w == 0 or n_b == 0:
        return DropTest(metric, math.nan, math.nan, math.nan, 1.0)
    p_w, p_b = k_w / n_w, k_b / n_b
    pooled = (k_w + k_b) / (n_w + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_w + 1 / n_b))
    return DropTest(metric, p_w, p_b, se, _one_sided(p_b - p_w, se))


def f1_drop(window: Confusion, baseline: Confusion) -> DropTest:
    se = math.sqrt(window.f1_variance() + baseline.f1_variance())
    w, b = window.f1(), baseline.f1()
    return DropTest("f1", w, b, se, _one_sided(b - w, se))


def delong(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(AUC, DeLong variance of the AUC), with ties counted half, in O(n log n)."""
    positive = scores[labels == 1]
    negative = scores[labels == 0]
    m, n = len(positive), len(negative)
    if m == 0 or n == 0:
        return math.nan, math.nan
    # Midranks: each positive's placement among negatives is (its rank among all) minus
    # (its rank among positives), ties averaged.
    rank_all = _midranks(np.concatenate([positive, negative]))
    rank_pos, rank_neg = _midranks(positive), _midranks(negative)
    v10 = (rank_all[:m] - rank_pos) / n  # per positive: share of negatives scored below it
    v01 = 1.0 - (rank_all[m:] - rank_neg) / m  # per negative: share of positives above it
    auc = float(v10.mean())
    s10 = float(v10.var(ddof=1)) if m > 1 else 0.0
    s01 = float(v01.var(ddof=1)) if n > 1 else 0.0
    return auc, s10 / m + s01 / n


def _midranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    # Bounds of each run of equal values, 1-based ranks averaged within a run.
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(ordered)]
    run_rank = (starts + 1 + ends) / 2.0
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(run_rank, ends - starts)
    return ranks


def hanley_mcneil_variance(auc: float, positives: int, negatives: int) -> float:
    """Variance of an AUC known only with its class counts (Hanley & McNeil 1982, eq. 2)."""
    if positives == 0 or negatives == 0:
        return math.nan
    q1 = auc / (2 - auc)
    q2 = 2 * auc**2 / (1 + auc)
    return (auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)) / (
        positives * negatives
    )


def auc_drop(
    labels: np.ndarray, scores: np.ndarray, baseline_auc: float, baseline: Confusion
) -> DropTest:
    auc, variance = delong(labels, scores)
    baseline_variance = hanley_mcneil_variance(baseline_auc, baseline.positives, baseline.negatives)
    se = math.sqrt(variance + baseline_variance)
    if not math.isfinite(se):
        return DropTest("auc", auc, baseline_auc, se, 1.0)
    return DropTest("auc", auc, baseline_auc, se, _one_sided(baseline_auc - auc, se))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order."""
    count = len(p_values)
    adjusted = [1.0] * count
    running = 0.0
    for rank, index in enumerate(sorted(range(count), key=lambda i: p_values[i])):
        running = max(running, min(1.0, (count - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def brier(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(np.mean((scores - labels) ** 2))


@dataclass(frozen=True)
class CalibrationBin:
    low: float
    high: float
    count: int
    mean_score: float
    positive_rate: float


def calibration_bins(
    labels: np.ndarray, scores: np.ndarray, bins: int = CALIBRATION_BINS
) -> list[CalibrationBin]:
    """Fixed-width score bins [0, 1/bins), ..., [1 - 1/bins, 1]: the reliability diagram."""
    index = np.minimum((scores * bins).astype(np.int64), bins - 1)
    counts = np.bincount(index, minlength=bins)
    score_sums = np.bincount(index, weights=scores, minlength=bins)
    positive_sums = np.bincount(index, weights=labels.astype(np.float64), minlength=bins)
    found = []
    for b in range(bins):
        count = int(counts[b])
        found.append(
            CalibrationBin(
                low=b / bins,
                high=(b + 1) / bins,
                count=count,
                mean_score=float(score_sums[b] / count) if count else math.nan,
                positive_rate=float(positive_sums[b] / count) if count else math.nan,
            )
        )
    return found


def expected_calibration_error(bins: Sequence[CalibrationBin]) -> float:
    """Sum over bins of (bin share) x |positive rate - mean score|."""
    total = sum(b.count for b in bins)
    if total == 0:
        return math.nan
    return float(
        sum(b.count / total * abs(b.positive_rate - b.mean_score) for b in bins if b.count)
    )
