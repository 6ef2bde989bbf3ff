"""VPC, subnets, routes, security groups, VPC endpoints and flow logs -> the EC2 requests the
provider sends.

Sources (hashicorp/terraform-provider-aws, internal/service/ec2/...): vpc_.go
(resourceVPCCreate: CreateVpc with TagSpecifications, then ModifyVpcAttribute once per DNS
attribute that differs from AWS's default: support on, hostnames off), vpc_subnet.go
(CreateSubnet; ModifySubnetAttribute MapPublicIpOnLaunch only when true),
vpc_route_table.go (CreateRouteTable), vpc_route_table_association.go
(AssociateRouteTable), vpc_default_security_group.go (finds the VPC's "default" group, then
revokes the rules it has: ingress from itself, egress anywhere; tags it),
vpc_security_group.go (CreateSecurityGroup, then RevokeSecurityGroupEgress of the allow-all
rule AWS adds to a VPC group), vpc_security_group_ingress_rule.go and ..._egress_rule.go
(Authorize... with one IpPermission and the rule's tags), vpc_endpoint.go
(CreateVpcEndpoint), vpc_flow_log.go (CreateFlowLogs).

IDs AWS assigns on create (a VPC's, a group's) are the plan's (infra/plan/mocks.py
``mock_ec2_id``); ``created_ids`` tells a local stack which real ID replaces each.
"""

from __future__ import annotations

from typing import Any

from infra.plan.aws_requests.inputs import Context, Inputs, Params, Request, request
from infra.plan.aws_requests.storage import REGION
from infra.plan.mocks import mock_ec2_id

VPC = "aws:ec2/vpc:Vpc"
SUBNET = "aws:ec2/subnet:Subnet"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ROUTE_TABLE_ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
VPC_ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
# The rule AWS gives every new VPC security group, which the provider revokes.
_ALLOW_ALL_EGRESS = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}


def _tag_specifications(ctx: Context, i: Inputs, resource_type: str) -> list[Params] | None:
    tags = ctx.tag_list(i)
    return [{"ResourceType": resource_type, "Tags": tags}] if tags else None


