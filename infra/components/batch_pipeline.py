"""Batch inference: the served model scores an S3 prefix, in its own pipeline.

    batch model (network-isolated, the stack's execution role, the served version)
    batch pipeline <prefix>-batch: Transform -> SplitBatchOutput (bad rows "errors" only)
    schedule (mlops:batch schedule) --> pipeline; otherwise `mlops batch --stack` on demand

Batch is a pipeline of its own, not a step after registration: scoring has its own cadence
and inputs (new prefixes of customers to score), must use the registry version the stack
serves (``serving.model``, resolved as the endpoint resolves it) and must not run again
whenever a model is trained.

The model is declared here, not created by a pipeline step and not the endpoint's:

- a ModelStep would create a new SageMaker model on every run (nightly in prod), none of
  them ever deleted; declared here there is one per served version, replaced with it;
- the endpoint's model runs as the serving role (which reads neither batch inputs nor writes
  outputs) and is isolated only when serving is (serverless dev is not); the batch model is
  always isolated and runs as the execution role, which reads the stack's buckets;
- the pipeline role may transform with this model alone (``sagemaker:ModelArn``), so it
  needs neither CreateModel nor a role to pass to the transform.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from inference.batch_contract import BadRows
from infra.components.location import StackLocation
from infra.components.model_endpoint import ModelEndpointArgs, RegistryLocation
from infra.components.model_endpoint import _container as served_container
from infra.components.pipeline_schedule import PipelineScheduleArgs, declare_pipeline_schedule
from infra.components.service_role import ServiceRole, ServiceRoleArgs
from infra.config.settings import Settings
from infra.naming import Naming
from infra.policies.batch import (
    BatchScope,
    batch_pipeline_policies,
    execution_role_batch_policy,
    pipeline_policy_names,
)
from infra.policies.execution_role import trust_policy
from infra.policies.serving import shared_registry_policy
from infra.stack_files import CodeFiles
from pipelines.spec import VpcSpec
from training.packaging import FRAMEWORK_VERSION

SPLIT_VOLUME_GB = 30


@dataclass(frozen=True)
class BatchPipelineArgs:
    settings: Settings
    where: StackLocation
    # The stack's SageMaker execution role: the model and the split job run as it.
    execution_role_arn: pulumi.Input[str]
    execution_role_name: pulumi.Input[str]
    code: CodeFiles
    # The registry packageVersion resolves against: this stack's, or a shared one.
    registry: RegistryLocation | None = None


class BatchPipeline(pulumi.ComponentResource):
    model: aws.sagemaker.Model
    role: ServiceRole
    job_policy: aws.iam.RolePolicy
    pipeline: aws.sagemaker.Pipeline
    schedule: aws.scheduler.Schedule | None

    def __init__(
        self, name: str, args: BatchPipelineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlopskit:batch:BatchPipeline", name, None, opts)
        settings, where, naming = args.settings, args.where, args.where.naming
        batch = settings.batch
        if settings.serving.model is None:
            raise ValueError("BatchPipeline needs serving.model: batch scores the served version")
        split = batch.bad_rows is BadRows.ERRORS

        grants: list[pulumi.Resource] = []
        if args.registry is not None:
            # The package's archive lives in the tooling account, as for the endpoint.
            registry = args.registry
            grants.append(
                aws.iam.RolePolicy(
                    f"{name}-shared-registry",
                    role=args.execution_role_name,
                    name="batch-shared-registry",
                    policy=pulumi.Output.all(registry.artifacts_bucket, registry.kms_key_arn).apply(
                        lambda v: json.dumps(
                            shared_registry_policy(
                                f"arn:{naming.partition}:s3:::{v[0]}", v[1], naming.region
                            )
                        )
                    ),
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        self.model = aws.sagemaker.Model(
            f"{naming.prefix}-batch-model",
            # Auto-named, like the endpoint's: a new served version's model exists before
            # the old one goes, and the pipeline switches to it in the same update.
            execution_role_arn=args.execution_role_arn,
            enable_network_isolation=True,
            # A transform job runs in its model's VPC (CreateTransformJob has no VpcConfig).
            vpc_config=where.network.model_vpc_config() if where.network else None,
            primary_container=served_container(
                settings.serving.model,
                ModelEndpointArgs(settings=settings, where=where, registry=args.registry),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=grants),
        )

        scope = pulumi.Output.all(
            where.account_id,
            where.kms_key_arn,
            args.execution_role_arn,
            self.model.arn,
            where.artifacts_bucket,
            where.capture_bucket,
            where.vpc_spec(),
        ).apply(
            lambda v: BatchScope(
                partition=naming.partition,
                region=naming.region,
                account_id=v[0],
                kms_key_arn=v[1],
                execution_role_arn=v[2],
                model_arn=v[3],
                instance_type=batch.instance_type,
                split_instance_type=settings.training.processing_instance_type,
                artifacts_bucket_arn=f"arn:{naming.partition}:s3:::{v[4]}",
                capture_bucket_arn=f"arn:{naming.partition}:s3:::{v[5]}",
                pipeline_name=naming.batch_pipeline,
                vpc=v[6],
            )
        )
        self.job_policy = aws.iam.RolePolicy(
            f"{name}-job-outputs",
            role=args.execution_role_name,
            name="batch-outputs",
            policy=scope.apply(
                lambda s: json.dumps(execution_role_batch_policy(s, capture=batch.capture))
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.role = ServiceRole(
            f"{name}-pipeline-role",
            ServiceRoleArgs(
                role_name=naming.role("batch-pipeline"),
                description=f"The steps of {naming.batch_pipeline}",
                trust_policy=json.dumps(trust_policy()),
                policy_names=pipeline_policy_names(split),
                policies=scope.apply(lambda s: batch_pipeline_policies(s, split=split)),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        definition = pulumi.Output.all(
            where.kms_key_arn,
            where.data_bucket,
            where.artifacts_bucket,
            where.capture_bucket,
            args.execution_role_arn,
            self.model.name,
            where.vpc_spec(),
        ).apply(lambda v: batch_definition(settings, naming, args.code, *v))
        self.pipeline = aws.sagemaker.Pipeline(
            name,
            pipeline_name=naming.batch_pipeline,
            pipeline_display_name=naming.batch_pipeline,
            pipeline_description=(
                f"Score an S3 prefix with the served model on {batch.instance_count} x "
                f"{batch.instance_type} (bad rows: {batch.bad_rows.value})"
            ),
            pipeline_definition=definition,
            role_arn=self.role.arn,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[*self.role.policies, self.job_policy]
            ),
        )
        self.schedule = None
        if batch.schedule is not None:
            _, self.schedule = declare_pipeline_schedule(
                f"{name}-schedule",
                PipelineScheduleArgs(
                    role_name=naming.role("batch-schedule"),
                    schedule_name=naming.batch_schedule,
                    expression=batch.schedule,
                    enabled=True,
                    pipeline_name=naming.batch_pipeline,
                    pipeline_arn=self.pipeline.arn,
                    naming=naming,
                    account_id=where.account_id,
                    kms_key_arn=where.kms_key_arn,
                ),
                parent=self,
            )
        self.register_outputs(
            {
                "pipelineName": self.pipeline.pipeline_name,
                "modelName": self.model.name,
                "roleArn": self.role.arn,
            }
        )


def batch_definition(
    settings: Settings,
    naming: Naming,
    code: CodeFiles,
    kms_key_arn: str,
    data_bucket: str,
    artifacts_bucket: str,
    capture_bucket: str,
    role_arn: str,
    model_name: str,
    vpc: VpcSpec | None,
) -> str:
    """The pipeline's definition once Pulumi has resolved names and ARNs."""
    from pipelines import sdk
    from pipelines.batch_pipeline import BatchPipelineSpec, TransformSpec, build_definition

    batch = settings.batch
    return build_definition(
        BatchPipelineSpec(
            region=naming.region,
            pipeline_name=naming.batch_pipeline,
            role_arn=role_arn,
            kms_key_arn=kms_key_arn,
            artifacts_bucket=artifacts_bucket,
            model_name=model_name,
            input_uri=naming.batch_input_uri(data_bucket),
            output_uri=naming.batch_output_uri(artifacts_bucket),
            transform=TransformSpec(
                instance_type=batch.instance_type,
                instance_count=batch.instance_count,
                max_payload_mb=batch.max_payload_mb,
                max_concurrent_transforms=batch.max_concurrent_transforms,
                content_type=batch.content_type.value,
                bad_rows=batch.bad_rows,
            ),
            code=code.location(artifacts_bucket),
            image_uri=sdk.image_uri(naming.region, FRAMEWORK_VERSION, "training"),
            split_instance_type=settings.training.processing_instance_type,
            volume_size_gb=SPLIT_VOLUME_GB,
            # SageMaker has no run-time limit for transform jobs; the split job gets the
            # batch limit (mlops:batch maxRuntimeMinutes).
            max_runtime_seconds=batch.max_runtime_minutes * 60,
            capture_uri=naming.batch_capture_uri(capture_bucket) if batch.capture else None,
            vpc=vpc,
            tags=tuple(sorted(settings.default_tags.items())),
        )
    )
