"""Clarify's bias metrics for configured facets, in Clarify's ``analysis.json`` layout.

The metrics come from smclarify, the library SageMaker Clarify's processing container
computes them with, so the values are Clarify's. The document is Clarify's bias analysis
output (AWS docs, "Get the analysis results" of a Clarify processing job)::

    {"version": "1.0",
     "pre_training_bias_metrics": {"label": "churn", "label_value_or_threshold": "1",
        "facets": {"state": [{"value_or_threshold": "CA,TX",
                              "metrics": [{"name": "CI", "description": "Class Imbalance (CI)",
                                           "value": 0.96}, ...]}]}},
     "post_training_bias_metrics": {...same layout...}}

As in smclarify's report, a metric that cannot be computed (its facet value never occurs,
say) is written with ``"value": null`` and an ``"error"``, an infinite one as the string
``"Infinity"`` or ``"-Infinity"``; a NaN, which JSON cannot carry, is written like an error.
Like Clarify, KL and JS sum over the label values both groups have: for a group without
positives they are not the documented (infinite) divergence, and KL can come out negative.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from training import dataset as ds

ANALYSIS_VERSION = "1.0"
PRE_SECTION = "pre_training_bias_metrics"
POST_SECTION = "post_training_bias_metrics"
PRE_TRAINING = ("CI", "DPL", "KL", "JS")
POST_TRAINING = ("DPPL", "DI", "DCAcc", "RD", "AD")
METRICS = PRE_TRAINING + POST_TRAINING
# Clarify's docs call it DCAcc; its analysis config ("methods") and analysis.json, like
# smclarify, name it DCA. The kit's settings and limits use the docs' name.
_JSON_NAMES = {"DCAcc": "DCA"}
_KIT_NAMES = {json_name: kit for kit, json_name in _JSON_NAMES.items()}
# A metric whose fair value is 1 (a ratio); every other one is fair at 0.
_RATIOS = frozenset({"DI"})
POSITIVE_LABEL = 1


@dataclass(frozen=True)
class Facet:
    name: str
    sensitive_values: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.name}={','.join(self.sensitive_values)}"


# The group a churn model most plausibly treats differently: international-plan customers
# churn at 42% against 11%. Stacks name their own in mlops:bias.facets.
DEFAULT_FACETS = (Facet("international_plan", ("yes",)),)


@dataclass(frozen=True)
class BiasViolation:
    facet: str
    value_or_threshold: str
    metric: str
    value: float
    limit: float
    # Why the value is missing (NaN), when the metric could not be computed.
    error: str | None = None

    def __str__(self) -> str:
        where = f"{self.metric} for {self.facet}={self.value_or_threshold}"
        if self.error is not None:
            return f"{where} could not be computed ({self.error}); its limit is {self.limit:g}"
        return (
            f"{where} is {self.value:.4g}: {deviation(self.metric, self.value):.4g} from fair, "
            f"over the limit {self.limit:g}"
        )


def parse_facet(text: str) -> Facet:
    """``international_plan=yes`` or ``state=CA,TX``: a column and its sensitive values."""
    name, sep, values = text.partition("=")
    sensitive = tuple(v.strip() for v in values.split(","))
    if not sep or not name.strip() or not all(sensitive):
        raise ValueError(
            f"facet {text!r} is not NAME=VALUE[,VALUE...] (e.g. international_plan=yes or "
            "state=CA,TX)"
        )
    return Facet(name.strip(), sensitive)


def parse_limit(text: str) -> tuple[str, float]:
    """``DPPL=0.2``: a metric and the largest deviation from its fair value it may show."""
    name, sep, number = text.partition("=")
    allowed = ", ".join(METRICS)
    metric = {m.lower(): m for m in METRICS}.get(name.strip().lower())
    if not sep or metric is None:
        raise ValueError(f"bias limit {text!r}: expected METRIC=LIMIT with METRIC one of {allowed}")
    try:
        limit = float(number)
    except ValueError:
        raise ValueError(f"bias limit {text!r}: {number.strip()!r} is not a number") from None
    if not math.isfinite(limit) or limit < 0:
        raise ValueError(f"bias limit {text!r}: the limit must be a finite number >= 0")
    return metric, limit


def deviation(metric: str, value: float) -> float:
    """How far ``value`` is from ``metric``'s fair value: |DI - 1| for DI, |value| otherwise."""
    if metric not in METRICS:
        raise ValueError(f"unknown bias metric {metric!r}; expected one of {', '.join(METRICS)}")
    return abs(value - 1.0) if metric in _RATIOS else abs(value)


