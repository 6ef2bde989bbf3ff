"""SHAP attributions of the model's inputs, written as SageMaker Clarify's explainability JSON.

Clarify explains a model with Kernel SHAP (the ``shap`` library's KernelExplainer) against a
background (its "SHAP baseline"), ``num_samples`` coalitions per row, and aggregates the
local values into global ones with ``agg_method`` (``mean_abs`` here). Sources: AWS, "SHAP
Baselines for Explainability", "Create a SHAP Baseline for Models in Production" and
"Analysis Configuration Files" (``methods.shap``); the output layout is the
``explanations`` section of the "Get the Analysis Results" page::

    {"version": "1.0",
     "explanations": {"kernel_shap": {"label0": {"global_shap_values": {feature: value},
                                                 "expected_value": E[f]}}}}

``label0`` is Clarify's placeholder key for the first model output when the analysis config
sets no ``label_headers`` (SageMaker Python SDK, ``ExplainabilityAnalysisConfig``); the
kit explains one output, the probability of the positive class, so it is always ``label0``.

What is explained is ``predict_proba[:, 1]`` over the *input* columns, not the one-hot
columns the pipeline makes, so ``state`` gets one attribution. Categorical columns travel
through SHAP as integer codes and are decoded before the model sees them.

The background is the explained rows themselves, summarised, as Clarify does when no
baseline is configured (it clusters the dataset into ``num_clusters``): one row of column
means and most frequent categories (Clarify's recommended "average instance") or, for
``background_rows`` k > 1, k weighted cluster centres. A random sample of rows is not
offered: measured on the churn data, a 10-row sample moved the feature ranking of 200 rows
of unchanged traffic below NDCG 0.9 in 2 of 4 windows, the average instance never.

Attribution drift compares two global rankings by NDCG (``ndcg``), as Model Monitor's
feature-attribution drift check does.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

VERSION = "1.0"
METHOD = "kernel_shap"
LABEL = "label0"
# Coalitions sampled per row. Measured on the churn model (19 inputs): against 2,086 (shap's
# "auto"), 256 moves no global value by more than 0.003 and leaves the ranking's NDCG at
# 0.9998; the cost per row is about nsamples x background rows model evaluations.
DEFAULT_NSAMPLES = 256
DEFAULT_BACKGROUND_ROWS = 1
# Test rows explained at evaluation: at 256 x 1 model calls per row, seconds, not minutes.
DEFAULT_EXPLAIN_ROWS = 300
# Model Monitor raises a feature-attribution drift violation below this NDCG.
NDCG_THRESHOLD = 0.9


class ExplainError(ValueError):
    """Attributions cannot be computed or read; the message says why, in one line."""


@dataclass(frozen=True)
class Attributions:
    """Local SHAP values of the positive-class probability, one row per explained row."""

    features: tuple[str, ...]
    values: np.ndarray  # (rows, features)
    expected_value: float  # the model's mean output over the background
    predictions: np.ndarray  # the model's output for each explained row

    def global_values(self) -> dict[str, float]:
        """Clarify's ``mean_abs`` aggregation."""
        means = np.abs(self.values).mean(axis=0)
        return {name: float(v) for name, v in zip(self.features, means, strict=True)}


def explain(
    model: Any,
    features: pd.DataFrame,
    *,
    background_rows: int = DEFAULT_BACKGROUND_ROWS,
    seed: int = 0,
    nsamples: int | None = None,
) -> dict[str, Any]:
    """Clarify's explainability ``analysis.json`` for ``model`` on ``features``."""
    return analysis(
        shap_values(
            model,
            features,
            summarise(features, background_rows, seed=seed),
            seed=seed,
            nsamples=nsamples,
        )
    )


def analysis(attributions: Attributions) -> dict[str, Any]:
    return {
        "version": VERSION,
        "explanations": {
            METHOD: {
                LABEL: {
                    "global_shap_values": attributions.global_values(),
                    "expected_value": attributions.expected_value,
                }
            }
        },
    }


@dataclass(frozen=True)
class Background:
    """SHAP's background: rows in the explained columns' order, each with a weight."""

    rows: pd.DataFrame
    weights: np.ndarray  # sums to 1


