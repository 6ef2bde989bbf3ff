"""Trust and permission policies of the SageMaker execution role.

The role is what SageMaker training, processing and endpoint containers run as. Every grant
names this stack's buckets (write grants down to key prefixes), its KMS key, SageMaker's log
groups and this stack's registry; the only "*" grants are in ``STAR_ONLY_ACTIONS``. With a
VPC (``vpc``), models and jobs run as it are placed there, so it gets the network policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from infra.naming import ArtifactPrefix, CapturePrefix, DataPrefix, sagemaker_arn
from infra.policies import Document, document
from infra.policies.vpc import network_policies
from pipelines.spec import VpcSpec

# SageMaker's own log groups; their names are fixed by the service, so we cannot prefix them.
# Pipeline steps get generated job names, so streams cannot be narrowed by job name either.
SAGEMAKER_JOB_LOG_GROUPS = ("TrainingJobs", "ProcessingJobs", "TransformJobs")
# The managed scikit-learn container lives in an AWS-owned account that differs per region.
SKLEARN_IMAGE_REPOSITORY = "sagemaker-scikit-learn"


class StackScope(Protocol):
    """What every role's shared statements (KMS, logs, ECR) need to know about the stack."""

    @property
    def partition(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def account_id(self) -> str: ...
    @property
    def prefix(self) -> str: ...
    @property
    def kms_key_arn(self) -> str: ...


@dataclass(frozen=True)
class ExecutionRoleScope:
    partition: str
    region: str
    account_id: str
    prefix: str
    kms_key_arn: str
    data_bucket_arn: str
    artifacts_bucket_arn: str
    capture_bucket_arn: str
    metrics_namespace: str
    # The subnets and security groups its models and jobs run in; None: SageMaker's network.
    vpc: VpcSpec | None = None

    @property
    def bucket_arns(self) -> list[str]:
        return [self.data_bucket_arn, self.artifacts_bucket_arn, self.capture_bucket_arn]


def trust_policy() -> Document:
    # No aws:SourceAccount condition: SageMaker does not document setting it on every job
    # type's AssumeRole, and a condition on a missing key denies. iam:PassRole is the gate.
    return document(
        {
            "Sid": "SageMakerAssumesRole",
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    )


def _objects(bucket_arn: str, prefixes: Sequence[str]) -> list[str]:
    return [f"{bucket_arn}/{p}*" for p in prefixes]


def s3_policy(scope: ExecutionRoleScope) -> Document:
    write_targets = [
        *_objects(scope.data_bucket_arn, list(DataPrefix)),
        *_objects(scope.artifacts_bucket_arn, [ArtifactPrefix.MODELS, ArtifactPrefix.EVALUATION]),
        # datacapture/ is written by endpoints alone, under the serving role.
        *_objects(scope.capture_bucket_arn, [CapturePrefix.MONITORING]),
    ]
    return bucket_access_policy(
        buckets=scope.bucket_arns,
        read=[f"{arn}/*" for arn in scope.bucket_arns],
        write=write_targets,
    )


def bucket_access_policy(
    *, buckets: Sequence[str], read: Sequence[str], write: Sequence[str]
) -> Document:
    """List the buckets, read objects under ``read``, write only under ``write``."""
    return document(
        {
            "Sid": "ListStackBuckets",
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
            "Resource": list(buckets),
        },
        {
            "Sid": "ReadInputs",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": list(read),
        },
        {
            "Sid": "WriteJobOutputs",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
            "Resource": list(write),
        },
    )


def kms_policy(scope: StackScope) -> Document:
    return document(
        {
            "Sid": "UseStackKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
            "Resource": scope.kms_key_arn,
        },
        {
            # SageMaker attaches encrypted ML storage volumes through KMS grants.
            "Sid": "GrantKeyToSageMakerVolumes",
            "Effect": "Allow",
            "Action": "kms:CreateGrant",
            "Resource": scope.kms_key_arn,
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
        },
    )


def logs_policy(scope: ExecutionRoleScope) -> Document:
    return sagemaker_logs_policy(scope, SAGEMAKER_JOB_LOG_GROUPS)


def sagemaker_logs_policy(
    scope: StackScope, job_log_groups: Sequence[str], *, endpoints: bool = False
) -> Document:
    base = f"arn:{scope.partition}:logs:{scope.region}:{scope.account_id}:log-group:/aws/sagemaker"
    groups = [f"{base}/{name}" for name in job_log_groups]
    if endpoints:
        groups.append(f"{base}/Endpoints/{scope.prefix}-*")
    # Actions are split by the resource type IAM checks them against: group or stream.
    return document(
        {
            "Sid": "ManageSageMakerLogGroups",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:DescribeLogStreams"],
            "Resource": groups,
        },
        {
            "Sid": "WriteSageMakerLogStreams",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [f"{group}:log-stream:*" for group in groups],
        },
    )


def ecr_policy(scope: StackScope) -> Document:
    repositories = [
        f"arn:{scope.partition}:ecr:{scope.region}:{scope.account_id}:repository/{scope.prefix}-*",
        # Any account, but only the managed scikit-learn repository in this region.
        f"arn:{scope.partition}:ecr:{scope.region}:*:repository/{SKLEARN_IMAGE_REPOSITORY}",
    ]
    return document(
        {
            "Sid": "EcrLogin",
            "Effect": "Allow",
            "Action": "ecr:GetAuthorizationToken",
            "Resource": "*",
        },
        {
            "Sid": "PullImages",
            "Effect": "Allow",
            "Action": [
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
            ],
            "Resource": repositories,
        },
    )


def metrics_policy(namespace: str) -> Document:
    return document(
        {
            "Sid": "PublishKitMetrics",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            # PutMetricData has no resource type; the namespace condition scopes it.
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": namespace}},
        }
    )


def registry_policy(scope: ExecutionRoleScope) -> Document:
    def arn(resource: str) -> str:
        return sagemaker_arn(scope.partition, scope.region, scope.account_id, resource)

    return document(
        {
            # Jobs (e.g. drift detection) look up the baseline of the model they serve.
            "Sid": "ReadStackModelRegistry",
            "Effect": "Allow",
            "Action": ["sagemaker:DescribeModelPackage", "sagemaker:DescribeModelPackageGroup"],
            "Resource": [
                arn(f"model-package-group/{scope.prefix}-*"),
                arn(f"model-package/{scope.prefix}-*/*"),
            ],
        }
    )


def permission_policies(scope: ExecutionRoleScope) -> dict[str, Document]:
    """Inline policies by name; one concern each, so a plan diff reads clearly."""
    return {
        "s3": s3_policy(scope),
        "kms": kms_policy(scope),
        "logs": logs_policy(scope),
        "ecr": ecr_policy(scope),
        "metrics": metrics_policy(scope.metrics_namespace),
        "registry": registry_policy(scope),
        **network_policies(scope.partition, scope.region, scope.account_id, scope.vpc),
    }
