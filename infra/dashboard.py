"""The endpoint's CloudWatch dashboard, as a plain JSON document (tested by parsing it).

One row each for traffic, errors, latency, instances, drift, model quality and bias, and
explanations, then the alarm states. The metrics are exactly the ones the alarms watch (and
the ones the jobs publish beside them), with the same names and dimensions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SAGEMAKER = "AWS/SageMaker"
INSTANCES = "/aws/sagemaker/Endpoints"
WIDTH, HEIGHT = 12, 6


@dataclass(frozen=True)
class DashboardSpec:
    region: str
    endpoint_name: str
    variant: str
    metrics_namespace: str
    features: Sequence[str]
    alarm_arns: Sequence[str]
    instance_metrics: bool
    drift: bool
    latency_p99_threshold_us: float
    drift_threshold: float
    # The quality job's metrics (quality.py): Model Monitor's binary-classification names.
    quality_metrics: Sequence[str] = ()
    # (facet, Clarify metric) pairs the quality job reports on live traffic.
    bias_metrics: Sequence[tuple[str, str]] = ()
    # None: no attribution job.
    ndcg_threshold: float | None = None

    @property
    def quality(self) -> bool:
        return bool(self.quality_metrics)


def body(spec: DashboardSpec) -> dict[str, Any]:
    variant = ["EndpointName", spec.endpoint_name, "VariantName", spec.variant]
    rows: list[list[dict[str, Any]]] = [
        [
            _metrics(spec, "Invocations", [[SAGEMAKER, "Invocations", *variant]], stat="Sum"),
            _metrics(
                spec,
                "Errors",
                [
                    [SAGEMAKER, "Invocation4XXErrors", *variant],
                    [SAGEMAKER, "Invocation5XXErrors", *variant],
                ],
                stat="Sum",
            ),
        ],
        [
            _metrics(
                spec,
                "Model latency (microseconds)",
                [
                    [SAGEMAKER, "ModelLatency", *variant, {"stat": "p50", "label": "p50"}],
                    [SAGEMAKER, "ModelLatency", *variant, {"stat": "p99", "label": "p99"}],
                ],
                threshold=("p99 alarm", spec.latency_p99_threshold_us),
            ),
        ],
    ]
    if spec.instance_metrics:
        rows[1].append(
            _metrics(
                spec,
                "Instances (%; CPU summed over vCPUs)",
                [
                    [INSTANCES, name, *variant]
                    for name in ("CPUUtilization", "MemoryUtilization", "DiskUtilization")
                ],
                stat="Average",
            )
        )
    if spec.drift:
        endpoint = ["EndpointName", spec.endpoint_name]
        rows.append(
            [
                _metrics(
                    spec,
                    "Drift per feature (PSI)",
                    [
                        [spec.metrics_namespace, "FeaturePSI", *endpoint, "Feature", feature]
                        for feature in spec.features
                    ],
                    stat="Maximum",
                    period=3600,
                ),
                _metrics(
                    spec,
                    "Drift score (max PSI)",
                    [[spec.metrics_namespace, "DriftScore", *endpoint]],
                    stat="Maximum",
                    period=3600,
                    threshold=("drift alarm", spec.drift_threshold),
                ),
                # What each run read: a flat zero is the drift-silent alarm's cue.
                _metrics(
                    spec,
                    "Drift job: records read",
                    [
                        [spec.metrics_namespace, name, *endpoint]
                        for name in ("CaptureRecords", "MalformedRecords")
                    ],
                    stat="Sum",
                    period=3600,
                ),
            ]
        )
    rows += _quality_rows(spec)
    rows.append(
        [
            {
                "type": "alarm",
                "properties": {
                    "title": "Alarms",
                    "alarms": list(spec.alarm_arns),
                    "sortBy": "stateUpdatedTimestamp",
                },
            }
        ]
    )
    widgets = []
    for y, row in enumerate(rows):
        for x, widget in enumerate(row):
            width = 24 // len(row)
            widgets.append(
                {**widget, "x": x * width, "y": y * HEIGHT, "width": width, "height": HEIGHT}
            )
    return {"widgets": widgets}


def _quality_rows(spec: DashboardSpec) -> list[list[dict[str, Any]]]:
    """Model quality and labels; then bias on live traffic and attribution drift."""
    endpoint = ["EndpointName", spec.endpoint_name]
    kit = spec.metrics_namespace
    quality: list[dict[str, Any]] = []
    explained: list[dict[str, Any]] = []
    if spec.quality:
        quality = [
            _metrics(
                spec,
                "Model quality (labelled window)",
                [[kit, "ModelQuality", *endpoint, "Metric", name] for name in spec.quality_metrics],
                stat="Average",
                period=3600,
            ),
            _metrics(
                spec,
                "Significant drops: quality and bias limits",
                [[kit, name, *endpoint] for name in ("QualityViolations", "BiasViolations")],
                stat="Maximum",
                period=3600,
                threshold=("alarm", 1),
            ),
            # A flat zero of labelled records is the quality-silent alarm's cue.
            _metrics(
                spec,
                "Quality job: labels joined",
                [
                    [kit, name, *endpoint]
                    for name in (
                        "LabelledRecords",
                        "UnlabelledRecords",
                        "OrphanLabels",
                        "DuplicateLabels",
                        "MalformedLabels",
                    )
                ],
                stat="Sum",
                period=3600,
            ),
        ]
        if spec.bias_metrics:
            explained.append(
                _metrics(
                    spec,
                    "Bias on live traffic (Clarify metrics)",
                    [
                        [kit, "BiasMetric", *endpoint, "Facet", facet, "Metric", metric]
                        for facet, metric in spec.bias_metrics
                    ],
                    stat="Average",
                    period=3600,
                )
            )
    if spec.ndcg_threshold is not None:
        explained += [
            _metrics(
                spec,
                "Attribution drift (NDCG of the feature ranking)",
                [[kit, "AttributionNDCG", *endpoint]],
                stat="Minimum",
                period=3600,
                threshold=("attribution alarm", spec.ndcg_threshold),
            ),
            _metrics(
                spec,
                "Mean |SHAP| per feature (live)",
                [
                    [kit, "FeatureAttribution", *endpoint, "Feature", feature]
                    for feature in spec.features
                ],
                stat="Average",
                period=3600,
            ),
        ]
    return [row for row in (quality, explained) if row]


def _metrics(
    spec: DashboardSpec,
    title: str,
    metrics: list[list[Any]],
    *,
    stat: str | None = None,
    period: int = 60,
    threshold: tuple[str, float] | None = None,
) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "title": title,
        "region": spec.region,
        "view": "timeSeries",
        "period": period,
        "metrics": metrics,
    }
    if stat:
        properties["stat"] = stat
    if threshold:
        label, value = threshold
        properties["annotations"] = {"horizontal": [{"label": label, "value": value}]}
    return {"type": "metric", "properties": properties}
