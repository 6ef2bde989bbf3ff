"""The stack's own alarms and retrain rule, taken from its offline plan and applied to moto.

Planning the demo's stack runs the real Pulumi program under mocks; its recorded inputs are
exactly what the provider would send, so the demo's alarms are the cloud's alarms.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from infra.plan.mocks import RecordedResource

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
RULE = "aws:cloudwatch/eventRule:EventRule"

_DIRECT = {
    "name": "AlarmName",
    "alarmDescription": "AlarmDescription",
    "comparisonOperator": "ComparisonOperator",
    "evaluationPeriods": "EvaluationPeriods",
    "datapointsToAlarm": "DatapointsToAlarm",
    "threshold": "Threshold",
    "treatMissingData": "TreatMissingData",
    "actionsEnabled": "ActionsEnabled",
    "alarmActions": "AlarmActions",
    "okActions": "OKActions",
    "namespace": "Namespace",
    "metricName": "MetricName",
    "statistic": "Statistic",
    "extendedStatistic": "ExtendedStatistic",
    "period": "Period",
}


def put_metric_alarm_request(inputs: dict[str, Any]) -> dict[str, Any]:
    """The PutMetricAlarm request the provider sends for a planned alarm's inputs."""
    request = {api: inputs[key] for key, api in _DIRECT.items() if key in inputs}
    if "dimensions" in inputs:
        request["Dimensions"] = _dimensions(inputs["dimensions"])
    if "metricQueries" in inputs:
        request["Metrics"] = [_query(q) for q in inputs["metricQueries"]]
    return request


def _dimensions(plain: dict[str, str]) -> list[dict[str, str]]:
    return [{"Name": name, "Value": value} for name, value in plain.items()]


def _query(query: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {"Id": query["id"], "ReturnData": query.get("returnData", False)}
    if "expression" in query:
        converted["Expression"] = query["expression"]
        converted["Label"] = query.get("label", query["id"])
    if "metric" in query:
        metric = query["metric"]
        converted["MetricStat"] = {
            "Metric": {
                "Namespace": metric["namespace"],
                "MetricName": metric["metricName"],
                "Dimensions": _dimensions(metric["dimensions"]),
            },
            "Period": metric["period"],
            "Stat": metric["stat"],
        }
    return converted


def apply_alarms(cloudwatch: Any, resources: Sequence[RecordedResource]) -> list[str]:
    names = []
    for alarm in (r for r in resources if r.type == ALARM):
        request = put_metric_alarm_request(alarm.inputs)
        cloudwatch.put_metric_alarm(**request)
        names.append(request["AlarmName"])
    return names


def apply_retrain_rule(events: Any, resources: Sequence[RecordedResource], target_arn: str) -> str:
    """The drift rule, targeting ``target_arn`` (a queue standing in for the pipeline)."""
    (rule,) = [r for r in resources if r.type == RULE]
    pattern = rule.inputs["eventPattern"]
    name: str = rule.inputs["name"]
    events.put_rule(
        Name=name,
        EventPattern=pattern if isinstance(pattern, str) else json.dumps(pattern),
        State=rule.inputs.get("state", "ENABLED"),
        Description=rule.inputs.get("description", ""),
    )
    events.put_targets(Rule=name, Targets=[{"Id": "training-pipeline", "Arn": target_arn}])
    return name
