"""Model Monitor's ``binary_classification_metrics`` for a large window, from counts.

The same document, value for value, as training/metrics.py writes for evaluation.json (a
test holds them equal, standard deviations included: the same five seeded 80% resamples),
but each scalar comes from the confusion counts and the AUC from one rank sum, rather than
from one scikit-learn call per metric and resample, each re-validating the whole array. On
a million rows that is about a second instead of half a minute.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn import metrics as skm

from training.metrics import MIN_ROWS_FOR_STD, RESAMPLES, THRESHOLD

_NAMES = (
    "recall",
    "precision",
    "accuracy",
    "recall_best_constant_classifier",
    "precision_best_constant_classifier",
    "accuracy_best_constant_classifier",
    "true_positive_rate",
    "true_negative_rate",
    "false_positive_rate",
    "false_negative_rate",
    "auc",
    "f0_5",
    "f1",
    "f2",
)


def binary_classification_metrics(
    y_true: np.ndarray, scores: np.ndarray, *, seed: int = 0, max_curve_points: int | None = None
) -> dict[str, Any]:
    """training.metrics.binary_classification_metrics, computed from counts and ranks.

    ``max_curve_points`` thins the ROC and precision-recall curves to at most that many
    evenly spaced points (ends kept): a million rows have up to a million thresholds.
    """
    y = np.asarray(y_true).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    if y.all() or not y.any():
        raise ValueError("evaluation data must contain both classes to compute AUC and rates")
    predicted = scores >= THRESHOLD
    rng = np.random.default_rng(seed)
    samples = (
        [rng.choice(len(y), size=int(0.8 * len(y)), replace=False) for _ in range(RESAMPLES)]
        if len(y) >= MIN_ROWS_FOR_STD
        else []
    )
    values = _scalars(y, predicted, scores)
    spread = [_scalars(y[i], predicted[i], scores[i]) for i in samples]
    tp, fp, fn, tn = _counts(y, predicted)
    result: dict[str, Any] = {
        "confusion_matrix": {"0": {"0": tn, "1": fp}, "1": {"0": fn, "1": tp}}
    }
    for name in _NAMES:
        result[name] = {
            "value": values[name],
            "standard_deviation": float(np.std([s[name] for s in spread])) if spread else "NaN",
        }
    fpr, tpr, _ = skm.roc_curve(y, scores)
    precisions, recalls, _ = skm.precision_recall_curve(y, scores)
    roc = _thinned(max_curve_points, fpr, tpr)
    pr = _thinned(max_curve_points, precisions, recalls)
    result["receiver_operating_characteristic_curve"] = {
        "false_positive_rates": roc[0].tolist(),
        "true_positive_rates": roc[1].tolist(),
    }
    result["precision_recall_curve"] = {"precisions": pr[0].tolist(), "recalls": pr[1].tolist()}
    return {"binary_classification_metrics": result}


def _thinned(points: int | None, *curves: np.ndarray) -> tuple[np.ndarray, ...]:
    length = len(curves[0])
    if points is None or length <= points:
        return curves
    index = np.unique(np.linspace(0, length - 1, points).round().astype(np.int64))
    return tuple(curve[index] for curve in curves)


def _counts(y: np.ndarray, predicted: np.ndarray) -> tuple[int, int, int, int]:
    tp = int(np.count_nonzero(y & predicted))
    positives, predicted_positives = int(np.count_nonzero(y)), int(np.count_nonzero(predicted))
    fp, fn = predicted_positives - tp, positives - tp
    return tp, fp, fn, len(y) - tp - fp - fn


def _ratio(top: float, bottom: float) -> float:
    return top / bottom if bottom else 0.0  # scikit-learn's zero_division=0


def _scalars(y: np.ndarray, predicted: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    tp, fp, fn, tn = _counts(y, predicted)
    n = tp + fp + fn + tn
    recall = _ratio(tp, tp + fn)
    specificity = _ratio(tn, tn + fp)

    def fbeta(beta: float) -> float:
        b2 = beta * beta
        return _ratio((1 + b2) * tp, (1 + b2) * tp + b2 * fn + fp)

    # Model Monitor's "best constant classifier" predicts the majority class everywhere.
    positives = tp + fn
    majority = positives / n >= 0.5
    return {
        "recall": recall,
        "precision": _ratio(tp, tp + fp),
        "accuracy": (tp + tn) / n,
        "recall_best_constant_classifier": float(majority and positives > 0),
        "precision_best_constant_classifier": positives / n if majority else 0.0,
        "accuracy_best_constant_classifier": (positives if majority else n - positives) / n,
        "true_positive_rate": recall,
        "true_negative_rate": specificity,
        "false_positive_rate": 1.0 - specificity,
        "false_negative_rate": 1.0 - recall,
        "auc": _auc(y, scores),
        "f0_5": fbeta(0.5),
        "f1": fbeta(1.0),
        "f2": fbeta(2.0),
    }


def _auc(y: np.ndarray, scores: np.ndarray) -> float:
    """The Mann-Whitney statistic with ties counted half: scikit-learn's ROC AUC."""
    positives = int(np.count_nonzero(y))
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return math.nan
    order = np.argsort(scores, kind="mergesort")
    ordered = scores[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(ordered)]
    ranks = np.repeat((starts + 1 + ends) / 2.0, ends - starts)
    positive_rank_sum = float(ranks[y[order]].sum())
    return (positive_rank_sum - positives * (positives + 1) / 2) / (positives * negatives)
