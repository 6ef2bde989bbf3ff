"""What a `pulumi.StackReference` returns in the offline plan.

There is no state backend offline, so a referenced stack's outputs are predicted from its
stack file in the same project: the kit's names are deterministic (account, region and
prefix), and the mocks derive the KMS key ID from the same logical name.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from infra.config.loader import settings_from_config
from infra.naming import BucketPurpose, Naming, bucket_name
from infra.plan.project import ProjectError, load_stack_config


class UnresolvedReferenceError(Exception):
    """The referenced stack has no stack file in this project."""


def predicted_outputs(project_dir: Path, reference: str, default_account: str) -> dict[str, Any]:
    stack = reference.rsplit("/", 1)[-1]
    try:
        config = load_stack_config(project_dir, stack)
    except ProjectError as exc:
        raise UnresolvedReferenceError(
            f"the offline plan cannot resolve StackReference '{reference}': {exc}"
        ) from None
    settings = settings_from_config(config.values, project=config.project, stack=stack)
    account = settings.account_id or default_account
    region, partition, prefix = settings.region, settings.partition, settings.prefix
    key_id = uuid.uuid5(uuid.NAMESPACE_URL, "kms/storage")
    return {
        "accountId": account,
        "modelPackageGroupArn": Naming(
            prefix=prefix, region=region, partition=partition
        ).model_package_group_arn(account),
        "artifactsBucket": bucket_name(prefix, BucketPurpose.ARTIFACTS, account, region),
        "kmsKeyArn": f"arn:{partition}:kms:{region}:{account}:key/{key_id}",
    }