def summarise(features: pd.DataFrame, rows: int, *, seed: int = 0) -> Background:
    """``rows`` weighted rows standing for ``features``: its average instance when 1, else
    k-means centres of the standardised numeric columns (seeded), each centre's categorical
    values the most frequent in its cluster, weighted by cluster size."""
    if rows < 1:
        raise ExplainError(f"background rows must be at least 1, got {rows}")
    if features.empty:
        raise ExplainError("no rows to explain")
    codec = _Codec(features)
    matrix = codec.encode(features)
    numeric = [j for j, name in enumerate(codec.columns) if name not in codec.categories]
    if rows > 1 and len(features) <= rows:
        labels = np.arange(len(features))  # no more rows than centres: each its own
    elif rows > 1 and numeric:
        labels = _clusters(matrix[:, numeric], rows, seed)
    else:  # one centre, or nothing numeric to cluster on: the average instance
        labels = np.zeros(len(features), dtype=np.int64)
    centres, weights = [], []
    for cluster in np.unique(labels):
        members = matrix[labels == cluster]
        centre = members.mean(axis=0)
        for j, name in enumerate(codec.columns):
            if name in codec.categories:
                values, counts = np.unique(members[:, j], return_counts=True)
                centre[j] = values[np.argmax(counts)]  # ties: the lowest code, so stable
        centres.append(centre)
        weights.append(len(members))
    frame = codec.decode(np.array(centres))
    return Background(frame, np.array(weights, dtype=np.float64) / sum(weights))


def _clusters(numeric: np.ndarray, k: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    spread = numeric.std(axis=0)
    scaled = (numeric - numeric.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    labels: np.ndarray = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(scaled)
    return labels


def shap_values(
    model: Any,
    features: pd.DataFrame,
    background: Background,
    *,
    seed: int = 0,
    nsamples: int | None = None,
) -> Attributions:
    """Kernel SHAP of ``model.predict_proba(rows)[:, 1]`` for every row of ``features``."""
    import shap
    from shap.utils._legacy import DenseData

    # shap logs every row's weights at INFO; where a host (the SageMaker SDK, moto) has
    # turned INFO on, that is thousands of lines per job.
    logging.getLogger("shap").setLevel(logging.WARNING)
    if features.empty:
        raise ExplainError("no rows to explain")
    if list(background.rows.columns) != list(features.columns):
        raise ExplainError("the background's columns differ from the explained rows'")
    samples = DEFAULT_NSAMPLES if nsamples is None else nsamples
    if samples < 1:
        raise ExplainError(f"nsamples must be at least 1, got {samples}")
    _check_model(model)
    codec = _Codec(pd.concat([features, background.rows], ignore_index=True))
    columns = list(codec.columns)

    def positive(matrix: np.ndarray) -> np.ndarray:
        probabilities: np.ndarray = model.predict_proba(codec.decode(matrix))[:, 1]
        return probabilities

    rows = codec.encode(features)
    with _seeded(seed), _one_thread():
        predictions = positive(rows)
        # KernelExplainer asks for f(x) one row at a time before its coalitions: answered from
        # one batch call, that saves a pipeline call (most of its cost) per row.
        known = {row.tobytes(): p for row, p in zip(rows, predictions, strict=True)}

        def cached(matrix: np.ndarray) -> np.ndarray:
            if len(matrix) == 1 and (hit := known.get(matrix[0].tobytes())) is not None:
                return np.array([hit])
            return positive(matrix)

        # DenseData(data, names, groups, weights): one group per column, the centres' weights.
        data = DenseData(codec.encode(background.rows), columns, None, background.weights.copy())
        explainer = shap.KernelExplainer(cached, data)
        # l1_reg=False: every feature gets its Shapley value; shap's default would keep ten.
        values = explainer.shap_values(rows, nsamples=samples, l1_reg=False, silent=True)
    return Attributions(
        features=tuple(columns),
        values=np.asarray(values, dtype=np.float64).reshape(len(features), len(columns)),
        expected_value=float(np.asarray(explainer.expected_value).reshape(-1)[0]),
        predictions=predictions,
    )


def _check_model(model: Any) -> None:
    classes = getattr(model, "classes_", None)
    if not callable(getattr(model, "predict_proba", None)) or classes is None:
        raise ExplainError("the model has no predict_proba: it is not a fitted classifier")
    if len(classes) != 2:
        raise ExplainError(f"the model has {len(classes)} classes; only binary ones are explained")


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    # KernelExplainer draws its coalitions from numpy's global generator.
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


@contextmanager
def _one_thread() -> Iterator[None]:
    # Kernel SHAP calls the model once per row on a few hundred rows: OpenMP's thread start
    # per tree then costs more than it saves, and on a busy machine far more.
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    with threadpool_limits(limits=1, user_api="openmp"):
        yield


class _Codec:
    """Columns as floats for SHAP: numbers as they are, categories as integer codes."""

    def __init__(self, frame: pd.DataFrame) -> None:
        missing = [str(c) for c in frame.columns if frame[c].isna().any()]
        if missing:
            raise ExplainError(f"missing values in {', '.join(missing)}: SHAP needs every value")
        self.columns = tuple(str(c) for c in frame.columns)
        self.categories: dict[str, np.ndarray] = {}
        for name in frame.columns:
            if not pd.api.types.is_numeric_dtype(frame[name]) or pd.api.types.is_bool_dtype(
                frame[name]
            ):
                values = pd.unique(frame[name].to_numpy(dtype=object))
                self.categories[str(name)] = np.array(sorted(values, key=str), dtype=object)

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(frame), len(self.columns)), dtype=np.float64)
        for j, name in enumerate(self.columns):
            column = frame[name]
            if name in self.categories:
                lookup = {value: i for i, value in enumerate(self.categories[name])}
                out[:, j] = [lookup[v] for v in column.to_numpy(dtype=object)]
            else:
                out[:, j] = column.to_numpy(dtype=np.float64)
        return out

    def decode(self, matrix: np.ndarray) -> pd.DataFrame:
        columns: dict[str, Any] = {}
        for j, name in enumerate(self.columns):
            if name in self.categories:
                columns[name] = self.categories[name][matrix[:, j].astype(np.int64)]
            else:
                columns[name] = matrix[:, j]
        return pd.DataFrame(columns, columns=list(self.columns))


