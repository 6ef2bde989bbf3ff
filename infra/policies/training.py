"""Roles of the retraining pipeline: one per job kind, one for the pipeline, one for its schedule.

Each job role can read exactly the inputs its steps mount and write exactly the prefixes its
steps output to. The pipeline role may only start jobs that run network-isolated, with
inter-container encryption and this stack's key, and may only pass the job roles. The one
job with network is PublishModelCard (CreateModelCard is an API call): only a job of that
step may start without isolation, and its role may touch nothing but evaluation reports and
this registry's model cards. The scheduler role may only start this one pipeline.

With a VPC (``vpc``), every job the pipeline starts, the model-card job included, must run
in the stack's subnets and security groups, and each job role may attach its job there
(infra/policies/vpc.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.naming import ArtifactPrefix, DataPrefix, sagemaker_arn
from infra.policies import Document, Statement, document
from infra.policies.execution_role import (
    bucket_access_policy,
    ecr_policy,
    kms_policy,
    sagemaker_logs_policy,
)
from infra.policies.vpc import network_policies, with_vpc_conditions
from pipelines.spec import VpcSpec

# SageMaker Pipelines names the jobs it starts "pipelines-<execution id>-<step>-<token>".
PIPELINE_JOB_PREFIX = "pipelines-"
# ... with the step name in lower case, cut to 20 characters (AWS's sample Pipelines step
# event names processing-job/pipelines-p4jn9xou8a8s-myprocessingstep1-tmgxry49ug; jobs of
# longer step names show the first 20). The model-card step's name is 16 characters.
MODEL_CARD_STEP_JOB = "publishmodelcard"


@dataclass(frozen=True)
class TrainingScope:
    partition: str
    region: str
    account_id: str
    prefix: str
    kms_key_arn: str
    data_bucket_arn: str
    artifacts_bucket_arn: str
    model_package_group: str
    pipeline_name: str
    processing_role_arn: str
    training_role_arn: str
    model_card_role_arn: str
    # The pipeline has a Tune step (training.tuning.enabled): its role may run tuning jobs.
    tuning: bool = False
    # The stack's subnets and security groups; None: jobs run on SageMaker's network.
    vpc: VpcSpec | None = None

    def sagemaker_arn(self, resource: str) -> str:
        return sagemaker_arn(self.partition, self.region, self.account_id, resource)

    @property
    def pipeline_arn(self) -> str:
        return self.sagemaker_arn(f"pipeline/{self.pipeline_name}")


def _data(scope: TrainingScope, prefix: str) -> str:
    return f"{scope.data_bucket_arn}/{prefix}*"


def _artifacts(scope: TrainingScope, prefix: str) -> str:
    return f"{scope.artifacts_bucket_arn}/{prefix}*"


def _job_policies(
    scope: TrainingScope, log_group: str, *, read: list[str], write: list[str]
) -> dict[str, Document]:
    return {
        "s3": bucket_access_policy(
            buckets=[scope.data_bucket_arn, scope.artifacts_bucket_arn], read=read, write=write
        ),
        "kms": kms_policy(scope),
        "logs": sagemaker_logs_policy(scope, [log_group]),
        "ecr": ecr_policy(scope),
        **network_policies(scope.partition, scope.region, scope.account_id, scope.vpc),
    }


def processing_job_policies(scope: TrainingScope) -> dict[str, Document]:
    """Validate-and-split reads raw data; evaluate reads the model and the test split."""
    return _job_policies(
        scope,
        "ProcessingJobs",
        read=[
            _data(scope, DataPrefix.RAW),
            _data(scope, DataPrefix.PROCESSED),
            _artifacts(scope, ArtifactPrefix.CODE),
            _artifacts(scope, ArtifactPrefix.MODELS),
        ],
        write=[_data(scope, DataPrefix.PROCESSED), _artifacts(scope, ArtifactPrefix.EVALUATION)],
    )


def training_job_policies(scope: TrainingScope) -> dict[str, Document]:
    """Training reads the splits (or, for the baseline job, raw data) and writes models."""
    return _job_policies(
        scope,
        "TrainingJobs",
        read=[
            _data(scope, DataPrefix.RAW),
            _data(scope, DataPrefix.PROCESSED),
            _artifacts(scope, ArtifactPrefix.CODE),
        ],
        write=[_artifacts(scope, ArtifactPrefix.MODELS)],
    )


def model_card_job_policies(scope: TrainingScope) -> dict[str, Document]:
    """publish_card.py reads the card evaluate wrote, writes it back with the registered
    version's ARN, and creates the registry's model card of that version (a re-run of the
    step updates it). Cards are named <group>-<execution id>."""
    cards = scope.sagemaker_arn(f"model-card/{scope.model_package_group}-*")
    return {
        **_job_policies(
            scope,
            "ProcessingJobs",
            read=[
                _artifacts(scope, ArtifactPrefix.CODE),
                _artifacts(scope, ArtifactPrefix.EVALUATION),
            ],
            write=[_artifacts(scope, ArtifactPrefix.EVALUATION)],
        ),
        "model-cards": document(
            {
                "Sid": "PublishThisRegistrysModelCards",
                "Effect": "Allow",
                "Action": ["sagemaker:CreateModelCard", "sagemaker:UpdateModelCard"],
                "Resource": cards,
            }
        ),
    }


def _secure_job_conditions(scope: TrainingScope) -> dict[str, dict[str, Any]]:
    # A request that omits any of these keys fails the condition, so the pipeline cannot
    # start a job without isolation or with another (or no) key, whatever its definition says.
    return with_vpc_conditions(
        {
            "Bool": {
                "sagemaker:NetworkIsolation": "true",
                "sagemaker:InterContainerTrafficEncryption": "true",
            },
            "ArnEquals": stack_key_conditions(scope.kms_key_arn),
        },
        scope.vpc,
    )


def stack_key_conditions(kms_key_arn: str) -> dict[str, str]:
    """Create*Job's volume and output keys (the request's VolumeKmsKeyId and KmsKeyId fields)
    must be the stack key. The Service Authorization Reference names them VolumeKmsKey and
    OutputKmsKey, of type ARN (so ArnEquals); the definitions name the key by its ARN."""
    return {"sagemaker:VolumeKmsKey": kms_key_arn, "sagemaker:OutputKmsKey": kms_key_arn}


def _tuning_statements(scope: TrainingScope) -> list[Statement]:
    """A Tune step's tuning job, under the same conditions as a training job: the Service
    Authorization Reference lists NetworkIsolation, InterContainerTrafficEncryption,
    VolumeKmsKey and OutputKmsKey for CreateHyperParameterTuningJob too. The tuning job
    starts its training jobs itself, as the role in its definition (passed below)."""
    # Pipelines documents no name format for the tuning jobs it starts (names are at most
    # 32 characters, too short for the pipelines-<execution>-<step> of its other jobs), so
    # the ARN is this stack's account and region; the conditions keep every one secure.
    tuning_jobs = scope.sagemaker_arn("hyper-parameter-tuning-job/*")
    return [
        {
            "Sid": "StartSecureTuningJobs",
            "Effect": "Allow",
            "Action": "sagemaker:CreateHyperParameterTuningJob",
            "Resource": tuning_jobs,
            "Condition": _secure_job_conditions(scope),
        },
        {
            "Sid": "FollowAndStopTuningJobs",
            "Effect": "Allow",
            "Action": [
                "sagemaker:DescribeHyperParameterTuningJob",
                "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
                "sagemaker:StopHyperParameterTuningJob",
                "sagemaker:AddTags",
            ],
            "Resource": tuning_jobs,
        },
    ]


def pipeline_policies(scope: TrainingScope) -> dict[str, Document]:
    jobs = [
        scope.sagemaker_arn(f"processing-job/{PIPELINE_JOB_PREFIX}*"),
        scope.sagemaker_arn(f"training-job/{PIPELINE_JOB_PREFIX}*"),
    ]
    group = scope.sagemaker_arn(f"model-package-group/{scope.model_package_group}")
    packages = scope.sagemaker_arn(f"model-package/{scope.model_package_group}/*")
    sagemaker = document(
        {
            "Sid": "StartSecureJobs",
            "Effect": "Allow",
            "Action": ["sagemaker:CreateProcessingJob", "sagemaker:CreateTrainingJob"],
            "Resource": jobs,
            "Condition": _secure_job_conditions(scope),
        },
        {
            # Only PublishModelCard's job may have network; still encrypted in transit, and
            # its volume with the stack key (it declares no outputs: it writes through S3).
            "Sid": "StartModelCardJobs",
            "Effect": "Allow",
            "Action": "sagemaker:CreateProcessingJob",
            "Resource": scope.sagemaker_arn(
                f"processing-job/{PIPELINE_JOB_PREFIX}*-{MODEL_CARD_STEP_JOB}-*"
            ),
            "Condition": with_vpc_conditions(
                {
                    "Bool": {"sagemaker:InterContainerTrafficEncryption": "true"},
                    "ArnEquals": {"sagemaker:VolumeKmsKey": scope.kms_key_arn},
                },
                scope.vpc,
            ),
        },
        {
            "Sid": "FollowAndStopJobs",
            "Effect": "Allow",
            "Action": [
                "sagemaker:DescribeProcessingJob",
                "sagemaker:DescribeTrainingJob",
                "sagemaker:StopProcessingJob",
                "sagemaker:StopTrainingJob",
                "sagemaker:AddTags",
            ],
            "Resource": jobs,
        },
        {
            "Sid": "RegisterModelVersions",
            "Effect": "Allow",
            "Action": ["sagemaker:CreateModelPackage", "sagemaker:AddTags"],
            "Resource": [group, packages],
        },
        *(_tuning_statements(scope) if scope.tuning else []),
    )
    pass_roles = document(
        {
            "Sid": "PassJobRoles",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": [
                scope.processing_role_arn,
                scope.training_role_arn,
                scope.model_card_role_arn,
            ],
            "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        }
    )
    # The condition step reads evaluation.json (a PropertyFile) with the pipeline's role.
    property_files = document(
        {
            "Sid": "ReadEvaluationReports",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": _artifacts(scope, ArtifactPrefix.EVALUATION),
        },
        {
            "Sid": "DecryptEvaluationReports",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": scope.kms_key_arn,
        },
    )
    return {"sagemaker": sagemaker, "pass-roles": pass_roles, "property-files": property_files}
