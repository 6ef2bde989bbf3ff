"""The stack's general SageMaker execution role, for jobs run outside the pipeline.

The pipeline's jobs and the endpoint run as narrower roles of their own; this one may not
write endpoint logs or captured traffic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi

from infra.components.location import VPC_STAND_IN
from infra.components.service_role import ServiceRole, ServiceRoleArgs, policy_names
from infra.naming import Naming
from infra.policies.execution_role import ExecutionRoleScope, permission_policies, trust_policy
from pipelines.spec import VpcSpec


@dataclass(frozen=True)
class ExecutionRoleArgs:
    naming: Naming
    account_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    data_bucket_arn: pulumi.Input[str]
    artifacts_bucket_arn: pulumi.Input[str]
    capture_bucket_arn: pulumi.Input[str]
    # The stack's VpcConfig: its jobs and models place network interfaces there.
    vpc: pulumi.Output[VpcSpec | None] | None = None

    @property
    def in_vpc(self) -> bool:
        return self.vpc is not None


class SageMakerExecutionRole(pulumi.ComponentResource):
    """Role trusted by sagemaker.amazonaws.com, with one inline policy per concern."""

    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: ExecutionRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlopskit:iam:SageMakerExecutionRole", name, None, opts)
        naming = args.naming
        scope = pulumi.Output.all(
            args.account_id,
            args.kms_key_arn,
            args.data_bucket_arn,
            args.artifacts_bucket_arn,
            args.capture_bucket_arn,
            args.vpc if args.vpc is not None else pulumi.Output.from_input(None),
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
                vpc=v[5],
            )
        )
        self.role = ServiceRole(
            name,
            ServiceRoleArgs(
                role_name=naming.role("sagemaker-execution"),
                description=f"SageMaker jobs and endpoints of {naming.prefix}",
                trust_policy=json.dumps(trust_policy()),
                policy_names=policy_names(
                    permission_policies,
                    ExecutionRoleScope,
                    vpc=VPC_STAND_IN if args.in_vpc else None,
                ),
                policies=scope.apply(permission_policies),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.arn = self.role.arn
        self.register_outputs({"arn": self.role.arn, "name": self.role.name})
