"""Where a stack's parts live: one value the environment builds once and hands to each part."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.naming import Naming
from pipelines.spec import VpcSpec

# Stands in for a stack's VpcConfig before its IDs resolve: whether there is one decides
# which policies a role has (service_role.policy_names), not what the IDs are.
VPC_STAND_IN = VpcSpec(("subnet-0",), ("sg-0",))


@dataclass(frozen=True)
class NetworkPlacement:
    """The subnets and security groups the stack's jobs and models run in."""

    subnet_ids: pulumi.Input[Sequence[str]]
    security_group_ids: pulumi.Input[Sequence[str]]
    # The S3 gateway endpoint the stack's buckets may require (aws:SourceVpce).
    s3_endpoint_id: pulumi.Input[str] | None = None

    def vpc_spec(self) -> pulumi.Output[VpcSpec]:
        """Resolved, for pipeline definitions and IAM conditions built inside an apply."""
        return pulumi.Output.all(self.subnet_ids, self.security_group_ids).apply(
            lambda ids: VpcSpec(subnets=tuple(ids[0]), security_group_ids=tuple(ids[1]))
        )

    def model_vpc_config(self) -> aws.sagemaker.ModelVpcConfigArgs:
        return aws.sagemaker.ModelVpcConfigArgs(
            subnets=self.subnet_ids, security_group_ids=self.security_group_ids
        )

    def training_job_vpc_config(self) -> aws.sagemaker.TrainingJobVpcConfigArgs:
        return aws.sagemaker.TrainingJobVpcConfigArgs(
            subnets=self.subnet_ids, security_group_ids=self.security_group_ids
        )


@dataclass(frozen=True)
class StackLocation:
    naming: Naming
    account_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    data_bucket: pulumi.Input[str]
    artifacts_bucket: pulumi.Input[str]
    capture_bucket: pulumi.Input[str]
    # None: SageMaker's own network (mlops:network mode 'none').
    network: NetworkPlacement | None = None

    @property
    def vpc_stand_in(self) -> VpcSpec | None:
        """A VpcSpec of the right presence before IDs resolve (for naming policies)."""
        return VPC_STAND_IN if self.network is not None else None

    def vpc_spec(self) -> pulumi.Output[VpcSpec | None]:
        """The VpcConfig every job and model gets, resolved; None without a VPC."""
        if self.network is None:
            return pulumi.Output.from_input(None)
        return self.network.vpc_spec()
