"""Publish a drift report as CloudWatch metrics, so alarms and dashboards can follow drift."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from monitoring.report import DriftReport

# PutMetricData takes up to 1,000 datums per call today; 20 was the limit for years, and
# staying under it keeps every SDK, region and emulator happy at the cost of one more call.
BATCH_SIZE = 20


def datums(report: DriftReport, endpoint: str, when: datetime) -> list[dict[str, Any]]:
    datum = datum_factory(endpoint, when)

    out = [
        datum("CaptureRecords", report.counts.used, "Count"),
        datum("MalformedRecords", report.counts.malformed_total, "Count"),
    ]
    if not report.has_records:
        return out  # no records: no score rather than a misleading zero
    out.append(datum("DriftScore", report.drift_score or 0.0, "None"))
    out.append(datum("DriftedFeatures", len(report.drifted), "Count"))
    out += [
        datum("FeaturePSI", f.psi, "None", [{"Name": "Feature", "Value": f.name}])
        for f in report.features
    ]
    return out


def datum_factory(endpoint: str, when: datetime) -> Callable[..., dict[str, Any]]:
    """Datums of one run of a monitoring job: its endpoint's dimension and the run time."""
    base = [{"Name": "EndpointName", "Value": endpoint}]

    def datum(
        name: str, value: float, unit: str, extra: list[dict[str, str]] | None = None
    ) -> dict[str, Any]:
        return {
            "MetricName": name,
            "Dimensions": base + (extra or []),
            "Timestamp": when,
            "Value": float(value),
            "Unit": unit,
        }

    return datum


def put(
    items: list[dict[str, Any]],
    *,
    namespace: str,
    region: str | None = None,
    endpoint_url: str | None = None,
) -> int:
    """Put the datums in batches; returns how many were sent."""
    import boto3

    client = boto3.client("cloudwatch", region_name=region, endpoint_url=endpoint_url)
    for i in range(0, len(items), BATCH_SIZE):
        client.put_metric_data(Namespace=namespace, MetricData=items[i : i + BATCH_SIZE])
    return len(items)


def publish(
    report: DriftReport,
    *,
    namespace: str,
    endpoint: str,
    region: str | None = None,
    endpoint_url: str | None = None,
    when: datetime | None = None,
) -> int:
    """Put every metric; returns how many datums were sent."""
    # Stamped with the run time: CloudWatch refuses datums older than two weeks, and an
    # alarm on the scheduled job reads the latest finding.
    items = datums(report, endpoint, when or datetime.now(UTC))
    return put(items, namespace=namespace, region=region, endpoint_url=endpoint_url)
