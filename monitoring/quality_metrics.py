"""Publish a quality report as CloudWatch metrics: the join, model quality, bias drift.

Every datum has the dimension ``EndpointName``. Always: ``LabelledRecords``,
``UnlabelledRecords``, ``OrphanLabels``, ``DuplicateLabels``, ``MalformedLabels`` (Count).
When the window was compared with the baseline: ``ModelQuality`` per ``Metric`` (auc, f1,
accuracy, precision, recall; unit None) and ``QualityViolations`` (Count, the flagged
metrics). Calibration whenever rows were labelled: ``ModelQuality`` with Metric ``brier``
and ``ece``. When bias was measured: ``BiasMetric`` per ``Facet`` (``column=values``) and
``Metric`` (unit None) and ``BiasViolations`` (Count). Alarms read QualityViolations,
BiasViolations and LabelledRecords, so those names are fixed.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from monitoring import metrics
from monitoring.quality_report import QualityReport


def datums(report: QualityReport, endpoint: str, when: datetime) -> list[dict[str, Any]]:
    datum = metrics.datum_factory(endpoint, when)

    c = report.counts
    out = [
        datum("LabelledRecords", c.labelled_records, "Count"),
        datum("UnlabelledRecords", c.unlabelled_records, "Count"),
        datum("OrphanLabels", c.orphan_labels, "Count"),
        datum("DuplicateLabels", c.duplicate_labels, "Count"),
        datum("MalformedLabels", sum(c.labels.malformed.values()), "Count"),
    ]
    assessment = report.assessment
    if assessment.calibration is not None:
        for name, value in (
            ("brier", assessment.calibration.brier),
            ("ece", assessment.calibration.expected_calibration_error),
        ):
            if math.isfinite(value):
                out.append(datum("ModelQuality", value, "None", [_dim("Metric", name)]))
    if assessment.compared:
        for test in assessment.tests:
            if math.isfinite(test.window):
                which = [_dim("Metric", test.metric)]
                out.append(datum("ModelQuality", test.window, "None", which))
        out.append(datum("QualityViolations", len(assessment.flagged), "Count"))
    if report.bias is not None:
        for facet, metric, value in report.bias.values():
            out.append(
                datum("BiasMetric", value, "None", [_dim("Facet", facet), _dim("Metric", metric)])
            )
        out.append(datum("BiasViolations", len(report.bias.violations), "Count"))
    return out


def _dim(name: str, value: str) -> dict[str, str]:
    # CloudWatch caps a dimension value at 1,024 characters (a facet of many states).
    return {"Name": name, "Value": value[:1024]}


def publish(
    report: QualityReport,
    *,
    namespace: str,
    endpoint: str,
    region: str | None = None,
    endpoint_url: str | None = None,
    when: datetime | None = None,
) -> int:
    """Put every metric; returns how many datums were sent."""
    # Stamped with the run time, as the drift job's metrics are (see monitoring.metrics).
    items = datums(report, endpoint, when or datetime.now(UTC))
    return metrics.put(items, namespace=namespace, region=region, endpoint_url=endpoint_url)
