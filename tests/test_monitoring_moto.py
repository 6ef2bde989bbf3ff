"""The planned alarms and rule, applied to moto: valid requests, metrics, states, routing.

moto stands in for CloudWatch and EventBridge. It accepts and returns alarms but does not
evaluate them against metrics, so alarm states are set the way AWS would set them; and it
does not emit alarm state-change events, so the test puts the event AWS documents onto the
bus and moto's rule engine routes it (to an SQS queue standing in for the pipeline). moto's
TestEventPattern is a stub, hence the queue.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import REPO, PlannedStack
from moto import mock_aws

from infra.config.loader import settings_from_config
from infra.plan.aws_requests import resource_requests
from infra.plan.project import load_stack_config
from monitoring import drift
from promotion.gates import no_alarm_firing

REGION = "eu-west-1"
ACCOUNT = "123456789012"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
RULE = "aws:cloudwatch/eventRule:EventRule"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield (
            boto3.client("cloudwatch", region_name=REGION),
            boto3.client("events", region_name=REGION),
        )


def _apply_alarms(cloudwatch: Any, planned: PlannedStack) -> list[dict[str, Any]]:
    """Each planned alarm's PutMetricAlarm, as the provider would send it."""
    requests = [r.params for a in planned.all(ALARM) for r in resource_requests(planned.plan, a)]
    for request in requests:
        cloudwatch.put_metric_alarm(**request)
    return requests


def _settings(stack: str) -> Any:
    config = load_stack_config(REPO, stack)
    return settings_from_config(config.values, project=config.project, stack=stack)


def test_every_planned_alarm_is_a_valid_request_and_reads_back(aws: Any, plan_of: Any) -> None:
    cloudwatch, _ = aws
    prod = plan_of("prod")
    requests = _apply_alarms(cloudwatch, prod)

    stored = {a["AlarmName"]: a for a in cloudwatch.describe_alarms()["MetricAlarms"]}
    assert set(stored) == {r["AlarmName"] for r in requests}
    # 5xx, 4xx, latency, cpu, memory, drift, drift-silent, and the monitors of predictions
    # joined with labels: quality, bias-drift, quality-silent; attribution-drift.
    assert len(stored) == 11
    topic = prod.outputs["alertsTopicArn"]
    for request in requests:
        alarm = stored[request["AlarmName"]]
        assert alarm["AlarmActions"] == [topic] and alarm["OKActions"] == [topic]
        assert alarm["Threshold"] == request["Threshold"]
        assert alarm["TreatMissingData"] == request["TreatMissingData"]
    latency = stored["churn-prod-endpoint-latency-p99"]
    assert latency["ExtendedStatistic"] == "p99" and latency["Threshold"] == 300_000
    assert {m["Id"] for m in stored["churn-prod-endpoint-5xx-rate"]["Metrics"]} == {
        "errors",
        "invocations",
        "error_rate",
    }