def global_attributions(analysis: Mapping[str, Any], label: str | None = None) -> dict[str, float]:
    """Feature -> global SHAP value from a Clarify explainability analysis document.

    ``label`` picks one of ``explanations.kernel_shap``'s labels; by default the only one,
    or ``label0`` when there are several.
    """
    try:
        labels = analysis["explanations"][METHOD]
    except (KeyError, TypeError):
        raise ExplainError(
            f"not a Clarify explainability analysis: no explanations.{METHOD} section"
        ) from None
    if not isinstance(labels, Mapping) or not labels:
        raise ExplainError(f"explanations.{METHOD} lists no label")
    if label is None:
        label = next(iter(labels)) if len(labels) == 1 else LABEL
    entry = labels.get(label)
    values = entry.get("global_shap_values") if isinstance(entry, Mapping) else None
    if not isinstance(values, Mapping) or not values:
        raise ExplainError(
            f"explanations.{METHOD}.{label} has no global_shap_values "
            f"(labels: {', '.join(map(str, labels))})"
        )
    out: dict[str, float] = {}
    for name, value in values.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ExplainError(f"global SHAP value of {name!r} is not a finite number: {value!r}")
        out[str(name)] = float(value)
    return out


def ndcg(baseline: Mapping[str, float], live: Mapping[str, float]) -> float:
    """Model Monitor's attribution-drift score: NDCG of the live feature ranking, with the
    baseline's attributions as relevance.

    AWS, "Feature attribution drift for models in production": with F the features sorted by
    baseline attribution a(f) and F' sorted by live attribution, NDCG = DCG / iDCG, DCG =
    sum_i a(F'_i) / log2(i + 1) and iDCG = sum_i a(F_i) / log2(i + 1), over all m features
    (the violations page points to scikit-learn's ndcg_score, whose default k is all).
    Features tied in the live ranking share their mean relevance, as ndcg_score does, so the
    score does not depend on how a tie happens to be ordered.
    """
    if set(baseline) != set(live):
        missing = sorted(set(baseline) ^ set(live))
        raise ExplainError(f"the baseline and live attributions name different features: {missing}")
    if not baseline:
        raise ExplainError("no attributions to rank")
    names = sorted(baseline)
    gains = np.array([float(baseline[n]) for n in names])
    scores = np.array([float(live[n]) for n in names])
    if not (np.isfinite(gains).all() and np.isfinite(scores).all()):
        raise ExplainError("attributions must be finite numbers")
    if (gains < 0).any():
        raise ExplainError("baseline attributions must not be negative (use mean_abs values)")
    discounts = 1.0 / np.log2(np.arange(2, len(names) + 2))
    ideal = float(np.sort(gains)[::-1] @ discounts)
    if ideal == 0:
        raise ExplainError("the baseline attributions are all zero: there is no ranking to compare")
    order = np.argsort(-scores, kind="stable")
    ranked_scores, ranked_gains = scores[order], gains[order]
    dcg, start = 0.0, 0
    while start < len(names):
        end = start + 1
        while end < len(names) and ranked_scores[end] == ranked_scores[start]:
            end += 1
        dcg += float(ranked_gains[start:end].mean() * discounts[start:end].sum())
        start = end
    return dcg / ideal