def vpc(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    create = {
        "CidrBlock": i.get("cidrBlock"),
        "InstanceTenancy": i.get("instanceTenancy"),
        "TagSpecifications": _tag_specifications(ctx, i, "vpc"),
    }
    requests = [request("ec2", "CreateVpc", create)]
    vpc_id = mock_ec2_id("vpc", ctx.resource.name)
    # Defaults: DNS support on, hostnames off; the provider sends only a change.
    for key, attribute, default in (
        ("enableDnsSupport", "EnableDnsSupport", True),
        ("enableDnsHostnames", "EnableDnsHostnames", False),
    ):
        value = i.get(key)
        if value is not None and value != default:
            modify = {"VpcId": vpc_id, attribute: {"Value": value}}
            requests.append(request("ec2", "ModifyVpcAttribute", modify))
    return requests


def subnet(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    create = {
        "VpcId": i.get("vpcId"),
        "CidrBlock": i.get("cidrBlock"),
        "AvailabilityZone": i.get("availabilityZone"),
        "AvailabilityZoneId": i.get("availabilityZoneId"),
        "TagSpecifications": _tag_specifications(ctx, i, "subnet"),
    }
    requests = [request("ec2", "CreateSubnet", create)]
    if i.get("mapPublicIpOnLaunch") is True:
        modify = {
            "SubnetId": mock_ec2_id("subnet", ctx.resource.name),
            "MapPublicIpOnLaunch": {"Value": True},
        }
        requests.append(request("ec2", "ModifySubnetAttribute", modify))
    return requests


def route_table(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    create = {
        "VpcId": i.get("vpcId"),
        "TagSpecifications": _tag_specifications(ctx, i, "route-table"),
    }
    return [request("ec2", "CreateRouteTable", create)]


def route_table_association(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    params = {
        "RouteTableId": i.get("routeTableId"),
        "SubnetId": i.get("subnetId"),
        "GatewayId": i.get("gatewayId"),
    }
    return [request("ec2", "AssociateRouteTable", params)]


def default_security_group(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    i.provider_only("revokeRulesOnDelete", "read on delete")
    group_id = mock_ec2_id("sg", ctx.resource.name)
    find = {
        "Filters": [
            {"Name": "vpc-id", "Values": [i.get("vpcId")]},
            {"Name": "group-name", "Values": ["default"]},
        ]
    }
    # The kit declares none: any inline rule would be one more authorize request.
    if i.get("ingress") or i.get("egress"):
        raise ValueError(f"{ctx.resource.name}: the default security group must have no rules")
    self_ingress = {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": group_id}]}
    requests = [
        request("ec2", "DescribeSecurityGroups", find),
        request(
            "ec2",
            "RevokeSecurityGroupIngress",
            {"GroupId": group_id, "IpPermissions": [self_ingress]},
        ),
        request(
            "ec2",
            "RevokeSecurityGroupEgress",
            {"GroupId": group_id, "IpPermissions": [_ALLOW_ALL_EGRESS]},
        ),
    ]
    tags = ctx.tag_list(i)
    if tags:
        requests.append(request("ec2", "CreateTags", {"Resources": [group_id], "Tags": tags}))
    return requests


def security_group(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    i.provider_only("revokeRulesOnDelete", "read on delete")
    if i.get("ingress") or i.get("egress"):
        raise ValueError(f"{ctx.resource.name}: declare rules as separate rule resources")
    create = {
        "GroupName": ctx.name(i),
        "Description": i.get("description"),
        "VpcId": i.get("vpcId"),
        "TagSpecifications": _tag_specifications(ctx, i, "security-group"),
    }
    revoke = {
        "GroupId": mock_ec2_id("sg", ctx.resource.name),
        "IpPermissions": [_ALLOW_ALL_EGRESS],
    }
    return [
        request("ec2", "CreateSecurityGroup", create),
        request("ec2", "RevokeSecurityGroupEgress", revoke),
    ]


def _permission(i: Inputs) -> Params:
    """One IpPermission of a rule resource (vpc_security_group_ingress_rule.go expand)."""
    protocol = i.get("ipProtocol")
    every_port = protocol in ("-1", "all")
    description = i.get("description")

    def described(entry: Params) -> Params:
        return {**entry, "Description": description}

    return {
        "IpProtocol": "-1" if every_port else protocol,
        "FromPort": None if every_port else i.get("fromPort"),
        "ToPort": None if every_port else i.get("toPort"),
        "IpRanges": [described({"CidrIp": i.get("cidrIpv4")})] if i.has("cidrIpv4") else None,
        "Ipv6Ranges": ([described({"CidrIpv6": i.get("cidrIpv6")})] if i.has("cidrIpv6") else None),
        "PrefixListIds": (
            [described({"PrefixListId": i.get("prefixListId")})] if i.has("prefixListId") else None
        ),
        "UserIdGroupPairs": (
            [described({"GroupId": i.get("referencedSecurityGroupId")})]
            if i.has("referencedSecurityGroupId")
            else None
        ),
    }


def _rule(operation: str) -> Any:
    def mapping(i: Inputs, ctx: Context) -> list[Request]:
        i.provider_only("region", REGION)
        params = {
            "GroupId": i.get("securityGroupId"),
            "IpPermissions": [_permission(i)],
            "TagSpecifications": _tag_specifications(ctx, i, "security-group-rule"),
        }
        return [request("ec2", operation, params)]

    return mapping


def vpc_endpoint(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    i.provider_only("autoAccept", "accepts a connection to an endpoint service; none here")
    params = {
        "VpcEndpointType": i.get("vpcEndpointType"),
        "VpcId": i.get("vpcId"),
        "ServiceName": i.get("serviceName"),
        "PolicyDocument": i.get("policy"),
        "RouteTableIds": i.get("routeTableIds"),
        "SubnetIds": i.get("subnetIds"),
        "SecurityGroupIds": i.get("securityGroupIds"),
        "IpAddressType": i.get("ipAddressType"),
        "PrivateDnsEnabled": i.get("privateDnsEnabled"),
        "TagSpecifications": _tag_specifications(ctx, i, "vpc-endpoint"),
    }
    return [request("ec2", "CreateVpcEndpoint", params)]


def flow_log(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    resource_ids = [
        (kind, i.get(key))
        for key, kind in (("vpcId", "VPC"), ("subnetId", "Subnet"), ("eniId", "NetworkInterface"))
        if i.has(key)
    ]
    if len(resource_ids) != 1:
        raise ValueError(f"{ctx.resource.name}: a flow log names one VPC, subnet or interface")
    (resource_type, resource_id) = resource_ids[0]
    params = {
        "ResourceIds": [resource_id],
        "ResourceType": resource_type,
        "TrafficType": i.get("trafficType"),
        "LogDestinationType": i.get("logDestinationType"),
        "LogDestination": i.get("logDestination"),
        "DeliverLogsPermissionArn": i.get("iamRoleArn"),
        "LogFormat": i.get("logFormat"),
        "MaxAggregationInterval": i.get("maxAggregationInterval"),
        "TagSpecifications": _tag_specifications(ctx, i, "vpc-flow-log"),
    }
    return [request("ec2", "CreateFlowLogs", params)]


MAPPINGS = {
    VPC: vpc,
    SUBNET: subnet,
    ROUTE_TABLE: route_table,
    ROUTE_TABLE_ASSOCIATION: route_table_association,
    DEFAULT_SECURITY_GROUP: default_security_group,
    SECURITY_GROUP: security_group,
    INGRESS_RULE: _rule("AuthorizeSecurityGroupIngress"),
    EGRESS_RULE: _rule("AuthorizeSecurityGroupEgress"),
    VPC_ENDPOINT: vpc_endpoint,
    FLOW_LOG: flow_log,
}
# Network types in the order AWS needs them: each after what it names.
CREATE_ORDER = (
    VPC,
    SUBNET,
    ROUTE_TABLE,
    ROUTE_TABLE_ASSOCIATION,
    DEFAULT_SECURITY_GROUP,
    SECURITY_GROUP,
    VPC_ENDPOINT,
    INGRESS_RULE,
    EGRESS_RULE,
)

# Operation -> (ID prefix the plan uses, where the answer holds the real ID).
_ANSWER_IDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "CreateVpc": ("vpc", ("Vpc", "VpcId")),
    "CreateSubnet": ("subnet", ("Subnet", "SubnetId")),
    "CreateRouteTable": ("rtb", ("RouteTable", "RouteTableId")),
    "CreateSecurityGroup": ("sg", ("GroupId",)),
    "DescribeSecurityGroups": ("sg", ("SecurityGroups", "0", "GroupId")),
    "CreateVpcEndpoint": ("vpce", ("VpcEndpoint", "VpcEndpointId")),
}


def created_ids(resource_name: str, operation: str, answer: Any) -> dict[str, str]:
    """Planned ID -> the ID AWS (or a local endpoint) gave, after one of a resource's
    requests; empty when the request creates nothing the plan names by ID."""
    if operation not in _ANSWER_IDS:
        return {}
    prefix, path = _ANSWER_IDS[operation]
    value = answer
    for step in path:
        value = value[int(step)] if step.isdigit() else value[step]
    return {mock_ec2_id(prefix, resource_name): str(value)}