def test_drift_metrics_publish_and_the_drift_alarm_blocks_promotion(aws: Any, plan_of: Any) -> None:
    cloudwatch, _ = aws
    staging = plan_of("staging")
    _apply_alarms(cloudwatch, staging)
    namespace = "MLOpsKit/churn-staging"
    endpoint = [{"Name": "EndpointName", "Value": "churn-staging-endpoint"}]
    cloudwatch.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {"MetricName": "DriftScore", "Dimensions": endpoint, "Value": 0.41},
            {
                "MetricName": "FeaturePSI",
                "Dimensions": [*endpoint, {"Name": "Feature", "Value": "total_day_minutes"}],
                "Value": 0.41,
            },
        ],
    )
    published = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName="DriftScore",
        Dimensions=endpoint,
        StartTime=datetime(2000, 1, 1, tzinfo=UTC),
        EndTime=datetime(2100, 1, 1, tzinfo=UTC),
        Period=86400,
        Statistics=["Maximum"],
    )["Datapoints"]
    assert [p["Maximum"] for p in published] == [0.41]
    drift = cloudwatch.describe_alarms(AlarmNames=["churn-staging-endpoint-drift"])
    (alarm,) = drift["MetricAlarms"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (namespace, "DriftScore")
    assert alarm["Dimensions"] == endpoint and alarm["Threshold"] <= 0.41

    assert no_alarm_firing(cloudwatch, _settings("staging")).passed
    # moto does not evaluate alarms; CloudWatch would move it to ALARM on that datapoint.
    cloudwatch.set_alarm_state(
        AlarmName="churn-staging-endpoint-drift", StateValue="ALARM", StateReason="PSI 0.41"
    )
    gate = no_alarm_firing(cloudwatch, _settings("staging"))
    assert not gate.passed
    assert gate.detail == "in ALARM: churn-staging-endpoint-drift"


def test_a_silent_drift_run_publishes_what_the_drift_silent_alarm_reads_as_breaching(
    aws: Any, plan_of: Any, model_dir: Path, tmp_path: Path
) -> None:
    cloudwatch, _ = aws
    _apply_alarms(cloudwatch, plan_of("staging"))
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=["churn-staging-endpoint-drift-silent"])[
        "MetricAlarms"
    ]
    bucket = "churn-staging-capture"
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    # The drift pipeline's arguments, with a capture prefix that holds nothing.
    code = drift.main(
        ["--capture", f"s3://{bucket}/datacapture/churn-staging-endpoint/AllTraffic/",
         "--baseline", str(model_dir), "--output", str(tmp_path / "out"), "--region", REGION,
         "--namespace", alarm["Namespace"], "--endpoint-name", "churn-staging-endpoint",
         "--publish"],
    )  # fmt: skip
    assert code == drift.EXIT_SILENT
    # moto does not evaluate alarms: read the alarm's own metric query, as CloudWatch would.
    now = datetime.now(UTC)
    points = cloudwatch.get_metric_statistics(
        Namespace=alarm["Namespace"],
        MetricName=alarm["MetricName"],
        Dimensions=alarm["Dimensions"],
        StartTime=now - timedelta(seconds=alarm["Period"] * alarm["EvaluationPeriods"]),
        EndTime=now + timedelta(minutes=1),
        Period=alarm["Period"],
        Statistics=[alarm["Statistic"]],
    )["Datapoints"]
    assert [p[alarm["Statistic"]] for p in points] == [0.0]
    assert alarm["ComparisonOperator"] == "LessThanThreshold" and alarm["Threshold"] > 0.0
    # No run at all: no datapoint, which the alarm treats as breaching too.
    assert alarm["TreatMissingData"] == "breaching"


def _alarm_state_change(alarm_name: str, state: str) -> dict[str, str]:
    """A PutEvents entry shaped as CloudWatch's alarm state-change event."""
    return {
        "Source": "aws.cloudwatch",
        "DetailType": "CloudWatch Alarm State Change",
        "Resources": [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm_name}"],
        "Detail": json.dumps(
            {
                "alarmName": alarm_name,
                "state": {"value": state, "reason": "Threshold Crossed"},
                "previousState": {"value": "OK"},
            }
        ),
    }


@pytest.mark.parametrize(
    ("alarm", "state", "starts_retraining"),
    [
        ("churn-staging-endpoint-drift", "ALARM", True),
        ("churn-staging-endpoint-drift", "OK", False),
        ("churn-staging-endpoint-drift", "INSUFFICIENT_DATA", False),
        ("churn-staging-endpoint-5xx-rate", "ALARM", False),
        ("churn-staging-endpoint-drift-silent", "ALARM", False),
        ("churn-prod-endpoint-drift", "ALARM", False),
    ],
)
def test_only_the_drift_alarm_going_to_alarm_starts_retraining(
    aws: Any, plan_of: Any, alarm: str, state: str, starts_retraining: bool
) -> None:
    _, events = aws
    (rule,) = plan_of("staging").all(RULE)
    pattern = rule.inputs["eventPattern"]
    # moto's rule engine delivers matching events to an SQS target in place of the pipeline.
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="retraining-starts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    events.put_rule(
        Name=rule.inputs["name"],
        EventPattern=pattern if isinstance(pattern, str) else json.dumps(pattern),
        State=rule.inputs["state"],
    )
    events.put_targets(
        Rule=rule.inputs["name"],
        Targets=[{"Id": "training", "Arn": queue_arn["Attributes"]["QueueArn"]}],
    )

    events.put_events(Entries=[_alarm_state_change(alarm, state)])

    delivered = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    assert (len(delivered) == 1) is starts_retraining
