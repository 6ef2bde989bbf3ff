"""Publish an attribution report to CloudWatch, for the NDCG alarm and the dashboard.

Per run, dimension ``EndpointName``: ``ExplainedRecords`` (Count; 0 when the window had no
rows, so the silent alarm sees it), then, when rows were explained, ``AttributionNDCG``
(None) and one ``FeatureAttribution`` (None) per input with an extra ``Feature`` dimension.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from monitoring import metrics
from monitoring.attribution_report import AttributionReport


def datums(report: AttributionReport, endpoint: str, when: datetime) -> list[dict[str, Any]]:
    datum = metrics.datum_factory(endpoint, when)

    out = [datum("ExplainedRecords", report.explained, "Count")]
    live, score = report.live, report.ndcg
    if live is None or score is None:
        return out  # no rows: no score rather than a misleading one
    out.append(datum("AttributionNDCG", score, "None"))
    out += [
        datum("FeatureAttribution", value, "None", [{"Name": "Feature", "Value": name}])
        for name, value in live.items()
    ]
    return out


def publish(
    report: AttributionReport,
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
