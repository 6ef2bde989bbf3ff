"""Baseline statistics of the training features, for drift detection against live traffic.

Numeric features get quantiles and a histogram over decile edges (the bins PSI compares);
categorical features get category frequencies. The drift job reads this file as-is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from training import dataset as ds

QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
HISTOGRAM_BINS = 10
BASELINE_VERSION = 1


def compute(frame: pd.DataFrame) -> dict[str, Any]:
    features: dict[str, Any] = {}
    for name in ds.NUMERIC_FEATURES:
        features[name] = _numeric(frame[name].to_numpy(dtype=np.float64))
    for name in ds.CATEGORICAL_FEATURES:
        features[name] = _categorical(frame[name].astype(str))
    return {"version": BASELINE_VERSION, "rows": len(frame), "features": features}


def _numeric(values: np.ndarray) -> dict[str, Any]:
    edges = np.unique(np.quantile(values, np.linspace(0, 1, HISTOGRAM_BINS + 1)))
    if len(edges) < 2:  # a constant column still needs one bin
        edges = np.array([values[0], values[0]])
    # Outer edges are open: live values beyond the training range land in the end bins.
    inner = edges[1:-1]
    counts = np.bincount(np.searchsorted(inner, values, side="right"), minlength=len(edges) - 1)
    return {
        "type": "numeric",
        "count": len(values),
        "mean": _f(values.mean()),
        "std": _f(values.std(ddof=1)) if len(values) > 1 else 0.0,
        "quantiles": {
            f"{q:g}": _f(v) for q, v in zip(QUANTILES, np.quantile(values, QUANTILES), strict=True)
        },
        "histogram": {
            "edges": [_f(e) for e in edges],
            "counts": [int(c) for c in counts],
            "proportions": [_f(c / len(values)) for c in counts],
        },
    }


def _categorical(values: pd.Series) -> dict[str, Any]:
    counts = values.value_counts().sort_index()
    return {
        "type": "categorical",
        "count": int(counts.sum()),
        "frequencies": {str(k): _f(v / counts.sum()) for k, v in counts.items()},
    }


def _f(value: float | np.floating[Any]) -> float:
    return float(value)
