"""Serving: the model a stack's config names, on an endpoint that updates without downtime.

Replacement semantics, which are the point of this component:

- SageMaker models and endpoint configurations are immutable (every input forces a new
  one). Both are therefore auto-named (the model by Pulumi, the configuration through
  ``name_prefix``), so a change creates the new one *before* the old one is deleted. The
  endpoint, whose name clients call, is updated in place to the new configuration (a
  blue/green update), and only then are the old configuration and model deleted.
- ``delete_before_replace`` stays off everywhere. The endpoint's own name never changes; if
  something ever forced its replacement, creating the same name again would fail and
  leave the live endpoint alone, instead of deleting it first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

# The provider's generated names run past the line limit.
from pulumi_aws.sagemaker import (
    EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationArgs as Routing,
)
from pulumi_aws.sagemaker import (
    EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationCanarySizeArgs as Canary,  # noqa: E501
)
from pulumi_aws.sagemaker import (
    EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationLinearStepSizeArgs as Linear,  # noqa: E501
)

from infra.components.endpoint_alarms import EndpointAlarms, EndpointAlarmsArgs
from infra.components.location import StackLocation
from infra.components.service_role import ServiceRole, ServiceRoleArgs, policy_names
from infra.config.settings import EndpointKind, ModelRef, Settings, TrafficShift
from infra.naming import CapturePrefix, Naming, Variant
from infra.policies.execution_role import trust_policy
from infra.policies.serving import ServingScope, serving_policies, shared_registry_policy
from pipelines.spec import SERVING_ENVIRONMENT
from training.packaging import FRAMEWORK_VERSION

SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
INVOCATIONS_PER_INSTANCE = "SageMakerVariantInvocationsPerInstance"
CAPTURED_CSV = ("text/csv",)
CAPTURED_JSON = ("application/json",)


@dataclass(frozen=True)
class ModelEndpointArgs:
    settings: Settings
    where: StackLocation
    # Where the endpoint's alarms notify (monitoring adds a topic here).
    alarm_actions: Sequence[pulumi.Input[str]] = field(default_factory=tuple)
    # The registry packageVersion resolves against: this stack's, or a shared one.
    registry: RegistryLocation | None = None


@dataclass(frozen=True)
class RegistryLocation:
    """A registry in another (tooling) account, read from its stack's outputs."""

    model_package_group_arn: pulumi.Input[str]
    artifacts_bucket: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]

    def package_arn(self, version: int) -> pulumi.Output[str]:
        return pulumi.Output.from_input(self.model_package_group_arn).apply(
            lambda group: group.replace(":model-package-group/", ":model-package/") + f"/{version}"
        )


