"""Metric names shared by stack config, evaluation and the registry gate.

Kept free of heavy imports: the infrastructure validates config against these names.
"""

from __future__ import annotations

# Config name (mlops:training.metricName) -> key under binary_classification_metrics in
# evaluation.json (SageMaker Model Monitor's model-quality layout).
METRIC_KEYS = {
    "roc_auc": "auc",
    "accuracy": "accuracy",
    "precision": "precision",
    "recall": "recall",
    "f1": "f1",
}
