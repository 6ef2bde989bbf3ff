"""The model: feature transformation and classifier in one scikit-learn Pipeline.

The transformation lives inside the pickled model, so serving applies exactly what
training fitted (no second copy of the preprocessing to drift out of sync).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from training import dataset as ds


@dataclass(frozen=True)
class Hyperparameters:
    learning_rate: float = 0.1
    max_iter: int = 200
    max_leaf_nodes: int = 31
    min_samples_leaf: int = 20
    l2_regularization: float = 0.0
    class_weight: str = "balanced"
    seed: int = 42

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.learning_rate <= 1:
            problems.append(f"learning_rate must be in (0, 1], got {self.learning_rate}")
        if self.max_iter < 1:
            problems.append(f"max_iter must be at least 1, got {self.max_iter}")
        if self.max_leaf_nodes < 2:
            problems.append(f"max_leaf_nodes must be at least 2, got {self.max_leaf_nodes}")
        if self.min_samples_leaf < 1:
            problems.append(f"min_samples_leaf must be at least 1, got {self.min_samples_leaf}")
        if self.l2_regularization < 0:
            problems.append(f"l2_regularization must be >= 0, got {self.l2_regularization}")
        if self.class_weight not in ("balanced", "none"):
            problems.append(f"class_weight must be 'balanced' or 'none', got {self.class_weight!r}")
        if problems:
            raise ValueError("; ".join(problems))


def build_pipeline(hp: Hyperparameters) -> Pipeline:
    features = ColumnTransformer(
        [
            (
                "categorical",
                # Unknown categories at serving time (a new state code) encode as all-zero
                # instead of failing the request.
                OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float64),
                list(ds.CATEGORICAL_FEATURES),
            ),
            ("numeric", "passthrough", list(ds.NUMERIC_FEATURES)),
        ],
        remainder="drop",
        verbose_feature_names_out=False,
    )
    classifier = HistGradientBoostingClassifier(
        learning_rate=hp.learning_rate,
        max_iter=hp.max_iter,
        max_leaf_nodes=hp.max_leaf_nodes,
        min_samples_leaf=hp.min_samples_leaf,
        l2_regularization=hp.l2_regularization,
        class_weight=None if hp.class_weight == "none" else hp.class_weight,
        # Early stopping samples a validation split at random; we have a real one instead.
        early_stopping=False,
        random_state=hp.seed,
    )
    return Pipeline([("features", features), ("classifier", classifier)])


def forget_thread_count(model: Pipeline) -> Pipeline:
    """Drop the OpenMP thread count a fit records, so the saved file is machine-independent.

    The fitted classifier keeps its binner, and the binner keeps the number of threads it
    binned with: the CPU count of the machine that trained. Pickled, that made model.joblib
    (and its SHA-256 in the manifest) differ between instance types for the same model. The
    binner is only used while fitting; None is its default ("decide when used").
    """
    binner = getattr(model[-1], "_bin_mapper", None)
    if binner is not None:
        binner.n_threads = None
    return model


def split_xy(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    x = frame.loc[:, list(ds.FEATURES)]
    y = (frame[ds.TARGET] == ds.POSITIVE_LABEL).to_numpy(dtype=np.int64)
    return x, y
