"""Stand-ins for the endpoint alarms the promotion gate reads, for tests against moto.

The gate only reads their state, so one shape serves every alarm; the planned alarms' own
definitions are tested against moto in test_monitoring_moto.
"""

from __future__ import annotations

from typing import Any

from infra.naming import EndpointAlarm, endpoint_alarm_name


def put_endpoint_alarms(cloudwatch: Any, prefix: str) -> None:
    """Create every alarm the gate reads for ``prefix``'s endpoint, in state INSUFFICIENT_DATA."""
    for alarm in EndpointAlarm:
        cloudwatch.put_metric_alarm(
            AlarmName=endpoint_alarm_name(prefix, alarm),
            MetricName="ModelLatency",
            Namespace="AWS/SageMaker",
            Statistic="Average",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1.0,
            ComparisonOperator="GreaterThanThreshold",
        )
