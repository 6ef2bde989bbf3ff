"""Monitoring of one endpoint, closed into a loop:

    alarms --> alerts topic (e-mail)
    drift schedule --> drift pipeline --> DriftScore / FeaturePSI metrics --> drift alarm
                                      --> CaptureRecords --> drift-silent alarm
                                      --> AttributionNDCG --> attribution-drift alarm
    quality schedule --> quality pipeline --> QualityViolations --> quality alarm
                                          --> BiasViolations --> bias-drift alarm
                                          --> LabelledRecords --> quality-silent alarm
    drift or quality alarm (ALARM) --> EventBridge rule --> training pipeline
                                                             (off in prod by default)

Operational alarms (5XX/4XX rates, p99 latency) are the endpoint's rollback alarms, created
with it (infra/components/endpoint_alarms.py); this component adds the instance, drift and
quality alarms, sends every alarm to the topic and draws the dashboard. Monitoring needs
captured traffic, so a stack without data capture (serverless dev) gets none of it; the
quality and attribution jobs compare with the reports registration attached, so a model
served from a raw archive (dataUri) gets the drift job alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import dashboard
from infra.components.location import StackLocation
from infra.components.model_endpoint import RegistryLocation
from infra.components.monitoring_alarms import duration, per_run, silent_alarm_window
from infra.components.monitoring_definitions import (
    QUALITY_METRICS,
    JobInputs,
    bias_lines,
    drift_definition,
    quality_definition,
)
from infra.components.pipeline_schedule import PipelineScheduleArgs, declare_pipeline_schedule
from infra.components.service_role import ServiceRole, ServiceRoleArgs, policy_names
from infra.config import aws_catalog
from infra.config.settings import EndpointKind, Settings
from infra.naming import (
    ATTRIBUTION_DRIFT_ALARM,
    BIAS_DRIFT_ALARM,
    DRIFT_SILENT_ALARM,
    QUALITY_ALARM,
    QUALITY_SILENT_ALARM,
    Variant,
)
from infra.policies import Document
from infra.policies.execution_role import trust_policy as sagemaker_trust_policy
from infra.policies.monitoring import (
    MonitoringScope,
    attribution_job_policies,
    drift_job_policies,
    drift_pipeline_policies,
    quality_job_policies,
    quality_pipeline_policies,
    retrain_policies,
    retrain_trust_policy,
)
from infra.policies.serving import shared_registry_policy
from infra.stack_files import CodeFiles
from training import dataset

__all__ = ["EndpointMonitoring", "EndpointMonitoringArgs", "silent_alarm_window"]

INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"


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
    quality_pipeline: aws.sagemaker.Pipeline | None
    quality_schedule: aws.scheduler.Schedule | None
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
        self.quality_pipeline = self.quality_schedule = None
        # No capture, no monitoring job (and so no drift, quality or silent alarm).
        drift = serving.data_capture_percent > 0
        # Quality and attribution read the served version's registered reports.
        self._registered = serving.model is not None and serving.model.data_uri is None
        if drift:
            scope = self._scope()
            self._drift(name, scope)
            if self._registered:
                self._quality(name, scope)
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
                            quality_metrics=(
                                QUALITY_METRICS if self.quality_pipeline is not None else ()
                            ),
                            bias_metrics=(
                                bias_lines(settings) if self.quality_pipeline is not None else ()
                            ),
                            ndcg_threshold=(
                                settings.explainability.ndcg_threshold
                                if drift and self._registered
                                else None
                            ),
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
        monitoring = args.settings.monitoring

        registered = self._registered

        def build(values: list[Any]) -> MonitoringScope:
            account, key, artifacts, capture, vpc = values

            def role_arn(suffix: str) -> str:
                return f"arn:{naming.partition}:iam::{account}:role/{naming.role(suffix)}"

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
                drift_role_arn=role_arn("drift-job"),
                attribution_role_arn=role_arn("attribution-job") if registered else "",
                quality_role_arn=role_arn("quality-job") if registered else "",
                training_pipeline_name=naming.training_pipeline,
                retrain_rule_name=naming.retrain_rule,
                drift_sharded=monitoring.drift_instance_count > 1,
                quality_sharded=monitoring.quality_instance_count > 1,
                vpc=vpc,
            )

        return pulumi.Output.all(
            args.where.account_id,
            args.where.kms_key_arn,
            args.where.artifacts_bucket,
            args.where.capture_bucket,
            args.where.vpc_spec(),
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
                policy_names=policy_names(
                    policies, MonitoringScope, vpc=self._args.where.vpc_stand_in
                ),
                policies=scope.apply(policies),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _job_role(
        self,
        name: str,
        suffix: str,
        description: str,
        policies: Callable[[MonitoringScope], dict[str, Document]],
        scope: pulumi.Output[MonitoringScope],
        *,
        reports: bool,
    ) -> ServiceRole:
        """A monitoring job's role; with a shared registry, also its read of that registry's
        packages and archives (and the reports registration attached, when ``reports``)."""
        naming = self._args.where.naming
        role = self._role(
            name, suffix, description, json.dumps(sagemaker_trust_policy()), policies, scope
        )
        registry = self._args.registry
        if registry is not None:
            aws.iam.RolePolicy(
                f"{name}-{suffix}-shared-registry",
                role=role.role.id,
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
                            reports=reports,
                        )
                    )
                ),
                opts=pulumi.ResourceOptions(parent=role),
            )
        return role

    @property
    def _inputs(self) -> pulumi.Output[JobInputs]:
        where = self._args.where
        return pulumi.Output.all(
            where.kms_key_arn,
            where.artifacts_bucket,
            where.capture_bucket,
            self._args.baseline,
            where.vpc_spec(),
        ).apply(lambda v: JobInputs(*v))

    def _drift(self, name: str, scope: pulumi.Output[MonitoringScope]) -> None:
        args, settings, naming = self._args, self._args.settings, self._args.where.naming
        monitoring = settings.monitoring
        self.drift_role = self._job_role(
            name,
            "drift-job",
            f"The drift job of {naming.endpoint}",
            drift_job_policies,
            scope,
            reports=False,
        )
        job_roles = [self.drift_role]
        self.attribution_role: ServiceRole | None = None
        if self._registered:
            self.attribution_role = self._job_role(
                name,
                "attribution-job",
                f"The attribution-drift job of {naming.endpoint}",
                attribution_job_policies,
                scope,
                reports=True,
            )
            job_roles.append(self.attribution_role)
        self.drift_pipeline_role = self._role(
            name,
            "drift-pipeline",
            f"The steps of {naming.drift_pipeline}",
            json.dumps(sagemaker_trust_policy()),
            drift_pipeline_policies,
            scope,
        )
        attribution_role_arn = (
            self.attribution_role.arn if self.attribution_role is not None else ""
        )
        definition = pulumi.Output.all(
            self._inputs, self.drift_role.arn, attribution_role_arn
        ).apply(lambda v: drift_definition(settings, naming, args.code, v[0], v[1], v[2]))
        self.drift_pipeline = aws.sagemaker.Pipeline(
            name,
            pipeline_name=naming.drift_pipeline,
            pipeline_display_name=naming.drift_pipeline,
            pipeline_description=(
                f"Compare {naming.endpoint}'s captured traffic with the training baseline "
                f"(PSI alarm at {monitoring.drift_psi_threshold}"
                + (
                    f"; attribution NDCG alarm below {settings.explainability.ndcg_threshold})"
                    if self._registered
                    else ")"
                )
            ),
            pipeline_definition=definition,
            role_arn=self.drift_pipeline_role.arn,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[
                    *self.drift_pipeline_role.policies,
                    *(policy for role in job_roles for policy in role.policies),
                ],
            ),
        )
        _, self.drift_schedule = declare_pipeline_schedule(
            f"{name}-drift",
            PipelineScheduleArgs(
                role_name=naming.role("drift-schedule"),
                schedule_name=naming.drift_schedule,
                expression=monitoring.drift_schedule,
                enabled=self._drift_schedule_enabled,
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
            **per_run(naming, "DriftScore", monitoring.drift_schedule),
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=monitoring.drift_psi_threshold,
        )
        self._silent_alarm(
            name,
            DRIFT_SILENT_ALARM,
            monitoring.drift_schedule,
            enabled=self._drift_schedule_enabled,
            metric="CaptureRecords",
            what=(
                "the drift job ({schedule}) reported no captured records for {duration}: it is "
                "not running, its capture prefix is wrong, or the endpoint served no captured "
                "traffic; see the drift pipeline's executions"
            ),
        )
        if self.attribution_role is not None:
            threshold = settings.explainability.ndcg_threshold
            self._alarm(
                name,
                ATTRIBUTION_DRIFT_ALARM,
                f"the live feature ranking by SHAP attribution fell below NDCG {threshold:g} "
                f"against the registered explanation, in the last "
                f"{monitoring.drift_window_hours} h of captured traffic: the model weighs its "
                "inputs differently now; inspect the attribution report (alerts only)",
                **per_run(naming, "AttributionNDCG", monitoring.drift_schedule, "Minimum"),
                comparison_operator="LessThanThreshold",
                threshold=threshold,
            )

    @property
    def _drift_schedule_enabled(self) -> bool:
        configured = self._args.settings.monitoring.drift_schedule_enabled
        return configured if configured is not None else True

    @property
    def _quality_schedule_enabled(self) -> bool:
        configured = self._args.settings.monitoring.quality_schedule_enabled
        # Unset: wherever the drift schedule runs (both need captured traffic).
        return configured if configured is not None else self._drift_schedule_enabled

    def _quality(self, name: str, scope: pulumi.Output[MonitoringScope]) -> None:
        args, settings, naming = self._args, self._args.settings, self._args.where.naming
        monitoring = settings.monitoring
        self.quality_role = self._job_role(
            name,
            "quality-job",
            f"The model-quality job of {naming.endpoint}",
            quality_job_policies,
            scope,
            reports=True,
        )
        self.quality_pipeline_role = self._role(
            name,
            "quality-pipeline",
            f"The steps of {naming.quality_pipeline}",
            json.dumps(sagemaker_trust_policy()),
            quality_pipeline_policies,
            scope,
        )
        definition = pulumi.Output.all(self._inputs, self.quality_role.arn).apply(
            lambda v: quality_definition(settings, naming, args.code, v[0], v[1])
        )
        self.quality_pipeline = aws.sagemaker.Pipeline(
            f"{name}-quality",
            pipeline_name=naming.quality_pipeline,
            pipeline_display_name=naming.quality_pipeline,
            pipeline_description=(
                f"Join {naming.endpoint}'s captured predictions with their labels "
                f"({monitoring.label_delay_hours} h late at most); quality and bias drift"
            ),
            pipeline_definition=definition,
            role_arn=self.quality_pipeline_role.arn,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*self.quality_pipeline_role.policies, *self.quality_role.policies],
            ),
        )
        _, self.quality_schedule = declare_pipeline_schedule(
            f"{name}-quality",
            PipelineScheduleArgs(
                role_name=naming.role("quality-schedule"),
                schedule_name=naming.quality_schedule,
                expression=monitoring.quality_schedule,
                enabled=self._quality_schedule_enabled,
                pipeline_name=naming.quality_pipeline,
                pipeline_arn=self.quality_pipeline.arn,
                naming=naming,
                account_id=args.where.account_id,
                kms_key_arn=args.where.kms_key_arn,
            ),
            parent=self,
        )
        window = (
            f"the {monitoring.quality_window_hours} h window ending "
            f"{monitoring.label_delay_hours} h ago"
        )
        self._alarm(
            name,
            QUALITY_ALARM,
            f"a model-quality metric dropped significantly below its evaluation baseline in "
            f"{window} (one-sided test, Holm-corrected at {monitoring.quality_alpha:g}, drop of "
            f"{monitoring.quality_min_drop:g} or more): concept drift"
            + (": retraining starts" if settings.retrain_on_drift else ": consider retraining"),
            **per_run(naming, "QualityViolations", monitoring.quality_schedule),
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=1,
        )
        limits = settings.bias.limits
        if limits:
            self._alarm(
                name,
                BIAS_DRIFT_ALARM,
                f"live traffic in {window} exceeds a bias limit "
                f"({', '.join(f'{m} {v:g}' for m, v in sorted(limits.items()))}); "
                "the model now treats a facet's group differently (alerts only)",
                **per_run(naming, "BiasViolations", monitoring.quality_schedule),
                comparison_operator="GreaterThanOrEqualToThreshold",
                threshold=1,
            )
        self._silent_alarm(
            name,
            QUALITY_SILENT_ALARM,
            monitoring.quality_schedule,
            enabled=self._quality_schedule_enabled,
            metric="LabelledRecords",
            what=(
                "the quality job ({schedule}) joined no labelled predictions for {duration}: "
                "labels are not arriving under the ground-truth prefix (mlops label), arrive "
                "later than the label delay, or the job is not running (operations, not the "
                "model)"
            ),
        )

    def _silent_alarm(
        self, name: str, key: str, schedule: str, *, enabled: bool, metric: str, what: str
    ) -> None:
        """ALARM when a scheduled job reports nothing to judge: it is not running or reads the
        wrong place. Its findings' alarm cannot tell: it ignores missing data and so stays OK
        forever. Never retrains: silence is operations, not the model."""
        naming = self._args.where.naming
        if not enabled:
            return  # nothing runs on its own, so silence is expected
        window = silent_alarm_window(schedule)
        if window is None:
            # A schedule CloudWatch cannot watch over two runs (slower than every 3.5 days,
            # or a cron() that is not at least daily): no alarm rather than a false one.
            pulumi.log.warn(
                f"{naming.endpoint}: no {key} alarm for the schedule {schedule!r}; "
                "CloudWatch cannot span two of its runs",
                resource=self,
            )
            return
        period, periods = window
        self._alarm(
            name,
            key,
            what.format(schedule=schedule, duration=duration(period * periods)),
            namespace=naming.metrics_namespace,
            metric_name=metric,
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
        # The alarms that say the model is wrong now: drift of its inputs, or of what its
        # inputs mean (a significant quality drop). Silence, bias and attribution alert only.
        keys = [key for key in ("drift", QUALITY_ALARM) if key in self.alarms]
        triggers = [self.alarms[key] for key in keys]
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
            description=(
                f"Retrain when {' or '.join(f'{naming.endpoint}-{key}' for key in keys)} "
                "goes to ALARM"
            ),
            event_pattern=pulumi.Output.all(*(alarm.arn for alarm in triggers)).apply(
                lambda arns: json.dumps(
                    {
                        "source": ["aws.cloudwatch"],
                        "detail-type": ["CloudWatch Alarm State Change"],
                        "resources": list(arns),
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
