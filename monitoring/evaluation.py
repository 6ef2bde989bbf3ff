"""The served model's evaluation baseline: its ``evaluation.json`` (Model Monitor's
``binary_classification_metrics``), found through the registry or named by the caller.

A model package ARN resolves (monitoring/served_model.py) to the evaluation its registration
attached as ``ModelMetrics.ModelQuality.Statistics``; any other model source needs the file
named with ``--evaluation`` (a path or ``s3://``), which also overrides the package's.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitoring import served_model
from monitoring.quality_stats import MONITORABLE, Confusion
from training import uri


class EvaluationError(Exception):
    """The evaluation baseline cannot be found or read; a caller error (exit code 2)."""


@dataclass(frozen=True)
class Evaluation:
    source: str
    metrics: dict[str, Any]  # binary_classification_metrics
    confusion: Confusion

    def value(self, metric: str) -> float:
        return float(self.metrics[metric]["value"])


def locate(
    model: str | None,
    evaluation: str | None,
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
) -> str:
    """Where the evaluation is: ``evaluation`` when given, else the package's statistics."""
    if evaluation:
        return evaluation
    if model is None or not served_model.is_model_package(model):
        raise EvaluationError(
            "pass --evaluation (evaluation.json, local or s3://): only a model package ARN "
            "as --baseline names its evaluation"
        )
    try:
        found = served_model.resolve(model, region=region, endpoint_url=endpoint_url)
    except served_model.ServedModelError as exc:
        raise EvaluationError(str(exc)) from None
    if found.quality_statistics is None:
        raise EvaluationError(
            f"{model} has no ModelMetrics.ModelQuality.Statistics; pass --evaluation"
        )
    return found.quality_statistics


def load(source: str, *, region: str | None = None, endpoint_url: str | None = None) -> Evaluation:
    try:
        if uri.is_s3(source):
            import boto3
            from botocore.exceptions import BotoCoreError, ClientError

            client = boto3.client("s3", region_name=region, endpoint_url=endpoint_url)
            try:
                data = uri.read_bytes(source, s3=client)
            except (ClientError, BotoCoreError, uri.UriError) as exc:
                raise EvaluationError(f"evaluation {source}: cannot read it: {exc}") from None
        else:
            data = Path(source).read_bytes()
    except OSError as exc:
        raise EvaluationError(f"evaluation {source}: {exc.strerror or exc}") from None
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EvaluationError(f"evaluation {source}: not JSON ({exc})") from None
    return parse(document, source)


def parse(document: Any, source: str) -> Evaluation:
    metrics = document.get("binary_classification_metrics") if isinstance(document, dict) else None
    if not isinstance(metrics, dict):
        raise EvaluationError(
            f"evaluation {source}: no binary_classification_metrics (Model Monitor's "
            "model-quality statistics)"
        )
    try:
        confusion = Confusion.from_report(metrics["confusion_matrix"])
        values = {name: float(metrics[name]["value"]) for name in MONITORABLE}
    except (KeyError, TypeError, ValueError) as exc:
        raise EvaluationError(
            f"evaluation {source}: binary_classification_metrics lacks {exc} (needs "
            f"confusion_matrix and {', '.join(MONITORABLE)})"
        ) from None
    if min(confusion.tp, confusion.fp, confusion.fn, confusion.tn) < 0 or not (
        confusion.positives and confusion.negatives
    ):
        raise EvaluationError(f"evaluation {source}: its confusion matrix lacks a class")
    if not all(math.isfinite(v) and 0 <= v <= 1 for v in values.values()):
        raise EvaluationError(f"evaluation {source}: its metrics must lie in [0, 1]")
    return Evaluation(source=source, metrics=metrics, confusion=confusion)
