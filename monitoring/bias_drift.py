"""Bias drift: Clarify's bias metrics on a window of live predictions joined with labels.

The metrics and their document are training/bias.py's (smclarify, Clarify's analysis.json),
computed on the window's labelled rows: labels from ground truth, predicted labels from the
captured scores at 0.5, facet columns from the captured requests. A metric over its limit is
a violation, as in Clarify's bias drift monitor, but only when the window shows it beyond
chance: a small window's facet groups hold a handful of rows, and their metrics swing far
on noise alone. So each limited metric is also recomputed on seeded parametric bootstrap
draws of the window's eight facet-group x confusion-matrix counts (each cell smoothed by
half a count, so an empty cell can fill); the share of draws within the limit is its
p-value, Holm-corrected across every limited metric and facet. A violation counts
(BiasViolations, constraint_violations.json) when that corrected p-value is under alpha. A
metric the window cannot compute (a facet group with no predicted positive, say) is
reported as undetermined, not as a violation.

The nine metrics as smclarify defines them, from the counts of facet ``a`` (the rest) and
``d`` (the sensitive values): CI = (na - nd) / (na + nd); DPL = qa - qd (label positive
rates); KL and JS of the label distributions (terms where both groups have the label);
DPPL = qa^ - qd^ and DI = qd^ / qa^ (predicted positive rates); DCA = na1/na1^ - nd1/nd1^;
RD the recall difference; AD the accuracy difference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from monitoring.quality_stats import holm
from training import bias

DRAWS = 2000
SEED = 0
CONSTRAINT_CHECK = "bias_drift_check"  # Clarify's bias drift violations (AWS docs)
VIOLATIONS_VERSION = "1.0"
# Cells of the eight counts, in order: facet a then d, each TP, FP, FN, TN.
_TP, _FP, _FN, _TN = 0, 1, 2, 3


@dataclass(frozen=True)
class BiasCheck:
    facet: str
    value_or_threshold: str
    metric: str  # the kit's name (DCAcc), as limits are given
    value: float
    limit: float
    p_value: float
    p_adjusted: float
    violated: bool

    @property
    def determined(self) -> bool:
        return not math.isnan(self.value)

    def as_dict(self) -> dict[str, Any]:
        return {
            "facet": self.facet,
            "value_or_threshold": self.value_or_threshold,
            "metric": self.metric,
            "value": _json_number(self.value),
            "limit": self.limit,
            "p_value": _json_number(self.p_value),
            "p_value_holm": _json_number(self.p_adjusted),
            "violated": self.violated,
            "determined": self.determined,
        }


@dataclass(frozen=True)
class BiasDrift:
    facets: tuple[bias.Facet, ...]
    limits: dict[str, float]
    analysis: dict[str, Any]  # Clarify's analysis.json of the window
    checks: list[BiasCheck]

    @property
    def violations(self) -> list[BiasCheck]:
        return [c for c in self.checks if c.violated]

    def metrics(self) -> list[tuple[str, str, float, str | None]]:
        """(facet, metric, value, error) of every metric of the analysis, the facet named as
        configured (``column=values``, the CloudWatch dimension the dashboard reads)."""
        configured: dict[str, list[str]] = {}
        for facet in self.facets:
            configured.setdefault(facet.name, []).append(str(facet))
        found = []
        for section in (bias.PRE_SECTION, bias.POST_SECTION):
            body = self.analysis.get(section) or {}
            for column, results in (body.get("facets") or {}).items():
                names = configured.get(column, [])
                for k, result in enumerate(results):
                    where = (
                        names[k] if k < len(names) else f"{column}={result['value_or_threshold']}"
                    )
                    for metric in result["metrics"]:
                        name = bias.kit_name(str(metric["name"]))
                        error = metric.get("error")
                        found.append((where, name, bias.metric_value(metric), error))
        return found

    def values(self) -> list[tuple[str, str, float]]:
        """(facet=value, metric, value) of every finite metric, for CloudWatch."""
        return [(w, m, v) for w, m, v, _ in self.metrics() if math.isfinite(v)]

    def constraint_violations(self) -> dict[str, Any]:
        """Clarify's bias drift ``constraint_violations.json`` (AWS docs, "Bias Drift
        Violations"): facet, facet_value, metric_name, constraint_check_type, description."""
        return {
            "version": VIOLATIONS_VERSION,
            "violations": [
                {
                    "facet": c.facet,
                    "facet_value": c.value_or_threshold,
                    "metric_name": _json_name(c.metric),
                    "constraint_check_type": CONSTRAINT_CHECK,
                    "description": (
                        f"Metric {_json_name(c.metric)} of facet {c.facet}="
                        f"{c.value_or_threshold} is {c.value:.6g}, beyond the limit "
                        f"{c.limit:g} from its fair value (p = {c.p_adjusted:.2g}, Holm)"
                    ),
                }
                for c in self.violations
            ],
        }


