"""The endpoint's health alarms: the ones a blue/green update watches and rolls back on.

The set is fixed (one alarm per ``EndpointAlarm``) because the provider treats the
endpoint's rollback alarm list as immutable: changing it would replace the endpoint.
Thresholds and actions may change freely.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.config.settings import MonitoringSettings
from infra.naming import EndpointAlarm, Naming, Variant

NAMESPACE = "AWS/SageMaker"
# One-minute periods: a canary bakes for minutes, so the alarms must decide within them.
PERIOD_SECONDS = 60
EVALUATION_PERIODS = 5
DATAPOINTS_TO_ALARM = 3
MICROSECONDS_PER_MILLISECOND = 1000


@dataclass(frozen=True)
class EndpointAlarmsArgs:
    monitoring: MonitoringSettings
    naming: Naming
    alarm_actions: Sequence[pulumi.Input[str]] = field(default_factory=tuple)


class EndpointAlarms(pulumi.ComponentResource):
    alarms: dict[EndpointAlarm, aws.cloudwatch.MetricAlarm]

    def __init__(
        self, name: str, args: EndpointAlarmsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlopskit:serving:EndpointAlarms", name, None, opts)
        naming, monitoring = args.naming, args.monitoring
        # Alarms name the endpoint and variant as plain strings, so they can exist before
        # the endpoint does and the endpoint's rollback config can name them.
        dimensions = {"EndpointName": naming.endpoint, "VariantName": str(Variant.PRIMARY)}

        def alarm(
            kind: EndpointAlarm, description: str, **metric: Any
        ) -> aws.cloudwatch.MetricAlarm:
            return aws.cloudwatch.MetricAlarm(
                f"{name}-{kind}",
                name=naming.endpoint_alarm(kind),
                alarm_description=f"{naming.endpoint}: {description}. Rolls back a deployment.",
                comparison_operator="GreaterThanThreshold",
                evaluation_periods=EVALUATION_PERIODS,
                datapoints_to_alarm=DATAPOINTS_TO_ALARM,
                # No datapoints means no traffic, which is not evidence of a bad model; an
                # idle endpoint must not block or roll back a deployment.
                treat_missing_data="notBreaching",
                actions_enabled=True,
                alarm_actions=list(args.alarm_actions),
                ok_actions=list(args.alarm_actions),
                opts=pulumi.ResourceOptions(parent=self),
                **metric,
            )

        error_rates = {
            EndpointAlarm.ERROR_RATE_5XX: (
                "Invocation5XXErrors",
                monitoring.error_rate_percent,
                "failed in the model container (5XX)",
            ),
            EndpointAlarm.ERROR_RATE_4XX: (
                "Invocation4XXErrors",
                monitoring.client_error_rate_percent,
                "were refused as bad requests (4XX)",
            ),
        }
        self.alarms = {
            kind: alarm(
                kind,
                f"more than {threshold:g}% of invocations {what}",
                threshold=threshold,
                metric_queries=_error_rate_queries(metric, dimensions),
            )
            for kind, (metric, threshold, what) in error_rates.items()
        }
        self.alarms[EndpointAlarm.LATENCY_P99] = alarm(
            EndpointAlarm.LATENCY_P99,
            f"p99 model latency above {monitoring.latency_p99_ms:g} ms",
            namespace=NAMESPACE,
            metric_name="ModelLatency",
            dimensions=dimensions,
            extended_statistic="p99",
            period=PERIOD_SECONDS,
            # SageMaker reports ModelLatency in microseconds; config is in milliseconds.
            threshold=monitoring.latency_p99_ms * MICROSECONDS_PER_MILLISECOND,
        )
        self.names = [alarm.name for alarm in self.alarms.values()]
        self.register_outputs({"alarmNames": self.names})


def _error_rate_queries(
    errors_metric: str, dimensions: dict[str, str]
) -> list[aws.cloudwatch.MetricAlarmMetricQueryArgs]:
    """Errors as a percentage of invocations, so the threshold means the same at any load."""

    def summed(query_id: str, metric_name: str) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
        return aws.cloudwatch.MetricAlarmMetricQueryArgs(
            id=query_id,
            return_data=False,
            metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                namespace=NAMESPACE,
                metric_name=metric_name,
                dimensions=dimensions,
                period=PERIOD_SECONDS,
                stat="Sum",
            ),
        )

    return [
        summed("errors", errors_metric),
        summed("invocations", "Invocations"),
        aws.cloudwatch.MetricAlarmMetricQueryArgs(
            id="error_rate",
            expression="IF(invocations > 0, 100 * errors / invocations, 0)",
            label=f"{errors_metric} per 100 invocations",
            return_data=True,
        ),
    ]