class ModelEndpoint(pulumi.ComponentResource):
    role: ServiceRole
    model: aws.sagemaker.Model
    shadow_model: aws.sagemaker.Model | None
    alarms: EndpointAlarms
    configuration: aws.sagemaker.EndpointConfiguration
    log_group: aws.cloudwatch.LogGroup
    endpoint: aws.sagemaker.Endpoint
    scaling_target: aws.appautoscaling.Target | None
    scaling_policy: aws.appautoscaling.Policy | None

    def __init__(
        self, name: str, args: ModelEndpointArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlopskit:serving:ModelEndpoint", name, None, opts)
        settings, naming = args.settings, args.where.naming
        serving = settings.serving
        if serving.model is None:
            raise ValueError("ModelEndpoint needs serving.model")
        in_vpc = _in_vpc(args)

        scope = pulumi.Output.all(
            args.where.account_id,
            args.where.kms_key_arn,
            args.where.artifacts_bucket,
            args.where.capture_bucket,
            args.where.vpc_spec() if in_vpc else pulumi.Output.from_input(None),
        ).apply(
            lambda v: ServingScope(
                partition=naming.partition,
                region=naming.region,
                account_id=v[0],
                prefix=naming.prefix,
                kms_key_arn=v[1],
                artifacts_bucket_arn=f"arn:{naming.partition}:s3:::{v[2]}",
                capture_bucket_arn=f"arn:{naming.partition}:s3:::{v[3]}",
                vpc=v[4],
            )
        )
        self.role = ServiceRole(
            f"{name}-role",
            ServiceRoleArgs(
                role_name=naming.role("serving"),
                description=f"Containers and data capture of the {naming.endpoint} endpoint",
                trust_policy=json.dumps(trust_policy()),
                policy_names=policy_names(
                    serving_policies,
                    ServingScope,
                    vpc=args.where.vpc_stand_in if in_vpc else None,
                ),
                policies=scope.apply(serving_policies),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.shared_registry_policy = None
        if args.registry is not None:
            self.shared_registry_policy = aws.iam.RolePolicy(
                f"{name}-role-shared-registry",
                role=self.role.role.id,
                name="shared-registry",
                policy=pulumi.Output.all(
                    args.registry.artifacts_bucket, args.registry.kms_key_arn
                ).apply(
                    lambda v: json.dumps(
                        shared_registry_policy(
                            f"arn:{naming.partition}:s3:::{v[0]}", v[1], naming.region
                        )
                    )
                ),
                opts=pulumi.ResourceOptions(parent=self.role),
            )
        self.model = self._model(f"{naming.prefix}-model", serving.model, args)
        self.shadow_model = (
            self._model(f"{naming.prefix}-shadow-model", serving.shadow, args)
            if serving.shadow is not None
            else None
        )
        self.alarms = EndpointAlarms(
            f"{name}-alarms",
            EndpointAlarmsArgs(
                monitoring=settings.monitoring, naming=naming, alarm_actions=args.alarm_actions
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.configuration = self._configuration(name, args)
        # Where SageMaker writes the endpoint's container logs. Declared here, it keeps them
        # for monitoring.logRetentionDays and encrypts them with the stack key; left to
        # SageMaker, the group would keep them forever under AWS's own encryption.
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=naming.endpoint_log_group,
            retention_in_days=settings.monitoring.log_retention_days,
            kms_key_id=args.where.kms_key_arn,
            opts=pulumi.ResourceOptions(
                parent=self, retain_on_delete=settings.storage.protect_data
            ),
        )
        self.endpoint = aws.sagemaker.Endpoint(
            name,
            name=naming.endpoint,
            endpoint_config_name=self.configuration.name,
            deployment_config=_deployment_config(settings, self.alarms.names),
            opts=pulumi.ResourceOptions(
                parent=self,
                # Creating or updating the endpoint starts containers under the role, and
                # they log into the group (which SageMaker would otherwise create itself).
                depends_on=[*self.role.policies, self.log_group],
                delete_before_replace=False,
            ),
        )

        self.scaling_target = None
        self.scaling_policy = None
        if serving.kind is EndpointKind.INSTANCE and serving.autoscaling:
            self._autoscaling(name, settings, naming)

        self.register_outputs(
            {
                "endpointName": self.endpoint.name,
                "endpointConfigName": self.configuration.name,
                "modelName": self.model.name,
                "alarmNames": self.alarms.names,
                "logGroupName": self.log_group.name,
            }
        )

    def _model(
        self, resource_name: str, ref: ModelRef, args: ModelEndpointArgs
    ) -> aws.sagemaker.Model:
        serving, network = args.settings.serving, args.where.network
        return aws.sagemaker.Model(
            resource_name,
            # No name: Pulumi auto-names it, so a changed model is created before the old
            # one (still used by the live configuration) is deleted.
            execution_role_arn=self.role.arn,
            enable_network_isolation=serving.network_isolation,
            vpc_config=network.model_vpc_config() if network and _in_vpc(args) else None,
            primary_container=_container(ref, args),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=self.role.policies, delete_before_replace=False
            ),
        )

    def _configuration(
        self, name: str, args: ModelEndpointArgs
    ) -> aws.sagemaker.EndpointConfiguration:
        settings, naming = args.settings, args.where.naming
        serving = settings.serving
        instance = serving.kind is EndpointKind.INSTANCE
        if instance:
            primary = aws.sagemaker.EndpointConfigurationProductionVariantArgs(
                variant_name=str(Variant.PRIMARY),
                model_name=self.model.name,
                instance_type=serving.instance_type,
                # Updates reset the count to this; the autoscaler then moves it again.
                initial_instance_count=serving.instance_count,
                initial_variant_weight=1.0,
            )
        else:
            primary = aws.sagemaker.EndpointConfigurationProductionVariantArgs(
                variant_name=str(Variant.PRIMARY),
                model_name=self.model.name,
                serverless_config=aws.sagemaker.EndpointConfigurationProductionVariantServerlessConfigArgs(
                    memory_size_in_mb=serving.serverless_memory_mb,
                    max_concurrency=serving.serverless_max_concurrency,
                ),
            )
        shadow = None
        if self.shadow_model is not None:
            shadow = [
                aws.sagemaker.EndpointConfigurationShadowProductionVariantArgs(
                    variant_name=str(Variant.SHADOW),
                    model_name=self.shadow_model.name,
                    instance_type=serving.instance_type,
                    initial_instance_count=1,
                    # Relative to the primary's 1.0: the share of requests copied to it.
                    initial_variant_weight=serving.shadow_percent / 100,
                )
            ]
        capture = None
        if serving.data_capture_percent > 0:
            capture = aws.sagemaker.EndpointConfigurationDataCaptureConfigArgs(
                enable_capture=True,
                initial_sampling_percentage=serving.data_capture_percent,
                destination_s3_uri=pulumi.Output.concat(
                    "s3://", args.where.capture_bucket, "/", CapturePrefix.DATA_CAPTURE.rstrip("/")
                ),
                kms_key_id=args.where.kms_key_arn,
                capture_options=[
                    aws.sagemaker.EndpointConfigurationDataCaptureConfigCaptureOptionArgs(
                        capture_mode=mode
                    )
                    for mode in ("Input", "Output")
                ],
                capture_content_type_header=aws.sagemaker.EndpointConfigurationDataCaptureConfigCaptureContentTypeHeaderArgs(
                    csv_content_types=list(CAPTURED_CSV), json_content_types=list(CAPTURED_JSON)
                ),
            )
        return aws.sagemaker.EndpointConfiguration(
            name,
            # A unique name per configuration: the replacement exists before the endpoint
            # switches to it, and the old one is deleted only after the switch.
            name_prefix=f"{naming.prefix}-",
            production_variants=[primary],
            shadow_production_variants=shadow,
            data_capture_config=capture,
            # Volume encryption; serverless variants have no volume to encrypt.
            kms_key_arn=args.where.kms_key_arn if instance else None,
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=False),
        )

    def _autoscaling(self, name: str, settings: Settings, naming: Naming) -> None:
        serving = settings.serving
        resource_id = pulumi.Output.concat(
            "endpoint/", self.endpoint.name, "/variant/", str(Variant.PRIMARY)
        )
        # No role_arn: Application Auto Scaling uses its SageMaker service-linked role.
        self.scaling_target = aws.appautoscaling.Target(
            f"{name}-scaling",
            service_namespace="sagemaker",
            scalable_dimension=SCALABLE_DIMENSION,
            resource_id=resource_id,
            min_capacity=serving.min_instances,
            max_capacity=serving.max_instances,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.scaling_policy = aws.appautoscaling.Policy(
            f"{name}-invocations-per-instance",
            name=f"{naming.endpoint}-invocations-per-instance",
            policy_type="TargetTrackingScaling",
            service_namespace=self.scaling_target.service_namespace,
            scalable_dimension=self.scaling_target.scalable_dimension,
            resource_id=self.scaling_target.resource_id,
            target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                target_value=float(serving.target_invocations_per_instance),
                predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                    predefined_metric_type=INVOCATIONS_PER_INSTANCE
                ),
                scale_in_cooldown=serving.scale_in_cooldown_seconds,
                scale_out_cooldown=serving.scale_out_cooldown_seconds,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )


def _container(ref: ModelRef, args: ModelEndpointArgs) -> aws.sagemaker.ModelPrimaryContainerArgs:
    naming = args.where.naming
    if ref.package_version is not None and args.registry is not None:
        return aws.sagemaker.ModelPrimaryContainerArgs(
            model_package_name=args.registry.package_arn(ref.package_version)
        )
    if ref.package_version is not None:
        version = ref.package_version
        return aws.sagemaker.ModelPrimaryContainerArgs(
            model_package_name=pulumi.Output.from_input(args.where.account_id).apply(
                lambda account: naming.model_package_arn(account, version)
            )
        )
    if ref.package_arn is not None:
        # The package carries its image, archive and environment; SageMaker refuses an
        # environment given twice.
        return aws.sagemaker.ModelPrimaryContainerArgs(model_package_name=ref.package_arn)
    return aws.sagemaker.ModelPrimaryContainerArgs(
        image=_serving_image(naming.region),
        model_data_url=ref.data_uri,
        environment=dict(SERVING_ENVIRONMENT),
        mode="SingleModel",
    )


def _serving_image(region: str) -> str:
    from pipelines import sdk

    return sdk.image_uri(region, FRAMEWORK_VERSION, "inference")


def _deployment_config(
    settings: Settings, alarm_names: Sequence[pulumi.Output[str]]
) -> aws.sagemaker.EndpointDeploymentConfigArgs:
    deployment = settings.serving.deployment
    strategy = settings.serving.traffic_shift
    # In instances, not CAPACITY_PERCENT: SageMaker rounds a share of the fleet to whole
    # instances, so only a count makes the traffic share the config states.
    step = deployment.step_instances
    routing = Routing(
        type=strategy.name,
        wait_interval_in_seconds=deployment.wait_minutes * 60,
        canary_size=(
            Canary(type="INSTANCE_COUNT", value=step) if strategy is TrafficShift.CANARY else None
        ),
        linear_step_size=(
            Linear(type="INSTANCE_COUNT", value=step) if strategy is TrafficShift.LINEAR else None
        ),
    )
    return aws.sagemaker.EndpointDeploymentConfigArgs(
        blue_green_update_policy=aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyArgs(
            traffic_routing_configuration=routing,
            termination_wait_in_seconds=deployment.termination_wait_minutes * 60,
            maximum_execution_timeout_in_seconds=deployment.max_minutes * 60,
        ),
        auto_rollback_configuration=aws.sagemaker.EndpointDeploymentConfigAutoRollbackConfigurationArgs(
            alarms=[
                aws.sagemaker.EndpointDeploymentConfigAutoRollbackConfigurationAlarmArgs(
                    alarm_name=alarm_name
                )
                for alarm_name in alarm_names
            ]
        ),
    )


def _in_vpc(args: ModelEndpointArgs) -> bool:
    """SageMaker Serverless Inference takes no VpcConfig: the settings make a VPC stack say
    so (network.serverlessOutsideVpc) before a serverless model gets here."""
    return args.where.network is not None and args.settings.serving.kind is EndpointKind.INSTANCE