def measure(
    facet_columns: Mapping[str, np.ndarray],
    labels: np.ndarray,
    predicted: np.ndarray,
    facets: Sequence[bias.Facet],
    limits: Mapping[str, float],
    alpha: float,
    draws: int = DRAWS,
) -> BiasDrift:
    names = dict.fromkeys(f.name for f in facets)
    frame = pd.DataFrame({name: facet_columns[name] for name in names})
    for name in frame.columns:
        if frame[name].dtype == object:
            frame[name] = frame[name].astype(str)
    document = bias.analysis(frame, labels, predicted, facets)
    over = {(v.facet, v.value_or_threshold, v.metric): v for v in bias.violations(document, limits)}
    rng = np.random.default_rng(SEED)
    raw: list[tuple[str, str, str, float, float, float]] = []
    seen: dict[str, int] = {}
    for facet in facets:
        cells = group_counts(frame[facet.name].to_numpy(), facet, labels, predicted)
        # analysis.json lists a column's facets in the order given: this one is the k-th.
        k = seen[facet.name] = seen.get(facet.name, -1) + 1
        where = ",".join(facet.sensitive_values)
        value_or_threshold = _reported_value(document, facet.name, k, where)
        values = _analysis_values(document, facet.name, value_or_threshold)
        simulated = _bootstrap(cells, draws, rng)
        for metric, limit in sorted(limits.items()):
            value = values.get(metric, math.nan)
            if (facet.name, value_or_threshold, metric) not in over or math.isnan(value):
                p = 1.0
            else:
                within = bias_deviations(simulated, metric) <= limit
                p = (int(within.sum()) + 1) / (draws + 1)
            raw.append((facet.name, value_or_threshold, metric, value, limit, p))
    adjusted = holm([r[5] for r in raw])
    checks = [
        BiasCheck(f, v, m, value, limit, p, q, violated=q < alpha and not math.isnan(value))
        for (f, v, m, value, limit, p), q in zip(raw, adjusted, strict=True)
    ]
    return BiasDrift(tuple(facets), dict(limits), document, checks)


def group_counts(
    values: np.ndarray, facet: bias.Facet, labels: np.ndarray, predicted: np.ndarray
) -> np.ndarray:
    """TP, FP, FN, TN of facet a (the rest), then of facet d (the sensitive values)."""
    sensitive = sensitive_mask(values, facet)
    y, p = labels.astype(bool), predicted.astype(bool)
    cells = []
    for group in (~sensitive, sensitive):
        cells += [
            np.sum(group & y & p),
            np.sum(group & ~y & p),
            np.sum(group & y & ~p),
            np.sum(group & ~y & ~p),
        ]
    return np.array(cells, dtype=np.int64)


def sensitive_mask(values: np.ndarray, facet: bias.Facet) -> np.ndarray:
    """smclarify's sensitive group: the listed categories, or, for a numeric column, the
    values above the lowest threshold (its intervals (t, max] joined)."""
    if values.dtype.kind in "iuf":
        return values > min(float(v) for v in facet.sensitive_values)
    return np.isin(values.astype(str), list(facet.sensitive_values))


