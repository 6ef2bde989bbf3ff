"""Everything one ML service needs in one environment, as one component.

``MlopsEnvironment`` composes storage, IAM, the training pipeline and registry, alerts,
serving and monitoring from one typed args object. The kit's own program is a thin use of
it; a team's program can be too (see examples/). Give it the stack's AWS provider through
``opts=pulumi.ResourceOptions(providers={"aws": provider})`` (``infra.provider.aws_provider``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components.alert_topic import AlertTopic, AlertTopicArgs
from infra.components.batch_pipeline import BatchPipeline, BatchPipelineArgs
from infra.components.endpoint_monitoring import EndpointMonitoring, EndpointMonitoringArgs
from infra.components.execution_role import ExecutionRoleArgs, SageMakerExecutionRole
from infra.components.location import NetworkPlacement, StackLocation
from infra.components.model_endpoint import (
    ModelEndpoint,
    ModelEndpointArgs,
    RegistryLocation,
)
from infra.components.network import (
    PrivateNetwork,
    PrivateNetworkArgs,
    VpcFlowLogs,
    VpcFlowLogsArgs,
)
from infra.components.storage import LOGGED_PURPOSES, EndpointOnly, Storage, StorageArgs
from infra.components.training_pipeline import TrainingPipeline, TrainingPipelineArgs
from infra.config.settings import ModelRef, NetworkMode, Settings
from infra.naming import IN_VPC_JOB_ROLES, QUALITY_ALARM, BucketPurpose, Naming
from infra.policies.sharing import registry_resource_policy
from infra.stack_files import CodeFiles, DatasetFiles


@dataclass(frozen=True)
class MlopsEnvironmentArgs:
    settings: Settings
    # What the stack uploads (infra.stack_files.build_code / build_dataset).
    code: CodeFiles
    dataset: DatasetFiles


class MlopsEnvironment(pulumi.ComponentResource):
    storage: Storage
    execution_role: SageMakerExecutionRole
    training: TrainingPipeline
    alerts: AlertTopic
    serving: ModelEndpoint | None
    monitoring: EndpointMonitoring | None
    batch: BatchPipeline | None
    network: PrivateNetwork | None
    flow_logs: VpcFlowLogs | None

    def __init__(
        self, name: str, args: MlopsEnvironmentArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlopskit:index:MlopsEnvironment", name, None, opts)
        settings, code, dataset = args.settings, args.code, args.dataset
        naming = Naming(
            prefix=settings.prefix, region=settings.region, partition=settings.partition
        )
        # Asked through this component's provider: the account the deployment runs in.
        account = aws.get_caller_identity_output(
            opts=pulumi.InvokeOutputOptions(parent=self)
        ).account_id
        # The parts were declared at the stack's top level before this component existed;
        # the alias keeps their URNs, so wrapping them replaced nothing.
        child = pulumi.ResourceOptions(
            parent=self, aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)]
        )

        consumers = settings.sharing.role_arns(settings.partition)
        registry = _shared_registry(self, settings)
        # Declared before storage: the buckets may require the network's S3 endpoint.
        network, placement = _network(self, settings, naming, account, registry)
        storage = Storage(
            "storage",
            StorageArgs(
                settings=settings.storage,
                naming=naming,
                account_id=account,
                consumer_role_arns=consumers,
                endpoint_only=_endpoint_only(settings, naming, account, placement),
            ),
            opts=child,
        )
        self.flow_logs = None
        if network is not None:
            # After storage: the flow-log group is encrypted with the stack's key.
            self.flow_logs = VpcFlowLogs(
                "network-flow-logs",
                VpcFlowLogsArgs(
                    naming=naming,
                    account_id=account,
                    vpc_id=network.vpc.id,
                    kms_key_arn=storage.key.arn,
                    retention_days=settings.network.flow_log_retention_days,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
        role = SageMakerExecutionRole(
            "sagemaker-execution",
            ExecutionRoleArgs(
                naming=naming,
                account_id=account,
                kms_key_arn=storage.key.arn,
                data_bucket_arn=storage.bucket(BucketPurpose.DATA).arn,
                artifacts_bucket_arn=storage.bucket(BucketPurpose.ARTIFACTS).arn,
                capture_bucket_arn=storage.bucket(BucketPurpose.CAPTURE).arn,
                vpc=placement.vpc_spec() if placement else None,
            ),
            opts=child,
        )
        where = StackLocation(
            naming=naming,
            account_id=account,
            kms_key_arn=storage.key.arn,
            data_bucket=storage.bucket(BucketPurpose.DATA).name,
            artifacts_bucket=storage.bucket(BucketPurpose.ARTIFACTS).name,
            capture_bucket=storage.bucket(BucketPurpose.CAPTURE).name,
            network=placement,
        )

        training = TrainingPipeline(
            "training",
            TrainingPipelineArgs(settings=settings, where=where, code=code, dataset=dataset),
            opts=child,
        )

        alerts = AlertTopic(
            "alerts",
            AlertTopicArgs(where=where, emails=settings.monitoring.alarm_emails),
            opts=child,
        )

        serving = monitoring = None
        model = settings.serving.model
        if model is not None:
            serving = ModelEndpoint(
                "serving",
                ModelEndpointArgs(
                    settings=settings,
                    where=where,
                    alarm_actions=[alerts.arn],
                    registry=registry,
                ),
                # The registry must exist before a model can name one of its packages.
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(depends_on=[training.model_package_group])
                ),
            )

            monitoring = EndpointMonitoring(
                "monitoring",
                EndpointMonitoringArgs(
                    settings=settings,
                    where=where,
                    alert_topic_arn=alerts.arn,
                    endpoint_alarms=list(serving.alarms.alarms.values()),
                    training_pipeline_arn=training.pipeline.arn,
                    code=code,
                    baseline=_served_model_reference(model, naming, account, registry),
                    registry=registry,
                ),
                opts=child,
            )

        # Batch scores the served version, in its own pipeline (infra/components/batch_pipeline.py).
        batch = None
        if settings.batch.enabled and model is not None:
            batch = BatchPipeline(
                "batch",
                BatchPipelineArgs(
                    settings=settings,
                    where=where,
                    execution_role_arn=role.arn,
                    execution_role_name=role.role.name,
                    code=code,
                    registry=registry,
                ),
                # A packageVersion names a package of this stack's registry.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[training.model_package_group]),
            )
        elif settings.batch.enabled:
            pulumi.log.warn(
                "mlops:batch is enabled but serving.model is not set: no batch pipeline"
            )

        self.registry_policy = None
        if consumers:
            group = training.model_package_group
            self.registry_policy = aws.sagemaker.ModelPackageGroupPolicy(
                f"{name}-registry-sharing",
                model_package_group_name=group.model_package_group_name,
                resource_policy=group.arn.apply(
                    lambda arn: json.dumps(registry_resource_policy(arn, consumers))
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.network = network
        self.storage, self.execution_role, self.training = storage, role, training
        self.alerts, self.serving, self.monitoring = alerts, serving, monitoring
        self.batch = batch
        self.outputs = _outputs(self, settings, code)
        self.register_outputs(self.outputs)


def _outputs(
    env: MlopsEnvironment, settings: Settings, code: CodeFiles
) -> dict[str, pulumi.Input[object]]:
    """What the environment exports, by the names the CLI and CI read."""
    storage, training, serving, monitoring = env.storage, env.training, env.serving, env.monitoring
    outputs: dict[str, pulumi.Input[object]] = {
        "environment": settings.environment.value,
        "region": settings.region,
        "kmsKeyArn": storage.key.arn,
        **{f"{purpose.camel}Bucket": storage.bucket(purpose).name for purpose in BucketPurpose},
        "executionRoleArn": env.execution_role.arn,
        "trainingPipelineName": training.pipeline.pipeline_name,
        "trainingPipelineArn": training.pipeline.arn,
        "modelPackageGroupName": training.model_package_group.model_package_group_name,
        "retrainingScheduleState": training.schedule.state,
        "codeSourcedirKey": code.sourcedir.key,
        "alertsTopicArn": env.alerts.arn,
        "modelPackageGroupArn": training.model_package_group.arn,
    }
    if serving is not None:
        outputs["endpointName"] = serving.endpoint.name
        outputs["endpointConfigName"] = serving.configuration.name
        outputs["servingModelName"] = serving.model.name
        outputs["rollbackAlarmNames"] = serving.alarms.names
    if monitoring is not None:
        outputs["dashboardName"] = monitoring.dashboard.dashboard_name
        if monitoring.drift_pipeline is not None:
            outputs["driftPipelineName"] = monitoring.drift_pipeline.pipeline_name
            outputs["driftAlarmName"] = monitoring.alarms["drift"].name
        if monitoring.quality_pipeline is not None:
            outputs["qualityPipelineName"] = monitoring.quality_pipeline.pipeline_name
            outputs["qualityAlarmName"] = monitoring.alarms[QUALITY_ALARM].name
    if env.batch is not None:
        outputs["batchPipelineName"] = env.batch.pipeline.pipeline_name
    if training.baseline_job is not None:
        outputs["baselineTrainingJobName"] = training.baseline_job.training_job_name
    return outputs


def _served_model_reference(
    model: ModelRef,
    naming: Naming,
    account: pulumi.Input[str],
    registry: RegistryLocation | None,
) -> pulumi.Output[str]:
    """The served model as the drift job finds its baseline: package ARN or archive URI."""
    if model.package_version is not None and registry is not None:
        return registry.package_arn(model.package_version)
    return pulumi.Output.from_input(account).apply(lambda a: naming.served_model(model, a))


def _shared_registry(environment: MlopsEnvironment, settings: Settings) -> RegistryLocation | None:
    """The tooling stack's registry, read from its outputs (`pulumi.StackReference`)."""
    if settings.shared_registry is None:
        return None
    reference = pulumi.StackReference(
        settings.shared_registry.stack, opts=pulumi.ResourceOptions(parent=environment)
    )
    return RegistryLocation(
        model_package_group_arn=reference.require_output("modelPackageGroupArn"),
        artifacts_bucket=reference.require_output("artifactsBucket"),
        kms_key_arn=reference.require_output("kmsKeyArn"),
    )


