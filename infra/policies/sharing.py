"""Cross-account sharing of a stack's registry: the statements other accounts' roles get.

AWS's pattern for a shared (tooling) account: the model package group's resource policy
lets the consumer roles read model packages; the artifacts bucket policy lets them read
model archives and evaluation reports; the key policy lets them decrypt those, only
through S3. Each statement names exactly the configured role ARNs, nothing wider.
"""

from __future__ import annotations

from collections.abc import Sequence

from infra.naming import ArtifactPrefix
from infra.policies import Document, Statement, document

REGISTRY_READ_ACTIONS = (
    "sagemaker:DescribeModelPackageGroup",
    "sagemaker:DescribeModelPackage",
    "sagemaker:ListModelPackages",
)


def registry_resource_policy(group_arn: str, role_arns: Sequence[str]) -> Document:
    packages = group_arn.replace(":model-package-group/", ":model-package/") + "/*"
    return document(
        {
            "Sid": "ConsumerAccountsReadModelPackages",
            "Effect": "Allow",
            "Principal": {"AWS": list(role_arns)},
            "Action": list(REGISTRY_READ_ACTIONS),
            "Resource": [group_arn, packages],
        }
    )


def artifacts_read_statement(bucket_arn: str, role_arns: Sequence[str]) -> Statement:
    return {
        "Sid": "ConsumerAccountsReadModels",
        "Effect": "Allow",
        "Principal": {"AWS": list(role_arns)},
        "Action": "s3:GetObject",
        "Resource": [
            f"{bucket_arn}/{ArtifactPrefix.MODELS}*",
            f"{bucket_arn}/{ArtifactPrefix.EVALUATION}*",
        ],
    }


def key_decrypt_statement(region: str, role_arns: Sequence[str]) -> Statement:
    return {
        "Sid": "ConsumerAccountsDecryptThroughS3",
        "Effect": "Allow",
        "Principal": {"AWS": list(role_arns)},
        "Action": ["kms:Decrypt", "kms:DescribeKey"],
        "Resource": "*",
        # Only to read objects through S3 (the model archives), never directly.
        "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
    }
