"""A window's labelled predictions against the evaluation baseline: metrics, tests, verdict.

The window's metrics are Model Monitor's ``binary_classification_metrics`` (the document
evaluation.json holds, computed from counts: monitoring/classification_metrics.py) plus
calibration; each monitored metric is then tested
for a drop (monitoring/quality_stats.py). Windows with too few labels, or labels of one
class only, are reported as such and flag nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitoring import quality_stats as stats
from monitoring.classification_metrics import binary_classification_metrics
from monitoring.evaluation import Evaluation
from training.metrics import THRESHOLD

# ROC and precision-recall curves are thinned to this many points in the report: a window
# of a million rows has up to a million distinct thresholds.
MAX_CURVE_POINTS = 1001


class Status:
    OK = "ok"
    NO_LABELS = "no_labels"
    INSUFFICIENT = "insufficient_labels"
    ONE_CLASS = "one_class"


@dataclass(frozen=True)
class Settings:
    alpha: float = 0.01
    min_drop: float = 0.05
    min_labels: int = 100
    monitored: tuple[str, ...] = stats.MONITORABLE


@dataclass(frozen=True)
class Calibration:
    brier: float
    expected_calibration_error: float
    bins: list[stats.CalibrationBin]

    def as_dict(self) -> dict[str, Any]:
        return {
            "brier": round(self.brier, 6),
            "expected_calibration_error": round(self.expected_calibration_error, 6),
            "bins": [
                {
                    "low": b.low,
                    "high": b.high,
                    "count": b.count,
                    "mean_score": None if math.isnan(b.mean_score) else round(b.mean_score, 6),
                    "positive_rate": (
                        None if math.isnan(b.positive_rate) else round(b.positive_rate, 6)
                    ),
                }
                for b in self.bins
            ],
        }


@dataclass(frozen=True)
class Assessment:
    status: str
    rows: int
    metrics: dict[str, Any] | None  # binary_classification_metrics, as evaluation.json
    calibration: Calibration | None
    tests: list[stats.DropTest]

    @property
    def flagged(self) -> list[stats.DropTest]:
        return [t for t in self.tests if t.flagged]

    @property
    def compared(self) -> bool:
        return self.status == Status.OK


def assess(
    labels: np.ndarray, scores: np.ndarray, baseline: Evaluation, settings: Settings
) -> Assessment:
    rows = len(labels)
    if rows == 0:
        return Assessment(Status.NO_LABELS, 0, None, None, [])
    bins = stats.calibration_bins(labels, scores)
    calibration = Calibration(
        stats.brier(labels, scores), stats.expected_calibration_error(bins), bins
    )
    if rows < settings.min_labels:
        return Assessment(Status.INSUFFICIENT, rows, None, calibration, [])
    if len(np.unique(labels)) < 2:
        return Assessment(Status.ONE_CLASS, rows, None, calibration, [])
    metrics = binary_classification_metrics(labels, scores, max_curve_points=MAX_CURVE_POINTS)
    tests = drop_tests(labels, scores, baseline, settings)
    return Assessment(Status.OK, rows, metrics["binary_classification_metrics"], calibration, tests)


def drop_tests(
    labels: np.ndarray, scores: np.ndarray, baseline: Evaluation, settings: Settings
) -> list[stats.DropTest]:
    """Each monitored metric tested for a drop, Holm-corrected, flagged or not (labels of
    both classes assumed: ``assess`` checks)."""
    window = stats.Confusion.of(labels, scores >= THRESHOLD)
    raw = []
    for metric in settings.monitored:
        if metric == "auc":
            raw.append(stats.auc_drop(labels, scores, baseline.value("auc"), baseline.confusion))
        elif metric == "f1":
            raw.append(stats.f1_drop(window, baseline.confusion))
        else:
            raw.append(stats.proportion_drop(metric, window, baseline.confusion))
    adjusted = stats.holm([t.p_value for t in raw])
    return [
        stats.DropTest(
            t.metric,
            t.window,
            t.baseline,
            t.standard_error,
            t.p_value,
            p,
            flagged=p < settings.alpha and t.drop >= settings.min_drop,
        )
        for t, p in zip(raw, adjusted, strict=True)
    ]