def analysis(
    features: pd.DataFrame,
    labels: np.ndarray,
    predicted: np.ndarray | None,
    facets: Sequence[Facet],
    *,
    label: str = ds.TARGET,
) -> dict[str, Any]:
    """Clarify's analysis.json for ``facets``: pre-training metrics of ``labels`` (1 is the
    positive outcome) always, post-training metrics of ``predicted`` labels when given.

    Raises ValueError when a facet names no column of ``features`` or the lengths differ.
    """
    rows = len(features)
    for name, column in (("labels", labels), ("predicted labels", predicted)):
        if column is not None and len(column) != rows:
            raise ValueError(f"{len(column)} {name} for {rows} rows of features")
    missing = [f.name for f in facets if f.name not in features.columns]
    if missing:
        raise ValueError(
            f"facet column(s) {', '.join(missing)} not in the data; its columns are "
            f"{', '.join(map(str, features.columns))}"
        )
    index = pd.RangeIndex(rows)
    # Categorical on purpose: smclarify would take a 0/1 integer column for a numeric one
    # and the positive label for a threshold.
    truth = pd.Series(np.asarray(labels), index=index, name=label).astype("category")
    document: dict[str, Any] = {
        "version": ANALYSIS_VERSION,
        PRE_SECTION: _section(features, truth, None, facets, PRE_TRAINING),
    }
    if predicted is not None:
        guess = pd.Series(np.asarray(predicted), index=index, name=f"{label}_predicted")
        document[POST_SECTION] = _section(
            features, truth, guess.astype("category"), facets, POST_TRAINING
        )
    return document


def _section(
    features: pd.DataFrame,
    truth: pd.Series,
    predicted: pd.Series | None,
    facets: Sequence[Facet],
    metrics: Sequence[str],
) -> dict[str, Any]:
    results: dict[str, list[dict[str, Any]]] = {}
    for facet in facets:
        results.setdefault(facet.name, []).extend(
            _facet(features, truth, predicted, facet, metrics)
        )
    return {
        "label": str(truth.name),
        "label_value_or_threshold": str(POSITIVE_LABEL),
        "facets": results,
    }


def _facet(
    features: pd.DataFrame,
    truth: pd.Series,
    predicted: pd.Series | None,
    facet: Facet,
    metrics: Sequence[str],
) -> list[dict[str, Any]]:
    from smclarify.bias import report

    # smclarify logs each failed metric with its traceback; the error is in the document.
    logging.getLogger("smclarify").setLevel(logging.CRITICAL)
    column = features[facet.name].reset_index(drop=True)
    values = _typed_values(column, facet)
    if not pd.api.types.is_numeric_dtype(column):
        column = column.astype("category")
    frame = pd.DataFrame({facet.name: column})
    names = [_JSON_NAMES.get(m, m) for m in metrics]
    label = report.LabelColumn(str(truth.name), truth, positive_label_values=[POSITIVE_LABEL])
    try:
        if predicted is None:
            found = report.bias_report(
                frame,
                report.FacetColumn(facet.name, values),
                label,
                stage_type=report.StageType.PRE_TRAINING,
                metrics=names,
            )
        else:
            found = report.bias_report(
                frame,
                report.FacetColumn(facet.name, values),
                label,
                stage_type=report.StageType.POST_TRAINING,
                predicted_label_column=report.LabelColumn(
                    str(predicted.name), predicted, positive_label_values=[POSITIVE_LABEL]
                ),
                metrics=names,
            )
    except ValueError as exc:
        # smclarify refuses a whole report it cannot index (no predicted positive at all,
        # say); each metric then carries the reason, as it does for one metric's failure.
        found = [
            {
                "value_or_threshold": ",".join(facet.sensitive_values),
                "metrics": [_failed(name, str(exc)) for name in sorted(names)],
            }
        ]
    return [_finite(result) for result in found]


