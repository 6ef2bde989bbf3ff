"""IAM for jobs and models in the stack's VPC: where a pipeline may place its jobs, and what
the roles they run as need so SageMaker can attach them to the VPC.

* Pipeline roles: a Create*Job request must name only the stack's subnets and security
  groups (``sagemaker:VpcSubnets``, ``sagemaker:VpcSecurityGroupIds``; the Service
  Authorization Reference lists both for CreateProcessingJob, CreateTrainingJob and
  CreateHyperParameterTuningJob, not for CreateTransformJob, which runs in its model's VPC).
* Job roles and the execution role: the EC2 network-interface actions SageMaker performs as
  the role to place a job or model in a VPC, as "How to use SageMaker execution roles" lists
  them for CreateProcessingJob, CreateTrainingJob and CreateModel
  (https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html, "If you specify a
  private VPC ... add the following permissions").

Every function is pure and returns plain statements; with no VPC nothing is added.
"""

from __future__ import annotations

from typing import Any

from infra.policies import STAR_ONLY_ACTIONS, Document, Statement, document
from pipelines.spec import VpcSpec

VPC_SUBNETS = "sagemaker:VpcSubnets"
VPC_SECURITY_GROUPS = "sagemaker:VpcSecurityGroupIds"

# The Describe* half of SageMaker's list: EC2 has no resource type for them (the Service
# Authorization Reference lists none), so IAM authorizes them only on "*". The lead merges
# these into infra.policies.STAR_ONLY_ACTIONS.
# What SageMaker reads of the network it places interfaces in; EC2's Describe* actions take
# no resource type, so these are among the kit's star-only actions.
NETWORK_DESCRIBE_ACTIONS: tuple[str, ...] = tuple(
    action for action in STAR_ONLY_ACTIONS if action.startswith("ec2:Describe")
)
# The write half: each takes the network-interface resource type, and the reference lists
# ec2:Subnet (the interface's subnet, an ARN) for all three.
NETWORK_INTERFACE_ACTIONS = (
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission",
)


class InvalidVpcError(ValueError):
    """Not a VPC placement, or one without a subnet or a security group: no job could be
    placed in it."""


def _checked(vpc: VpcSpec) -> VpcSpec:
    if not isinstance(vpc, VpcSpec):
        raise InvalidVpcError(f"a VPC placement is a pipelines.spec.VpcSpec, not {vpc!r}")
    if not vpc.subnets or not vpc.security_group_ids:
        raise InvalidVpcError(
            "a VPC placement needs at least one subnet and one security group, got "
            f"subnets={list(vpc.subnets)} security_group_ids={list(vpc.security_group_ids)}"
        )
    return vpc


def vpc_job_conditions(vpc: VpcSpec) -> dict[str, dict[str, Any]]:
    """The condition block that holds a Create*Job request to the stack's subnets and
    security groups: every value the request names must be one of ours, and it must name
    some. ForAllValues alone "also returns true if there are no context keys in the
    request" (IAM User Guide, "Multivalued context key examples"), so a job without a
    VpcConfig would pass; the Null tests (false: the key is present) make both mandatory."""
    _checked(vpc)
    return {
        "ForAllValues:StringEquals": {
            VPC_SUBNETS: list(vpc.subnets),
            VPC_SECURITY_GROUPS: list(vpc.security_group_ids),
        },
        "Null": {VPC_SUBNETS: "false", VPC_SECURITY_GROUPS: "false"},
    }


def with_vpc_conditions(
    condition: dict[str, dict[str, Any]], vpc: VpcSpec | None
) -> dict[str, dict[str, Any]]:
    """``condition`` with ``vpc_job_conditions`` merged in, operator by operator (a
    statement may already test other keys with ForAllValues:StringEquals); unchanged for
    no VPC, so a stack without one keeps its policies byte for byte."""
    if vpc is None:
        return condition
    merged = {operator: dict(block) for operator, block in condition.items()}
    for operator, block in vpc_job_conditions(vpc).items():
        merged[operator] = {**merged.get(operator, {}), **block}
    return merged


def _ec2_arn(partition: str, region: str, account_id: str, resource: str) -> str:
    return f"arn:{partition}:ec2:{region}:{account_id}:{resource}"


def subnet_arns(partition: str, region: str, account_id: str, vpc: VpcSpec) -> list[str]:
    return [_ec2_arn(partition, region, account_id, f"subnet/{s}") for s in vpc.subnets]


def network_interface_statements(
    partition: str, region: str, account_id: str, vpc: VpcSpec
) -> list[Statement]:
    """What SageMaker does as a job's (or a model's) role to attach it to the VPC: create a
    network interface in one of the stack's subnets with the stack's security groups, let
    its own account attach it, and delete both afterwards."""
    _checked(vpc)
    interfaces = _ec2_arn(partition, region, account_id, "network-interface/*")
    subnets = subnet_arns(partition, region, account_id, vpc)
    groups = [
        _ec2_arn(partition, region, account_id, f"security-group/{g}")
        for g in vpc.security_group_ids
    ]
    return [
        {
            # IAM authorizes CreateNetworkInterface on the new interface, its subnet and its
            # security groups: naming ours confines new interfaces to the stack's network.
            "Sid": "CreateJobInterfacesInStackSubnets",
            "Effect": "Allow",
            "Action": "ec2:CreateNetworkInterface",
            "Resource": [interfaces, *subnets, *groups],
        },
        {
            # Interface IDs are not known in advance: the interface's subnet scopes them.
            "Sid": "ManageJobInterfacesInStackSubnets",
            "Effect": "Allow",
            "Action": list(NETWORK_INTERFACE_ACTIONS),
            "Resource": interfaces,
            "Condition": {"ArnEquals": {"ec2:Subnet": subnets}},
        },
        {
            # Describe* take no resource type (NETWORK_DESCRIBE_ACTIONS): "*" is the only scope.
            "Sid": "DescribeJobNetwork",
            "Effect": "Allow",
            "Action": list(NETWORK_DESCRIBE_ACTIONS),
            "Resource": "*",
        },
    ]


def network_policies(
    partition: str, region: str, account_id: str, vpc: VpcSpec | None
) -> dict[str, Document]:
    """The "network" inline policy of a role whose jobs (or models) run in ``vpc``; none
    without one."""
    if vpc is None:
        return {}
    return {"network": document(*network_interface_statements(partition, region, account_id, vpc))}
