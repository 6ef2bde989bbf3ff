"""Planned alarms and the retrain rule, as the demo and the tests use them against moto.

Planning a stack runs the real Pulumi program under mocks; its recorded inputs are exactly
what the provider would send, so alarms made from them are the cloud's alarms.
"""

from __future__ import annotations

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


def stand_in_target(events: Any, resources: Sequence[RecordedResource], target_arn: str) -> str:
    """Point the planned drift rule at ``target_arn`` (a queue standing in for the pipeline)
    instead of its planned targets: moto fails (HTTP 500) delivering to a pipeline."""
    (rule,) = [r for r in resources if r.type == RULE]
    name: str = rule.inputs["name"]
    planned = [t["Id"] for t in events.list_targets_by_rule(Rule=name)["Targets"]]
    if planned:
        events.remove_targets(Rule=name, Ids=planned)
    events.put_targets(Rule=name, Targets=[{"Id": "training-pipeline-stand-in", "Arn": target_arn}])
    return name
