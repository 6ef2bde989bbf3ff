"""CloudWatch alarms, dashboards and log groups, SNS topics -> the requests the provider sends.

Sources (hashicorp/terraform-provider-aws, internal/service/...): cloudwatch/metric_alarm.go
(expandPutMetricAlarmInput, expandMetricAlarmMetrics, expandMetricAlarmDimensions: the
dimensions map becomes a Name/Value list), cloudwatch/dashboard.go (PutDashboard),
sns/topic.go (resourceTopicCreate: CreateTopic with tags and FifoTopic, then one
SetTopicAttributes per attribute in topicAttributeMap), sns/topic_policy.go
(SetTopicAttributes "Policy"), sns/topic_subscription.go (Subscribe with the attributes of
subscriptionAttributeMap, ReturnSubscriptionArn true), logs/group.go (resourceGroupCreate:
CreateLogGroup with the KMS key, class and tags map, then PutRetentionPolicy when a retention
is set).
"""

from __future__ import annotations

from typing import Any

from infra.plan.aws_requests.inputs import Context, Inputs, Params, Request, request
from infra.plan.aws_requests.storage import REGION
from infra.plan.mocks import PLAN_ACCOUNT_ID

# Topic inputs -> SNS attribute names (sns/topic.go topicAttributeMap), those the kit may set.
_TOPIC_ATTRIBUTES = {
    "displayName": "DisplayName",
    "kmsMasterKeyId": "KmsMasterKeyId",
    "policy": "Policy",
    "deliveryPolicy": "DeliveryPolicy",
    "signatureVersion": "SignatureVersion",
    "tracingConfig": "TracingConfig",
}
# Subscription inputs -> attribute names (sns/topic_subscription.go subscriptionAttributeMap).
_SUBSCRIPTION_ATTRIBUTES = {
    "deliveryPolicy": "DeliveryPolicy",
    "filterPolicy": "FilterPolicy",
    "filterPolicyScope": "FilterPolicyScope",
    "rawMessageDelivery": "RawMessageDelivery",
    "redrivePolicy": "RedrivePolicy",
    "replayPolicy": "ReplayPolicy",
    "subscriptionRoleArn": "SubscriptionRoleArn",
}


def metric_alarm(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    params = {
        "AlarmName": ctx.name(i),
        "AlarmDescription": i.get("alarmDescription"),
        "ActionsEnabled": i.get("actionsEnabled"),
        "AlarmActions": i.get("alarmActions"),
        "OKActions": i.get("okActions"),
        "InsufficientDataActions": i.get("insufficientDataActions"),
        "ComparisonOperator": i.get("comparisonOperator"),
        "EvaluationPeriods": i.get("evaluationPeriods"),
        "DatapointsToAlarm": i.get("datapointsToAlarm"),
        "Threshold": i.get("threshold"),
        "ThresholdMetricId": i.get("thresholdMetricId"),
        "TreatMissingData": i.get("treatMissingData"),
        "EvaluateLowSampleCountPercentile": i.get("evaluateLowSampleCountPercentiles"),
        "MetricName": i.get("metricName"),
        "Namespace": i.get("namespace"),
        "Period": i.get("period"),
        "Statistic": i.get("statistic"),
        "ExtendedStatistic": i.get("extendedStatistic"),
        "Unit": i.get("unit"),
        "Dimensions": _dimensions(i.get("dimensions")),
        "Metrics": i.blocks("metricQueries", _metric_query),
        "Tags": ctx.tag_list(i),
    }
    return [request("cloudwatch", "PutMetricAlarm", params)]


def _metric_query(q: Inputs) -> Params:
    return {
        "Id": q.get("id"),
        "Expression": q.get("expression"),
        "Label": q.get("label"),
        "ReturnData": q.get("returnData"),
        "Period": q.get("period"),
        "AccountId": q.get("accountId"),
        "MetricStat": q.block(
            "metric",
            lambda m: {
                "Metric": {
                    "MetricName": m.get("metricName"),
                    "Namespace": m.get("namespace"),
                    "Dimensions": _dimensions(m.get("dimensions")),
                },
                "Period": m.get("period"),
                "Stat": m.get("stat"),
                "Unit": m.get("unit"),
            },
        ),
    }


def _dimensions(value: Any) -> list[Params] | None:
    if not value:
        return None
    return [{"Name": name, "Value": value[name]} for name in sorted(value)]


def dashboard(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    params = {"DashboardName": i.get("dashboardName"), "DashboardBody": i.get("dashboardBody")}
    return [request("cloudwatch", "PutDashboard", params)]


def topic(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    name = ctx.name(i)
    fifo = i.get("fifoTopic")
    create = {
        "Name": name,
        "Attributes": {"FifoTopic": _attribute(fifo)} if fifo is not None else None,
        "Tags": ctx.tag_list(i),
    }
    requests = [request("sns", "CreateTopic", create)]
    # The topic's ARN comes back from CreateTopic; any ARN of the real form stands in.
    arn = f"arn:aws:sns:{ctx.region}:{PLAN_ACCOUNT_ID}:{name}"
    for key, attribute in _TOPIC_ATTRIBUTES.items():
        value = i.get(key)
        if value is not None:
            put = {"TopicArn": arn, "AttributeName": attribute, "AttributeValue": _attribute(value)}
            requests.append(request("sns", "SetTopicAttributes", put))
    return requests


def topic_policy(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    params = {
        "TopicArn": i.get("arn"),
        "AttributeName": "Policy",
        "AttributeValue": i.get("policy"),
    }
    return [request("sns", "SetTopicAttributes", params)]


def topic_subscription(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    i.provider_only("endpointAutoConfirms", "tells the provider whether to wait for confirmation")
    i.provider_only("confirmationTimeoutInMinutes", "how long the provider waits to confirm")
    attributes = {
        name: _attribute(i.get(key)) for key, name in _SUBSCRIPTION_ATTRIBUTES.items() if i.has(key)
    }
    params = {
        "TopicArn": i.get("topic"),
        "Protocol": i.get("protocol"),
        "Endpoint": i.get("endpoint"),
        "Attributes": attributes or None,
        "ReturnSubscriptionArn": True,
    }
    return [request("sns", "Subscribe", params)]


def log_group(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    i.provider_only("skipDestroy", "tells the provider to leave the group behind on delete")
    name = ctx.name(i)
    tags = ctx.tags(i)
    params = {
        "logGroupName": name,
        "kmsKeyId": i.get("kmsKeyId"),
        "logGroupClass": i.get("logGroupClass"),
        "tags": tags or None,
    }
    requests = [request("logs", "CreateLogGroup", params)]
    if i.get("retentionInDays"):
        retention = {"logGroupName": name, "retentionInDays": i.get("retentionInDays")}
        requests.append(request("logs", "PutRetentionPolicy", retention))
    return requests


def _attribute(value: Any) -> Any:
    """SNS attributes are strings; the provider formats booleans and numbers."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


MAPPINGS = {
    "aws:cloudwatch/metricAlarm:MetricAlarm": metric_alarm,
    "aws:cloudwatch/dashboard:Dashboard": dashboard,
    "aws:cloudwatch/logGroup:LogGroup": log_group,
    "aws:sns/topic:Topic": topic,
    "aws:sns/topicPolicy:TopicPolicy": topic_policy,
    "aws:sns/topicSubscription:TopicSubscription": topic_subscription,
}
