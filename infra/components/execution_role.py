"""The SageMaker execution role that jobs and endpoints of this stack run as."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.naming import Naming
from infra.policies import Document
from infra.policies.execution_role import ExecutionRoleScope, permission_policies, trust_policy


@dataclass(frozen=True)
class ExecutionRoleArgs:
    naming: Naming
    account_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    data_bucket_arn: pulumi.Input[str]
    artifacts_bucket_arn: pulumi.Input[str]
    capture_bucket_arn: pulumi.Input[str]


class SageMakerExecutionRole(pulumi.ComponentResource):
    """Role trusted by sagemaker.amazonaws.com, with one inline policy per concern.

    Later roles (pipeline, per-job) reuse ``infra.policies.execution_role`` to build their
    own, narrower documents from the same scope.
    """

    role: aws.iam.Role
    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: ExecutionRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlopskit:iam:SageMakerExecutionRole", name, None, opts)
        naming = args.naming

        self.role = aws.iam.Role(
            name,
            name=naming.role("sagemaker-execution"),
            description=f"SageMaker jobs and endpoints of {naming.prefix}",
            assume_role_policy=json.dumps(trust_policy()),
            # Inline policies below are the whole grant; nothing may be attached out of band
            # and survive a destroy.
            force_detach_policies=True,
            opts=pulumi.ResourceOptions(parent=self),
        )

        scope = pulumi.Output.all(
            args.account_id,
            args.kms_key_arn,
            args.data_bucket_arn,
            args.artifacts_bucket_arn,
            args.capture_bucket_arn,
        ).apply(
            lambda v: ExecutionRoleScope(
                partition=naming.partition,
                region=naming.region,
                account_id=v[0],
                prefix=naming.prefix,
                kms_key_arn=v[1],
                data_bucket_arn=v[2],
                artifacts_bucket_arn=v[3],
                capture_bucket_arn=v[4],
                metrics_namespace=naming.metrics_namespace,
            )
        )
        documents = scope.apply(permission_policies)
        # Policy names are static so every policy is declared at the top level (and shows in
        # a preview); only their documents wait on ARNs.
        for policy_name in ("s3", "kms", "logs", "ecr", "metrics", "registry"):
            aws.iam.RolePolicy(
                f"{name}-{policy_name}",
                role=self.role.id,
                name=policy_name,
                policy=documents.apply(_as_json(policy_name)),
                opts=pulumi.ResourceOptions(parent=self),
            )

        self.arn = self.role.arn
        self.register_outputs({"arn": self.role.arn, "name": self.role.name})


def _as_json(policy_name: str) -> Callable[[dict[str, Document]], str]:
    return lambda documents: json.dumps(documents[policy_name])
