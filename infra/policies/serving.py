"""The serving role: what a SageMaker endpoint's containers (and its data capture) may touch.

It reads model archives under the artifacts bucket's ``models/`` prefix, writes captured
requests and responses under the capture bucket's ``datacapture/`` prefix, uses the stack's
key for both, pulls the scikit-learn image and writes its endpoint logs. Nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.naming import ArtifactPrefix, CapturePrefix
from infra.policies import Document, Statement, document
from infra.policies.execution_role import (
    bucket_access_policy,
    ecr_policy,
    kms_policy,
    sagemaker_logs_policy,
)
from infra.policies.vpc import network_policies
from pipelines.spec import VpcSpec


@dataclass(frozen=True)
class ServingScope:
    partition: str
    region: str
    account_id: str
    prefix: str
    kms_key_arn: str
    artifacts_bucket_arn: str
    capture_bucket_arn: str
    # The model's VpcConfig (instance endpoints in a VPC stack): its network interfaces.
    vpc: VpcSpec | None = None


def serving_policies(scope: ServingScope) -> dict[str, Document]:
    return {
        "s3": bucket_access_policy(
            buckets=[scope.artifacts_bucket_arn, scope.capture_bucket_arn],
            read=[f"{scope.artifacts_bucket_arn}/{ArtifactPrefix.MODELS}*"],
            write=[f"{scope.capture_bucket_arn}/{CapturePrefix.DATA_CAPTURE}*"],
        ),
        "kms": kms_policy(scope),
        "logs": sagemaker_logs_policy(scope, (), endpoints=True),
        "ecr": ecr_policy(scope),
        **network_policies(scope.partition, scope.region, scope.account_id, scope.vpc),
    }


def shared_registry_policy(
    artifacts_bucket_arn: str,
    kms_key_arn: str,
    region: str,
    *,
    describe_group_arn: str | None = None,
    reports: bool = False,
) -> Document:
    """Our half of cross-account serving: the tooling account's bucket policy and key
    policy grant the other half (infra.policies.sharing). Jobs that look models up in the
    registry (monitoring) also get to describe its packages, and those that compare with
    the reports registration attached (quality, attribution) to read them."""
    describe: list[Statement] = []
    if describe_group_arn is not None:
        describe.append(
            {
                "Sid": "DescribeSharedModelPackages",
                "Effect": "Allow",
                "Action": "sagemaker:DescribeModelPackage",
                "Resource": describe_group_arn.replace(":model-package-group/", ":model-package/")
                + "/*",
            }
        )
    return document(
        *describe,
        {
            "Sid": "ReadSharedModels",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": (
                [
                    f"{artifacts_bucket_arn}/{ArtifactPrefix.MODELS}*",
                    f"{artifacts_bucket_arn}/{ArtifactPrefix.EVALUATION}*",
                ]
                if reports
                else f"{artifacts_bucket_arn}/{ArtifactPrefix.MODELS}*"
            ),
        },
        {
            "Sid": "DecryptSharedModelsThroughS3",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": kms_key_arn,
            "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
        },
    )