def bias_metrics(cells: np.ndarray) -> dict[str, np.ndarray]:
    """The nine metrics of ``cells`` (..., 8), vectorised over leading axes; NaN where
    smclarify raises (an empty group), +-inf where it divides a count by zero."""
    c = cells.astype(np.float64)
    a, d = c[..., 0:4], c[..., 4:8]
    with np.errstate(divide="ignore", invalid="ignore"):
        n_a, n_d = a.sum(-1), d.sum(-1)
        empty = (n_a == 0) | (n_d == 0)
        q_a, q_d = (a[..., _TP] + a[..., _FN]) / n_a, (d[..., _TP] + d[..., _FN]) / n_d
        qh_a, qh_d = (a[..., _TP] + a[..., _FP]) / n_a, (d[..., _TP] + d[..., _FP]) / n_d
        found = {
            "CI": (n_a - n_d) / (n_a + n_d),
            "DPL": q_a - q_d,
            "KL": _kl(q_a, q_d),
            "JS": _js(q_a, q_d),
            "DPPL": qh_a - qh_d,
            "DI": _divide(qh_d, qh_a),
            "DCAcc": _divide(a[..., _TP] + a[..., _FN], a[..., _TP] + a[..., _FP])
            - _divide(d[..., _TP] + d[..., _FN], d[..., _TP] + d[..., _FP]),
            "RD": _divide(a[..., _TP], a[..., _TP] + a[..., _FN])
            - _divide(d[..., _TP], d[..., _TP] + d[..., _FN]),
            "AD": (a[..., _TP] + a[..., _TN]) / n_a - (d[..., _TP] + d[..., _TN]) / n_d,
        }
    return {name: np.where(empty, np.nan, value) for name, value in found.items()}


def bias_deviations(cells: np.ndarray, metric: str) -> np.ndarray:
    value = bias_metrics(cells)[metric]
    deviation = np.abs(value - 1.0) if metric == "DI" else np.abs(value)
    # An undefined draw is no evidence of a violation.
    return np.where(np.isnan(deviation), -np.inf, deviation)


def _bootstrap(cells: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    total = int(cells.sum())
    shares = (cells + 0.5) / (total + 0.5 * len(cells))
    return rng.multinomial(total, shares, size=draws)


def _divide(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """smclarify's divide: 0/0 is 0, x/0 is +inf."""
    with np.errstate(divide="ignore", invalid="ignore"):
        result = np.where(bottom == 0, np.where(top == 0, 0.0, np.inf), top / bottom)
    return np.asarray(result, dtype=np.float64)


def _kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL of two Bernoulli distributions over the label values both give weight to."""
    total: np.ndarray = _term(p, q) + _term(1 - p, 1 - q)
    return total


def _js(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    # Only labels present in both groups count (smclarify's pdfs_aligned_nonzero).
    both1 = (p > 0) & (q > 0)
    both0 = (p < 1) & (q < 1)
    m1 = (p + q) / 2
    m0 = 1 - m1
    total = np.zeros(np.broadcast(p, q).shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        total = total + np.where(both1, p * np.log(p / m1) + q * np.log(q / m1), 0.0)
        total = total + np.where(
            both0, (1 - p) * np.log((1 - p) / m0) + (1 - q) * np.log((1 - q) / m0), 0.0
        )
    return 0.5 * total


def _term(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        term: np.ndarray = np.where((p > 0) & (q > 0), p * np.log(p / q), 0.0)
    return term


def _reported_value(document: Mapping[str, Any], facet: str, k: int, default: str) -> str:
    """The k-th facet of a column's value_or_threshold as analysis.json spells it
    (intervals, for numbers)."""
    for section in (bias.PRE_SECTION, bias.POST_SECTION):
        results = ((document.get(section) or {}).get("facets") or {}).get(facet) or []
        if len(results) > k:
            return str(results[k]["value_or_threshold"])
    return default


def _analysis_values(
    document: Mapping[str, Any], facet: str, value_or_threshold: str
) -> dict[str, float]:
    values = {}
    for section in (bias.PRE_SECTION, bias.POST_SECTION):
        for result in ((document.get(section) or {}).get("facets") or {}).get(facet) or []:
            if str(result["value_or_threshold"]) == value_or_threshold:
                for metric in result["metrics"]:
                    values[bias.kit_name(str(metric["name"]))] = bias.metric_value(metric)
    return values


def _json_name(metric: str) -> str:
    return "DCA" if metric == "DCAcc" else metric


def _json_number(value: float) -> float | str | None:
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return round(value, 6)
