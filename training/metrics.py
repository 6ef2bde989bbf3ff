"""Binary classification metrics in SageMaker Model Monitor's model-quality format.

The pipeline's condition step and the model registry read ``evaluation.json``; using the
documented ``binary_classification_metrics`` layout keeps it readable by both. Standard
deviations follow Model Monitor's recipe: five random 80% samples, only from 200 rows up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn import metrics as skm

from training.metric_names import METRIC_KEYS

THRESHOLD = 0.5
MIN_ROWS_FOR_STD = 200
RESAMPLES = 5

Metric = Callable[[np.ndarray, np.ndarray, np.ndarray], float]


def _safe(fn: Callable[..., float]) -> Callable[..., float]:
    def wrapped(*args: Any, **kwargs: Any) -> float:
        return float(fn(*args, zero_division=0, **kwargs))

    return wrapped


def _scalar_metrics() -> dict[str, Metric]:
    precision, recall = _safe(skm.precision_score), _safe(skm.recall_score)

    def fbeta(beta: float) -> Metric:
        return lambda y, p, s: _safe(skm.fbeta_score)(y, p, beta=beta)

    def constant(metric: Callable[[np.ndarray, np.ndarray], float]) -> Metric:
        # Model Monitor's "best constant classifier": always predict the majority class.
        return lambda y, p, s: metric(y, np.full_like(y, int(y.mean() >= 0.5)))

    return {
        "recall": lambda y, p, s: recall(y, p),
        "precision": lambda y, p, s: precision(y, p),
        "accuracy": lambda y, p, s: float(skm.accuracy_score(y, p)),
        "recall_best_constant_classifier": constant(recall),
        "precision_best_constant_classifier": constant(precision),
        "accuracy_best_constant_classifier": constant(lambda y, p: float(skm.accuracy_score(y, p))),
        "true_positive_rate": lambda y, p, s: recall(y, p),
        "true_negative_rate": lambda y, p, s: recall(1 - y, 1 - p),
        "false_positive_rate": lambda y, p, s: 1.0 - recall(1 - y, 1 - p),
        "false_negative_rate": lambda y, p, s: 1.0 - recall(y, p),
        "auc": lambda y, p, s: float(skm.roc_auc_score(y, s)),
        "f0_5": fbeta(0.5),
        "f1": fbeta(1.0),
        "f2": fbeta(2.0),
    }


def binary_classification_metrics(
    y_true: np.ndarray, scores: np.ndarray, *, seed: int = 0
) -> dict[str, Any]:
    if len(np.unique(y_true)) < 2:
        raise ValueError("evaluation data must contain both classes to compute AUC and rates")
    predicted = (scores >= THRESHOLD).astype(np.int64)
    rng = np.random.default_rng(seed)
    samples = (
        [
            rng.choice(len(y_true), size=int(0.8 * len(y_true)), replace=False)
            for _ in range(RESAMPLES)
        ]
        if len(y_true) >= MIN_ROWS_FOR_STD
        else []
    )

    result: dict[str, Any] = {"confusion_matrix": _confusion(y_true, predicted)}
    for name, metric in _scalar_metrics().items():
        value = metric(y_true, predicted, scores)
        spread = [metric(y_true[i], predicted[i], scores[i]) for i in samples]
        result[name] = {
            "value": value,
            "standard_deviation": float(np.std(spread)) if spread else "NaN",
        }
    fpr, tpr, _ = skm.roc_curve(y_true, scores)
    precisions, recalls, _ = skm.precision_recall_curve(y_true, scores)
    result["receiver_operating_characteristic_curve"] = {
        "false_positive_rates": fpr.tolist(),
        "true_positive_rates": tpr.tolist(),
    }
    result["precision_recall_curve"] = {
        "precisions": precisions.tolist(),
        "recalls": recalls.tolist(),
    }
    return {"binary_classification_metrics": result}


def _confusion(y_true: np.ndarray, predicted: np.ndarray) -> dict[str, dict[str, int]]:
    matrix = skm.confusion_matrix(y_true, predicted, labels=[0, 1])
    return {
        str(actual): {str(pred): int(matrix[actual, pred]) for pred in (0, 1)} for actual in (0, 1)
    }


def headline(report: dict[str, Any]) -> dict[str, float]:
    """The metrics people and gates look at, by their config names."""
    metrics = report["binary_classification_metrics"]
    return {name: float(metrics[key]["value"]) for name, key in METRIC_KEYS.items()}
