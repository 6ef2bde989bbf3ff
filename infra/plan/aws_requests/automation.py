"""EventBridge rules and targets, Scheduler schedules, Application Auto Scaling -> requests.

Sources (hashicorp/terraform-provider-aws, internal/service/...): events/rule.go
(expandPutRuleInput), events/target.go (buildPutTargetInputStruct: one PutTargets entry;
the target ID is generated when not given; expandRetryPolicyParameters,
expandTargetSageMakerPipelineParameters), scheduler/schedule.go (resourceScheduleCreate,
expandTarget, expandFlexibleTimeWindow, expandRetryPolicy), appautoscaling/target.go
(RegisterScalableTarget with its tags), appautoscaling/policy.go (getPutScalingPolicyInput,
expandTargetTrackingScalingPolicyConfiguration).
"""

from __future__ import annotations

from infra.plan.aws_requests.inputs import Context, Inputs, Params, Request, request
from infra.plan.aws_requests.storage import REGION


def event_rule(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    params = {
        "Name": ctx.name(i),
        "Description": i.get("description"),
        "EventPattern": i.get("eventPattern"),
        "ScheduleExpression": i.get("scheduleExpression"),
        "State": i.get("state"),
        "RoleArn": i.get("roleArn"),
        "EventBusName": i.get("eventBusName"),
        "Tags": ctx.tag_list(i),
    }
    return [request("events", "PutRule", params)]


def event_target(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    target = {
        "Id": i.get("targetId") or ctx.unique_id(),
        "Arn": i.get("arn"),
        "RoleArn": i.get("roleArn"),
        "Input": i.get("input"),
        "InputPath": i.get("inputPath"),
        "RetryPolicy": i.block("retryPolicy", _retry_policy),
        "DeadLetterConfig": i.block("deadLetterConfig", lambda d: {"Arn": d.get("arn")}),
        "SageMakerPipelineParameters": i.block(
            "sagemakerPipelineTarget",
            lambda s: {
                "PipelineParameterList": s.blocks("pipelineParameterLists", _parameter) or None
            },
        ),
    }
    params = {"Rule": i.get("rule"), "EventBusName": i.get("eventBusName"), "Targets": [target]}
    return [request("events", "PutTargets", params)]


def schedule(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    params = {
        "Name": ctx.name(i),
        "GroupName": i.get("groupName"),
        "Description": i.get("description"),
        "ScheduleExpression": i.get("scheduleExpression"),
        "ScheduleExpressionTimezone": i.get("scheduleExpressionTimezone"),
        "StartDate": i.get("startDate"),
        "EndDate": i.get("endDate"),
        "State": i.get("state"),
        "KmsKeyArn": i.get("kmsKeyArn"),
        "ActionAfterCompletion": i.get("actionAfterCompletion"),
        "FlexibleTimeWindow": i.block(
            "flexibleTimeWindow",
            lambda w: {
                "Mode": w.get("mode"),
                "MaximumWindowInMinutes": w.get("maximumWindowInMinutes"),
            },
        ),
        "Target": i.block("target", _schedule_target),
    }
    return [request("scheduler", "CreateSchedule", params)]


def _schedule_target(t: Inputs) -> Params:
    return {
        "Arn": t.get("arn"),
        "RoleArn": t.get("roleArn"),
        "Input": t.get("input"),
        "RetryPolicy": t.block("retryPolicy", _retry_policy),
        "DeadLetterConfig": t.block("deadLetterConfig", lambda d: {"Arn": d.get("arn")}),
        "SageMakerPipelineParameters": t.block(
            "sagemakerPipelineParameters",
            lambda s: {"PipelineParameterList": s.blocks("pipelineParameters", _parameter)},
        ),
    }


def _retry_policy(r: Inputs) -> Params:
    return {
        "MaximumEventAgeInSeconds": r.get("maximumEventAgeInSeconds"),
        "MaximumRetryAttempts": r.get("maximumRetryAttempts"),
    }


def _parameter(p: Inputs) -> Params:
    return {"Name": p.get("name"), "Value": p.get("value")}


def scalable_target(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    tags = ctx.tags(i)
    params = {
        "ServiceNamespace": i.get("serviceNamespace"),
        "ResourceId": i.get("resourceId"),
        "ScalableDimension": i.get("scalableDimension"),
        "MinCapacity": i.get("minCapacity"),
        "MaxCapacity": i.get("maxCapacity"),
        "RoleARN": i.get("roleArn"),
        "SuspendedState": i.block(
            "suspendedState",
            lambda s: {
                "DynamicScalingInSuspended": s.get("dynamicScalingInSuspended"),
                "DynamicScalingOutSuspended": s.get("dynamicScalingOutSuspended"),
                "ScheduledScalingSuspended": s.get("scheduledScalingSuspended"),
            },
        ),
        "Tags": tags or None,
    }
    return [request("application-autoscaling", "RegisterScalableTarget", params)]


def scaling_policy(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    params = {
        "PolicyName": ctx.name(i),
        "PolicyType": i.get("policyType"),
        "ServiceNamespace": i.get("serviceNamespace"),
        "ResourceId": i.get("resourceId"),
        "ScalableDimension": i.get("scalableDimension"),
        "TargetTrackingScalingPolicyConfiguration": i.block(
            "targetTrackingScalingPolicyConfiguration", _target_tracking
        ),
    }
    return [request("application-autoscaling", "PutScalingPolicy", params)]


def _target_tracking(t: Inputs) -> Params:
    return {
        "TargetValue": t.get("targetValue"),
        "DisableScaleIn": t.get("disableScaleIn"),
        "ScaleInCooldown": t.get("scaleInCooldown"),
        "ScaleOutCooldown": t.get("scaleOutCooldown"),
        "PredefinedMetricSpecification": t.block(
            "predefinedMetricSpecification",
            lambda p: {
                "PredefinedMetricType": p.get("predefinedMetricType"),
                "ResourceLabel": p.get("resourceLabel"),
            },
        ),
    }


MAPPINGS = {
    "aws:cloudwatch/eventRule:EventRule": event_rule,
    "aws:cloudwatch/eventTarget:EventTarget": event_target,
    "aws:scheduler/schedule:Schedule": schedule,
    "aws:appautoscaling/target:Target": scalable_target,
    "aws:appautoscaling/policy:Policy": scaling_policy,
}
