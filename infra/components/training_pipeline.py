"""Retraining as infrastructure: registry, code and data in S3, roles, pipeline, schedule.

Pulumi uploads the code bundle and the shipped dataset under content-hashed keys, so the
pipeline definition (built offline with the SageMaker SDK, see pipelines/) changes exactly
when code or data change. Optionally a baseline training job trains one model when the
stack is created, from the same image, code and data.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components.location import StackLocation
from infra.components.pipeline_schedule import PipelineScheduleArgs, declare_pipeline_schedule
from infra.components.service_role import ServiceRole, ServiceRoleArgs, policy_names
from infra.config.settings import Settings
from infra.naming import Naming
from infra.policies import Document
from infra.policies.execution_role import trust_policy as sagemaker_trust_policy
from infra.policies.training import (
    TrainingScope,
    model_card_job_policies,
    pipeline_policies,
    processing_job_policies,
    training_job_policies,
)
from infra.stack_files import CodeFiles, DatasetFiles, StackFile
from pipelines.spec import (
    TRAINING_CODE_CHANNEL,
    TRAINING_JOB_ENVIRONMENT,
    TRAINING_SUBMIT_DIRECTORY,
    ApprovalStatus,
    BiasSpec,
    Facet,
    TrainingPipelineSpec,
    TuningSpec,
    VpcSpec,
    job_environment,
)
from training.features import Hyperparameters
from training.hashing import sha256_bytes
from training.packaging import FRAMEWORK_VERSION

# Pulumi waits for the baseline job to finish; allow its runtime plus provisioning.
BASELINE_PROVISIONING_MINUTES = 30


@dataclass(frozen=True)
class TrainingPipelineArgs:
    settings: Settings
    where: StackLocation
    code: CodeFiles
    dataset: DatasetFiles


@dataclass(frozen=True)
class _Resolved:
    """The Output values the definition and policies need, in one place."""

    account_id: str
    kms_key_arn: str
    data_bucket: str
    artifacts_bucket: str
    processing_role_arn: str
    training_role_arn: str
    model_card_role_arn: str
    vpc: VpcSpec | None


class TrainingPipeline(pulumi.ComponentResource):
    model_package_group: aws.sagemaker.ModelPackageGroup
    pipeline: aws.sagemaker.Pipeline
    schedule: aws.scheduler.Schedule
    baseline_job: aws.sagemaker.TrainingJob | None

    def __init__(
        self, name: str, args: TrainingPipelineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlopskit:training:TrainingPipeline", name, None, opts)
        settings, naming = args.settings, args.where.naming
        training = settings.training
        child = pulumi.ResourceOptions(parent=self)

        code_objects = [
            self._upload(
                f"{name}-code-sourcedir", args.where.artifacts_bucket, args, args.code.sourcedir
            ),
            self._upload(
                f"{name}-code-runner", args.where.artifacts_bucket, args, args.code.runner
            ),
        ]
        data_objects = [
            self._upload(f"{name}-dataset-csv", args.where.data_bucket, args, args.dataset.csv),
            self._upload(
                f"{name}-dataset-manifest", args.where.data_bucket, args, args.dataset.manifest
            ),
        ]

        self.model_package_group = aws.sagemaker.ModelPackageGroup(
            name,
            model_package_group_name=naming.model_package_group,
            model_package_group_description=f"Versions of the {naming.prefix} model",
            # The registry's history (versions, approvals, metrics) is data: prod keeps it.
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=settings.storage.protect_data,
                retain_on_delete=settings.storage.protect_data,
            ),
        )

        def scope_of(values: list[Any]) -> TrainingScope:
            account, key, data, artifacts, vpc = values
            arn = f"arn:{naming.partition}:iam::{account}:role/"
            return TrainingScope(
                partition=naming.partition,
                region=naming.region,
                account_id=account,
                prefix=naming.prefix,
                kms_key_arn=key,
                data_bucket_arn=f"arn:{naming.partition}:s3:::{data}",
                artifacts_bucket_arn=f"arn:{naming.partition}:s3:::{artifacts}",
                model_package_group=naming.model_package_group,
                pipeline_name=naming.training_pipeline,
                processing_role_arn=arn + naming.role("processing-job"),
                training_role_arn=arn + naming.role("training-job"),
                model_card_role_arn=arn + naming.role("model-card-job"),
                tuning=training.tuning.enabled,
                vpc=vpc,
            )

        scope = pulumi.Output.all(
            args.where.account_id,
            args.where.kms_key_arn,
            args.where.data_bucket,
            args.where.artifacts_bucket,
            args.where.vpc_spec(),
        ).apply(scope_of)
        sagemaker_trust = json.dumps(sagemaker_trust_policy())

        def sagemaker_role(
            suffix: str,
            description: str,
            policies: Callable[[TrainingScope], dict[str, Document]],
        ) -> ServiceRole:
            return ServiceRole(
                f"{name}-{suffix}",
                ServiceRoleArgs(
                    role_name=naming.role(suffix),
                    description=f"{description} of the {naming.training_pipeline} pipeline",
                    trust_policy=sagemaker_trust,
                    # Names are static so every policy shows in a preview.
                    policy_names=policy_names(policies, TrainingScope, vpc=args.where.vpc_stand_in),
                    policies=scope.apply(policies),
                ),
                opts=child,
            )

        self.processing_role = sagemaker_role(
            "processing-job", "Processing jobs", processing_job_policies
        )
        self.training_role = sagemaker_role("training-job", "Training jobs", training_job_policies)
        self.model_card_role = sagemaker_role(
            "model-card-job", "The model-card job", model_card_job_policies
        )
        self.pipeline_role = sagemaker_role("training-pipeline", "The steps", pipeline_policies)

        image = _image_uri(naming.region)
        resolved = pulumi.Output.all(
            args.where.account_id,
            args.where.kms_key_arn,
            args.where.data_bucket,
            args.where.artifacts_bucket,
            self.processing_role.arn,
            self.training_role.arn,
            self.model_card_role.arn,
            args.where.vpc_spec(),
        ).apply(lambda v: _Resolved(*v))
        definition = resolved.apply(
            lambda r: _build_definition(_spec(settings, naming, args, r, image))
        )
        self.pipeline = aws.sagemaker.Pipeline(
            name,
            pipeline_name=naming.training_pipeline,
            pipeline_display_name=naming.training_pipeline,
            pipeline_description=(
                f"Validate, train, evaluate and register the {naming.prefix} model "
                f"(gates: {training.metric_name} >= {training.metric_threshold}, "
                f"{len(settings.bias.limits)} bias limit(s))"
            ),
            pipeline_definition=definition,
            role_arn=self.pipeline_role.arn,
            # Its steps read code and data that must exist before it can run, and its role
            # must hold its permissions before the first (scheduled) start.
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*code_objects, *data_objects, *self.pipeline_role.policies],
            ),
        )

        self.scheduler_role, self.schedule = declare_pipeline_schedule(
            name,
            PipelineScheduleArgs(
                role_name=naming.role("training-schedule"),
                schedule_name=naming.retraining_schedule,
                expression=training.schedule,
                enabled=settings.retraining_schedule_enabled,
                pipeline_name=naming.training_pipeline,
                pipeline_arn=self.pipeline.arn,
                naming=naming,
                account_id=args.where.account_id,
                kms_key_arn=args.where.kms_key_arn,
            ),
            parent=self,
        )

        self.baseline_job = None
        if training.baseline_job:
            self.baseline_job = self._baseline_job(
                name, args, image, data_objects + code_objects, self.training_role
            )

        self.register_outputs(
            {
                "pipelineName": self.pipeline.pipeline_name,
                "pipelineArn": self.pipeline.arn,
                "modelPackageGroupName": self.model_package_group.model_package_group_name,
                "scheduleName": self.schedule.name,
            }
        )

    def _upload(
        self,
        name: str,
        bucket: pulumi.Input[str],
        args: TrainingPipelineArgs,
        file: StackFile,
    ) -> aws.s3.BucketObjectv2:
        # Keys hold the content hash: a new version is a new object, never an overwrite.
        # Kept in AWS when prod drops it from the program, as other prod data is.
        protect = args.settings.storage.protect_data
        return aws.s3.BucketObjectv2(
            name,
            bucket=bucket,
            key=file.key,
            source=pulumi.FileAsset(str(file.path)),
            content_type=file.content_type,
            server_side_encryption="aws:kms",
            kms_key_id=args.where.kms_key_arn,
            bucket_key_enabled=True,
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=protect),
        )

    def _baseline_job(
        self,
        name: str,
        args: TrainingPipelineArgs,
        image: str,
        inputs: list[aws.s3.BucketObjectv2],
        role: ServiceRole,
    ) -> aws.sagemaker.TrainingJob:
        training, naming = args.settings.training, args.where.naming
        # Named by what it trains on and with, so new code or data trains a new baseline;
        # a training job is immutable and its name unique per account and region.
        inputs_hash = sha256_bytes(
            f"{args.code.sourcedir.sha256}{args.dataset.csv.sha256}".encode()
        )
        job_name = f"{naming.prefix}-baseline-{inputs_hash[:12]}"

        def s3_channel(
            channel: str, uri: pulumi.Input[str]
        ) -> aws.sagemaker.TrainingJobInputDataConfigArgs:
            return aws.sagemaker.TrainingJobInputDataConfigArgs(
                channel_name=channel,
                data_source=aws.sagemaker.TrainingJobInputDataConfigDataSourceArgs(
                    s3_data_source=aws.sagemaker.TrainingJobInputDataConfigDataSourceS3DataSourceArgs(
                        s3_data_type="S3Prefix",
                        s3_uri=uri,
                        s3_data_distribution_type="FullyReplicated",
                    )
                ),
            )

        return aws.sagemaker.TrainingJob(
            name,
            training_job_name=job_name,
            role_arn=role.arn,
            algorithm_specification=aws.sagemaker.TrainingJobAlgorithmSpecificationArgs(
                training_image=image, training_input_mode="File"
            ),
            hyper_parameters=_hyperparameters(naming.region),
            input_data_configs=[
                s3_channel(
                    TRAINING_CODE_CHANNEL,
                    pulumi.Output.concat(
                        "s3://", args.where.artifacts_bucket, "/", args.code.sourcedir.key
                    ),
                ),
                # Only a raw channel: train.py validates and splits it as the pipeline does.
                s3_channel(
                    "raw",
                    pulumi.Output.concat("s3://", args.where.data_bucket, "/", args.dataset.prefix),
                ),
            ],
            output_data_config=aws.sagemaker.TrainingJobOutputDataConfigArgs(
                s3_output_path=pulumi.Output.concat(
                    "s3://", args.where.artifacts_bucket, "/models/baseline"
                ),
                kms_key_id=args.where.kms_key_arn,
            ),
            resource_config=aws.sagemaker.TrainingJobResourceConfigArgs(
                instance_type=training.instance_type,
                instance_count=1,
                volume_size_in_gb=training.volume_size_gb,
                volume_kms_key_id=args.where.kms_key_arn,
            ),
            stopping_condition=aws.sagemaker.TrainingJobStoppingConditionArgs(
                max_runtime_in_seconds=training.max_runtime_minutes * 60
            ),
            environment={**job_environment(args.code.commit), **TRAINING_JOB_ENVIRONMENT},
            enable_network_isolation=True,
            enable_inter_container_traffic_encryption=True,
            vpc_config=(
                args.where.network.training_job_vpc_config() if args.where.network else None
            ),
            timeouts=aws.sagemaker.TrainingJobTimeoutsArgs(
                create=f"{training.max_runtime_minutes + BASELINE_PROVISIONING_MINUTES}m"
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*inputs, *role.policies]),
        )


def _image_uri(region: str) -> str:
    from pipelines import sdk

    return sdk.image_uri(region, FRAMEWORK_VERSION, "training")


def _model_hyperparameters() -> dict[str, str]:
    """Every hyperparameter spelled out, so jobs and the registry record what was used."""
    return {name: str(value) for name, value in vars(Hyperparameters()).items()}


def _hyperparameters(region: str) -> dict[str, str]:
    """The model's, plus what the image's training toolkit needs to run train.py."""
    return {
        **_model_hyperparameters(),
        "sagemaker_program": "train.py",
        "sagemaker_submit_directory": TRAINING_SUBMIT_DIRECTORY,
        "sagemaker_region": region,
    }


def _spec(
    settings: Settings, naming: Naming, args: TrainingPipelineArgs, r: _Resolved, image: str
) -> TrainingPipelineSpec:
    training = settings.training
    # Settings allow auto-approval in dev only; everywhere else a person approves.
    approval = ApprovalStatus.APPROVED if training.auto_approve else ApprovalStatus.PENDING
    return TrainingPipelineSpec(
        region=naming.region,
        pipeline_name=naming.training_pipeline,
        model_package_group=naming.model_package_group,
        processing_role_arn=r.processing_role_arn,
        training_role_arn=r.training_role_arn,
        kms_key_arn=r.kms_key_arn,
        data_bucket=r.data_bucket,
        artifacts_bucket=r.artifacts_bucket,
        code=args.code.location(r.artifacts_bucket),
        default_input_uri=f"s3://{r.data_bucket}/{args.dataset.prefix}",
        image_uri=image,
        processing_instance_type=training.processing_instance_type,
        training_instance_type=training.instance_type,
        serving_instance_types=(settings.serving.instance_type,),
        training_instance_count=training.instance_count,
        max_runtime_seconds=training.max_runtime_minutes * 60,
        volume_size_gb=training.volume_size_gb,
        metric_name=training.metric_name,
        metric_threshold=training.metric_threshold,
        approval_status=approval,
        model_card_role_arn=r.model_card_role_arn,
        model_card_prefix=naming.model_card_prefix,
        model_name=settings.service_name,
        bias=bias_spec(settings),
        explain_rows=settings.explainability.explain_rows,
        background_rows=settings.explainability.background_rows,
        hyperparameters=_model_hyperparameters(),
        tuning=tuning_spec(settings),
        vpc=r.vpc,
    )


def tuning_spec(settings: Settings) -> TuningSpec | None:
    """The stack's search when it tunes; None keeps the single training job."""
    tuning = settings.training.tuning
    if not tuning.enabled:
        return None
    return TuningSpec(
        max_jobs=tuning.max_jobs,
        max_parallel_jobs=tuning.max_parallel_jobs,
        early_stopping=str(tuning.early_stopping),
        ranges=tuning.search_ranges,
    )


def bias_spec(settings: Settings) -> BiasSpec:
    """The stack's facets and limits as the evaluate and quality jobs take them."""
    bias = settings.bias
    return BiasSpec(
        facets=tuple(Facet(f.name, f.sensitive_values) for f in bias.facets),
        limits=tuple((str(metric), limit) for metric, limit in bias.limits.items()),
    )


def _build_definition(spec: TrainingPipelineSpec) -> str:
    from pipelines.training_pipeline import build_definition

    return build_definition(spec)
