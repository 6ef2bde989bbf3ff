"""An EventBridge Scheduler schedule that starts one SageMaker pipeline, with its own role."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components.service_role import ServiceRole, ServiceRoleArgs, policy_names
from infra.naming import Naming
from infra.policies.schedule import ScheduleScope, scheduler_policies, scheduler_trust_policy

# Scheduler gives up on a start that keeps failing (e.g. throttling) after this long.
SCHEDULE_RETRY_ATTEMPTS = 3
SCHEDULE_MAX_EVENT_AGE_SECONDS = 3600


@dataclass(frozen=True)
class PipelineScheduleArgs:
    role_name: str
    schedule_name: str
    expression: str
    enabled: bool
    pipeline_name: str
    pipeline_arn: pulumi.Input[str]
    naming: Naming
    account_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]


def declare_pipeline_schedule(
    name: str, args: PipelineScheduleArgs, parent: pulumi.Resource
) -> tuple[ServiceRole, aws.scheduler.Schedule]:
    """The role and the schedule, as children of ``parent`` (so URNs stay where they were)."""
    scope = pulumi.Output.all(args.account_id, args.kms_key_arn).apply(
        lambda v: ScheduleScope(
            partition=args.naming.partition,
            region=args.naming.region,
            account_id=v[0],
            kms_key_arn=v[1],
            pipeline_name=args.pipeline_name,
            schedule_name=args.schedule_name,
        )
    )
    role = ServiceRole(
        f"{name}-scheduler",
        ServiceRoleArgs(
            role_name=args.role_name,
            description=f"Lets EventBridge Scheduler start {args.pipeline_name}",
            trust_policy=scope.apply(lambda s: json.dumps(scheduler_trust_policy(s))),
            policy_names=policy_names(scheduler_policies, ScheduleScope),
            policies=scope.apply(scheduler_policies),
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    schedule = aws.scheduler.Schedule(
        name,
        name=args.schedule_name,
        description=f"Starts {args.pipeline_name} ({args.expression})",
        schedule_expression=args.expression,
        schedule_expression_timezone="UTC",
        state="ENABLED" if args.enabled else "DISABLED",
        flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
        kms_key_arn=args.kms_key_arn,
        target=aws.scheduler.ScheduleTargetArgs(
            arn=args.pipeline_arn,
            role_arn=role.arn,
            # No pipeline parameters: a scheduled run uses the definition's defaults.
            retry_policy=aws.scheduler.ScheduleTargetRetryPolicyArgs(
                maximum_retry_attempts=SCHEDULE_RETRY_ATTEMPTS,
                maximum_event_age_in_seconds=SCHEDULE_MAX_EVENT_AGE_SECONDS,
            ),
        ),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=role.policies),
    )
    return role, schedule