def _network(
    environment: MlopsEnvironment,
    settings: Settings,
    naming: Naming,
    account: pulumi.Output[str],
    registry: RegistryLocation | None,
) -> tuple[PrivateNetwork | None, NetworkPlacement | None]:
    """The stack's own VPC (create), the platform's (existing), or none."""
    config = settings.network
    if config.mode is NetworkMode.NONE:
        return None, None
    if config.mode is NetworkMode.EXISTING:
        return None, NetworkPlacement(
            subnet_ids=list(config.subnet_ids),
            security_group_ids=list(config.security_group_ids),
            s3_endpoint_id=config.s3_endpoint_id,
        )
    from pipelines import sdk
    from training.packaging import FRAMEWORK_VERSION

    network = PrivateNetwork(
        "network",
        PrivateNetworkArgs(
            settings=config,
            naming=naming,
            account_id=account,
            bucket_names=[naming.bucket(purpose, account) for purpose in LOGGED_PURPOSES],
            image_uris=[
                sdk.image_uri(naming.region, FRAMEWORK_VERSION, scope)
                for scope in ("training", "inference")
            ],
            extra_bucket_names=[registry.artifacts_bucket] if registry else [],
            extra_kms_key_arns=[registry.kms_key_arn] if registry else [],
            extra_sagemaker_arns=[registry.model_package_group_arn] if registry else [],
        ),
        opts=pulumi.ResourceOptions(parent=environment),
    )
    return network, network.placement


def _endpoint_only(
    settings: Settings,
    naming: Naming,
    account: pulumi.Output[str],
    placement: NetworkPlacement | None,
) -> EndpointOnly | None:
    """The job roles the buckets refuse outside the S3 endpoint (network.requireS3Endpoint)."""
    if not settings.network.require_s3_endpoint or placement is None:
        return None
    if placement.s3_endpoint_id is None:
        raise ValueError("network.requireS3Endpoint needs the S3 endpoint's ID")
    return EndpointOnly(
        endpoint_id=placement.s3_endpoint_id,
        role_arns=account.apply(
            lambda a: [
                f"arn:{naming.partition}:iam::{a}:role/{naming.role(suffix)}"
                for suffix in IN_VPC_JOB_ROLES
            ]
        ),
    )