def _typed_values(column: pd.Series, facet: Facet) -> list[Any]:
    """The facet's values in the column's type. On a numeric column Clarify takes a value
    for a threshold (the group is the values above it) when the column looks continuous."""
    if not pd.api.types.is_numeric_dtype(column):
        return list(facet.sensitive_values)
    try:
        numbers = [float(v) for v in facet.sensitive_values]
    except ValueError:
        raise ValueError(
            f"facet {facet}: column {facet.name} is numeric, so its values must be numbers"
        ) from None
    if pd.api.types.is_integer_dtype(column) and all(n.is_integer() for n in numbers):
        return [int(n) for n in numbers]
    return numbers


_DESCRIPTIONS = {
    "CI": "Class Imbalance (CI)",
    "DPL": "Difference in Positive Proportions in Labels (DPL)",
    "KL": "Kullback-Liebler Divergence (KL)",
    "JS": "Jensen-Shannon Divergence (JS)",
    "DPPL": "Difference in Positive Proportions in Predicted Labels (DPPL)",
    "DI": "Disparate Impact (DI)",
    "DCA": "Difference in Conditional Acceptance (DCA)",
    "RD": "Recall Difference (RD)",
    "AD": "Accuracy Difference (AD)",
}


def _failed(name: str, error: str) -> dict[str, Any]:
    # smclarify's MetricError shape.
    return {
        "name": name,
        "description": _DESCRIPTIONS.get(name, name),
        "value": None,
        "error": error,
    }


def _finite(result: dict[str, Any]) -> dict[str, Any]:
    metrics = []
    for metric in result["metrics"]:
        value = metric.get("value")
        if isinstance(value, float) and math.isnan(value):
            metric = {**metric, "value": None, "error": "the metric is undefined (NaN) here"}
        metrics.append(metric)
    return {"value_or_threshold": str(result["value_or_threshold"]), "metrics": metrics}


def metric_value(metric: Mapping[str, Any]) -> float:
    """A metric's value from analysis.json as a float: NaN when missing or an error."""
    value = metric.get("value")
    if isinstance(value, bool) or value is None:
        return math.nan
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)  # "Infinity" and "-Infinity" parse
        except ValueError:
            return math.nan
    return math.nan


def kit_name(json_name: str) -> str:
    """The kit's name for a metric as analysis.json names it (DCA is DCAcc)."""
    return _KIT_NAMES.get(json_name, json_name)


def violations(analysis: Mapping[str, Any], limits: Mapping[str, float]) -> list[BiasViolation]:
    """Every metric of ``analysis`` (both sections) whose deviation from its fair value is
    over its limit; one that could not be computed counts too, as the limit cannot be shown
    to hold. Raises ValueError when ``analysis`` is not Clarify's layout."""
    if not isinstance(analysis, Mapping):
        raise ValueError(f"a bias analysis is a JSON object, not {type(analysis).__name__}")
    found = []
    for section in (PRE_SECTION, POST_SECTION):
        body = analysis.get(section)
        if body is None:
            continue
        try:
            facets = body["facets"].items()
            for facet, results in facets:
                for result in results:
                    for metric in result["metrics"]:
                        violation = _check(facet, result, metric, limits)
                        if violation is not None:
                            found.append(violation)
        except (AttributeError, KeyError, TypeError) as exc:
            raise ValueError(f"{section} is not Clarify's bias analysis layout: {exc!r}") from None
    return found


def _check(
    facet: str, result: Mapping[str, Any], metric: Mapping[str, Any], limits: Mapping[str, float]
) -> BiasViolation | None:
    name = kit_name(str(metric["name"]))
    if name not in limits:
        return None
    value, limit = metric_value(metric), float(limits[name])
    where = str(result["value_or_threshold"])
    if math.isnan(value):
        error = str(metric.get("error") or "no value")
        return BiasViolation(facet, where, name, value, limit, error)
    if deviation(name, value) > limit:
        return BiasViolation(facet, where, name, value, limit)
    return None
