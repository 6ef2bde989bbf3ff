"""Monitoring of one endpoint, closed into a loop:

    alarms --> alerts topic (e-mail)
    drift schedule --> drift pipeline --> DriftScore / FeaturePSI metrics --> drift alarm
                                      --> CaptureRecords --> drift-silent alarm
    drift alarm (ALARM) --> EventBridge rule --> training pipeline (off in prod by default)

Operational alarms (5XX/4XX rates, p99 latency) are the endpoint's rollback alarms, created
with it (infra/components/endpoint_alarms.py); this component adds the instance and drift
alarms, sends every alarm to the topic and draws the dashboard. Drift detection needs
captured traffic, so a stack without data capture (serverless dev) gets no drift parts.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import dashboard
from infra.components.location import StackLocation
from infra.components.model_endpoint import RegistryLocation
from infra.components.pipeline_schedule import PipelineScheduleArgs, declare_pipeline_schedule
from infra.components.service_role import ServiceRole, ServiceRoleArgs, policy_names
from infra.config import aws_catalog
from infra.config.settings import EndpointKind, Settings
from infra.config.validators import schedule_period_seconds
from infra.naming import DRIFT_SILENT_ALARM, CapturePrefix, Naming, Variant
from infra.policies import Document
from infra.policies.execution_role import trust_policy as sagemaker_trust_policy
from infra.policies.monitoring import (
    MonitoringScope,
    drift_job_policies,
    drift_pipeline_policies,
    retrain_policies,
    retrain_trust_policy,
)
from infra.policies.serving import shared_registry_policy
from infra.stack_files import CodeFiles
from training import dataset
from training.packaging import FRAMEWORK_VERSION

INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
DRIFT_VOLUME_GB = 30
DRIFT_MAX_RUNTIME_SECONDS = 2 * 60 * 60
# CloudWatch: a period is at most a day; periods x period at most 7 days (1 day when the
# period is under an hour).
MAX_PERIOD_SECONDS = 86400
_RATE = re.compile(r"^rate\((?P<value>\d+) (?P<unit>minute|hour|day)s?\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class EndpointMonitoringArgs:
    settings: Settings
    where: StackLocation
    alert_topic_arn: pulumi.Input[str]
    # The endpoint's own (rollback) alarms, shown on the dashboard with the ones made here.
    endpoint_alarms: Sequence[aws.cloudwatch.MetricAlarm]
    training_pipeline_arn: pulumi.Input[str]
    code: CodeFiles
    # What the drift job compares against: the served model's package ARN or archive URI.
    baseline: pulumi.Input[str]
    # A shared registry the served model comes from; the drift job reads its baseline there.
    registry: RegistryLocation | None = None


class EndpointMonitoring(pulumi.ComponentResource):
    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    dashboard: aws.cloudwatch.Dashboard
    drift_pipeline: aws.sagemaker.Pipeline | None
    drift_schedule: aws.scheduler.Schedule | None
    retrain_rule: aws.cloudwatch.EventRule | None

    def __init__(
        self, name: str, args: EndpointMonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlopskit:monitoring:EndpointMonitoring", name, None, opts)
        settings, naming = args.settings, args.where.naming
        serving, monitoring = settings.serving, settings.monitoring
        self._args = args
        self.alarms = {}
        if serving.kind is EndpointKind.INSTANCE:
            self._instance_alarms(name)

        self.drift_pipeline = self.drift_schedule = self.retrain_rule = None
        # No capture, no drift job (and so no drift or drift-silent alarm).
        drift = serving.data_capture_percent > 0
        if drift:
            scope = self._scope()
            self._drift(name, scope)
            self._retrain_on_drift(name, scope)

        alarms = [*args.endpoint_alarms, *self.alarms.values()]
        self.dashboard = aws.cloudwatch.Dashboard(
            name,
            dashboard_name=naming.dashboard,
            dashboard_body=pulumi.Output.all(*(a.arn for a in alarms)).apply(
                lambda arns: json.dumps(
                    dashboard.body(
                        dashboard.DashboardSpec(
                            region=naming.region,
                            endpoint_name=naming.endpoint,
                            variant=str(Variant.PRIMARY),
                            metrics_namespace=naming.metrics_namespace,
                            features=dataset.FEATURES,
                            alarm_arns=arns,
                            instance_metrics=serving.kind is EndpointKind.INSTANCE,
                            drift=drift,
                            latency_p99_threshold_us=monitoring.latency_p99_ms * 1000,
                            drift_threshold=monitoring.drift_psi_threshold,
                        )
                    ),
                    sort_keys=True,
                )
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs(
            {
                "dashboardName": self.dashboard.dashboard_name,
                "alarmNames": [a.name for a in self.alarms.values()],
            }
        )

    def _alarm(
        self, name: str, key: str, description: str, **metric: Any
    ) -> aws.cloudwatch.MetricAlarm:
        topic = [self._args.alert_topic_arn]
        alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-{key}",
            name=f"{self._args.where.naming.endpoint}-{key}",
            alarm_description=f"{self._args.where.naming.endpoint}: {description}",
            actions_enabled=True,
            alarm_actions=topic,
            ok_actions=topic,
            opts=pulumi.ResourceOptions(parent=self),
            **metric,
        )
        self.alarms[key] = alarm
        return alarm

    def _instance_alarms(self, name: str) -> None:
        settings, naming = self._args.settings, self._args.where.naming
        monitoring = settings.monitoring
        dimensions = {"EndpointName": naming.endpoint, "VariantName": str(Variant.PRIMARY)}
        vcpus = aws_catalog.vcpus(settings.serving.instance_type)
        common = {
            "namespace": INSTANCE_NAMESPACE,
            "dimensions": dimensions,
            "statistic": "Average",
            "period": 300,
            "evaluation_periods": 3,
            "datapoints_to_alarm": 3,
            "comparison_operator": "GreaterThanThreshold",
            # No datapoints means no running instance to be short of CPU or memory; the
            # endpoint's own alarms and SageMaker's status cover an endpoint that is down.
            "treat_missing_data": "notBreaching",
        }
        self._alarm(
            name,
            "cpu",
            f"CPU above {monitoring.cpu_utilization_percent:g}% of the fleet's "
            f"{vcpus} vCPUs per instance for 15 minutes",
            metric_name="CPUUtilization",
            # SageMaker sums CPUUtilization over vCPUs (0-100 x vCPUs).
            threshold=monitoring.cpu_utilization_percent * vcpus,
            **common,
        )
        self._alarm(
            name,
            "memory",
            f"memory above {monitoring.memory_utilization_percent:g}% for 15 minutes",
            metric_name="MemoryUtilization",
            threshold=monitoring.memory_utilization_percent,
            **common,
        )

    def _scope(self) -> pulumi.Output[MonitoringScope]:
        args, naming = self._args, self._args.where.naming

        def build(values: list[str]) -> MonitoringScope:
            account, key, artifacts, capture = values
            return MonitoringScope(
                partition=naming.partition,
                region=naming.region,
                account_id=account,
                prefix=naming.prefix,
                kms_key_arn=key,
                artifacts_bucket_arn=f"arn:{naming.partition}:s3:::{artifacts}",
                capture_bucket_arn=f"arn:{naming.partition}:s3:::{capture}",
                model_package_group=naming.model_package_group,
                metrics_namespace=naming.metrics_namespace,
                drift_role_arn=f"arn:{naming.partition}:iam::{account}:role/"
                + naming.role("drift-job"),
                training_pipeline_name=naming.training_pipeline,
                retrain_rule_name=naming.retrain_rule,
            )

        return pulumi.Output.all(
            args.where.account_id,
            args.where.kms_key_arn,
            args.where.artifacts_bucket,
            args.where.capture_bucket,
        ).apply(build)

    def _role(
        self,
        name: str,
        suffix: str,
        description: str,
        trust: pulumi.Input[str],
        policies: Callable[[MonitoringScope], dict[str, Document]],
        scope: pulumi.Output[MonitoringScope],
    ) -> ServiceRole:
        return ServiceRole(
            f"{name}-{suffix}",
            ServiceRoleArgs(
                role_name=self._args.where.naming.role(suffix),
                description=description,
                trust_policy=trust,
                policy_names=policy_names(policies, MonitoringScope),
                policies=scope.apply(policies),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _drift(self, name: str, scope: pulumi.Output[MonitoringScope]) -> None:
        args, settings, naming = self._args, self._args.settings, self._args.where.naming
        monitoring = settings.monitoring
        sagemaker_trust = json.dumps(sagemaker_trust_policy())
        self.drift_role = self._role(
            name,
            "drift-job",
            f"The drift job of {naming.endpoint}",
            sagemaker_trust,
            drift_job_policies,
            scope,
        )
        if args.registry is not None:
            registry = args.registry
            aws.iam.RolePolicy(
                f"{name}-drift-job-shared-registry",
                role=self.drift_role.role.id,
                name="shared-registry",
                policy=pulumi.Output.all(
                    registry.artifacts_bucket,
                    registry.kms_key_arn,
                    registry.model_package_group_arn,
                ).apply(
                    lambda v: json.dumps(
                        shared_registry_policy(
                            f"arn:{naming.partition}:s3:::{v[0]}",
                            v[1],
                            naming.region,
                            describe_group_arn=v[2],
                        )
                    )
                ),
                opts=pulumi.ResourceOptions(parent=self.drift_role),
            )
        self.drift_pipeline_role = self._role(
            name,
            "drift-pipeline",
            f"The steps of {naming.drift_pipeline}",
            sagemaker_trust,
            drift_pipeline_policies,
            scope,
        )
        definition = pulumi.Output.all(
            args.where.kms_key_arn,
            args.where.artifacts_bucket,
            args.where.capture_bucket,
            self.drift_role.arn,
            args.baseline,
        ).apply(lambda v: _drift_definition(settings, naming, args.code, *v))
        self.drift_pipeline = aws.sagemaker.Pipeline(
            name,
            pipeline_name=naming.drift_pipeline,
            pipeline_display_name=naming.drift_pipeline,
            pipeline_description=(
                f"Compare {naming.endpoint}'s captured traffic with the training baseline "
                f"(PSI alarm at {monitoring.drift_psi_threshold})"
            ),
            pipeline_definition=definition,
            role_arn=self.drift_pipeline_role.arn,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*self.drift_pipeline_role.policies, *self.drift_role.policies],
            ),
        )
        _, self.drift_schedule = declare_pipeline_schedule(
            f"{name}-drift",
            PipelineScheduleArgs(
                role_name=naming.role("drift-schedule"),
                schedule_name=naming.drift_schedule,
                expression=monitoring.drift_schedule,
                enabled=(
                    monitoring.drift_schedule_enabled
                    if monitoring.drift_schedule_enabled is not None
                    else True
                ),
                pipeline_name=naming.drift_pipeline,
                pipeline_arn=self.drift_pipeline.arn,
                naming=naming,
                account_id=args.where.account_id,
                kms_key_arn=args.where.kms_key_arn,
            ),
            parent=self,
        )
        self._alarm(
            name,
            "drift",
            f"the largest feature PSI reached {monitoring.drift_psi_threshold:g} in the last "
            f"{monitoring.drift_window_hours} h of captured traffic"
            + (": retraining starts" if settings.retrain_on_drift else ": consider retraining"),
            namespace=naming.metrics_namespace,
            metric_name="DriftScore",
            dimensions={"EndpointName": naming.endpoint},
            statistic="Maximum",
            period=schedule_period_seconds(monitoring.drift_schedule),
            evaluation_periods=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=monitoring.drift_psi_threshold,
            # One datapoint per scheduled run: the periods between runs carry no news, so
            # the alarm keeps its state through them instead of flapping.
            treat_missing_data="ignore",
        )
        self._drift_silent_alarm(name)

    def _drift_silent_alarm(self, name: str) -> None:
        """ALARM when the scheduled drift job reports no captured records: it is not
        running, reads the wrong prefix, or the endpoint serves no captured traffic. The
        drift alarm cannot tell: it ignores missing data and so stays OK forever."""
        monitoring, naming = self._args.settings.monitoring, self._args.where.naming
        if monitoring.drift_schedule_enabled is False:
            return  # nothing runs on its own, so silence is expected
        window = silent_alarm_window(monitoring.drift_schedule)
        if window is None:
            # A schedule CloudWatch cannot watch over two runs (slower than every 3.5 days,
            # or a cron() that is not at least daily): no alarm rather than a false one.
            pulumi.log.warn(
                f"{naming.endpoint}: no drift-silent alarm for driftSchedule "
                f"{monitoring.drift_schedule!r}; CloudWatch cannot span two of its runs",
                resource=self,
            )
            return
        period, periods = window
        self._alarm(
            name,
            DRIFT_SILENT_ALARM,
            f"the drift job ({monitoring.drift_schedule}) reported no captured records for "
            f"{_duration(period * periods)}: it is not running, its capture prefix is wrong, "
            "or the endpoint served no captured traffic; see the drift pipeline's executions",
            namespace=naming.metrics_namespace,
            metric_name="CaptureRecords",
            dimensions={"EndpointName": naming.endpoint},
            statistic="Sum",
            period=period,
            # Every period silent, over at least two scheduled runs: one late run does not
            # alarm, and a run's datapoint never straddles the whole window.
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            comparison_operator="LessThanThreshold",
            threshold=1,
            # A job that never runs publishes nothing: that is silence too.
            treat_missing_data="breaching",
        )

    def _retrain_on_drift(self, name: str, scope: pulumi.Output[MonitoringScope]) -> None:
        args, settings, naming = self._args, self._args.settings, self._args.where.naming
        drift_alarm = self.alarms["drift"]
        self.retrain_role = self._role(
            name,
            "retrain-on-drift",
            f"Lets {naming.retrain_rule} start {naming.training_pipeline}",
            scope.apply(lambda s: json.dumps(retrain_trust_policy(s))),
            retrain_policies,
            scope,
        )
        self.retrain_rule = aws.cloudwatch.EventRule(
            f"{name}-retrain",
            name=naming.retrain_rule,
            description=f"Retrain when {naming.drift_alarm} goes to ALARM",
            event_pattern=drift_alarm.arn.apply(
                lambda arn: json.dumps(
                    {
                        "source": ["aws.cloudwatch"],
                        "detail-type": ["CloudWatch Alarm State Change"],
                        "resources": [arn],
                        "detail": {"state": {"value": ["ALARM"]}},
                    },
                    sort_keys=True,
                )
            ),
            # Prod leaves the decision to a human unless its config says otherwise.
            state="ENABLED" if settings.retrain_on_drift else "DISABLED",
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.retrain_target = aws.cloudwatch.EventTarget(
            f"{name}-retrain",
            rule=self.retrain_rule.name,
            arn=args.training_pipeline_arn,
            role_arn=self.retrain_role.arn,
            sagemaker_pipeline_target=aws.cloudwatch.EventTargetSagemakerPipelineTargetArgs(
                pipeline_parameter_lists=[]
            ),
            retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                maximum_retry_attempts=3, maximum_event_age_in_seconds=3600
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=self.retrain_role.policies),
        )


def silent_alarm_window(expression: str) -> tuple[int, int] | None:
    """(period, periods) of an alarm that spans at least two runs of a schedule; None when
    CloudWatch cannot evaluate that long, or a cron() may run less than daily."""
    rate = _RATE.match(expression)
    if rate is not None:
        interval = int(rate["value"]) * _UNIT_SECONDS[rate["unit"]]
    else:
        # cron(minutes hours day-of-month month day-of-week year): at least daily only
        # when no day, month or weekday is singled out.
        fields = expression.removeprefix("cron(").removesuffix(")").split()
        day, month, weekday = fields[2:5] if len(fields) == 6 else ("", "", "")
        if day not in ("*", "?") or month != "*" or weekday not in ("*", "?"):
            return None
        interval = MAX_PERIOD_SECONDS
    period = min(interval, MAX_PERIOD_SECONDS)
    periods = math.ceil(2 * interval / period)
    longest = MAX_PERIOD_SECONDS if period < 3600 else 7 * MAX_PERIOD_SECONDS
    return (period, periods) if period * periods <= longest else None


def _duration(seconds: int) -> str:
    if seconds % 86400 == 0:
        return f"{seconds // 86400} day(s)"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min"


def _drift_definition(
    settings: Settings,
    naming: Naming,
    code: CodeFiles,
    kms_key_arn: str,
    artifacts_bucket: str,
    capture_bucket: str,
    role_arn: str,
    baseline: str,
) -> str:
    from pipelines import sdk
    from pipelines.drift_pipeline import DriftPipelineSpec, build_definition

    monitoring = settings.monitoring
    capture = f"s3://{capture_bucket}"
    return build_definition(
        DriftPipelineSpec(
            region=naming.region,
            pipeline_name=naming.drift_pipeline,
            role_arn=role_arn,
            kms_key_arn=kms_key_arn,
            artifacts_bucket=artifacts_bucket,
            capture_uri=naming.capture_uri(capture_bucket),
            report_prefix=f"{capture}/{CapturePrefix.MONITORING}{naming.endpoint}",
            code=code.location(artifacts_bucket),
            image_uri=sdk.image_uri(naming.region, FRAMEWORK_VERSION, "training"),
            instance_type=monitoring.drift_instance_type,
            volume_size_gb=DRIFT_VOLUME_GB,
            max_runtime_seconds=DRIFT_MAX_RUNTIME_SECONDS,
            endpoint_name=naming.endpoint,
            baseline=baseline,
            metrics_namespace=naming.metrics_namespace,
            psi_threshold=monitoring.drift_psi_threshold,
            window_hours=monitoring.drift_window_hours,
        )
    )
