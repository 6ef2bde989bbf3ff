"""The stack's private network: a VPC with no way to the internet, reaching AWS only through
VPC endpoints whose policies name this stack's resources; and its flow logs.

Two components, because the storage sits between them: the network comes first (the
buckets' optional aws:SourceVpce deny names its S3 endpoint), the flow logs after (their log
group is encrypted with the stack's key).

Address plan: the VPC's CIDR is split into eight equal blocks (three more prefix bits: a /16
gives /19s), and zone i's subnet is block i. Eight, whatever the zone count (at most six), so
adding a zone later adds a subnet without renumbering, and so replacing, the others; the
last blocks stay free.
"""

from __future__ import annotations

import functools
import ipaddress
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components.location import NetworkPlacement
from infra.components.service_role import ServiceRole, ServiceRoleArgs
from infra.config.settings import NetworkSettings
from infra.naming import Naming
from infra.policies import Document
from infra.policies.network import (
    GATEWAY_SERVICE,
    INTERFACE_SERVICES,
    EndpointScope,
    endpoint_policies,
    flow_logs_policy,
    flow_logs_trust_policy,
    image_repository,
)

# Subnet blocks the VPC's CIDR is cut into (see the module docstring).
SUBNET_BITS = 3
HTTPS = 443


def subnet_cidrs(vpc_cidr: str, zones: int) -> list[str]:
    """The first ``zones`` of the VPC's eight equal blocks."""
    blocks = list(ipaddress.IPv4Network(vpc_cidr).subnets(prefixlen_diff=SUBNET_BITS))
    if not 1 <= zones <= len(blocks):
        raise ValueError(
            f"network.availabilityZones: {zones} zones do not fit {len(blocks)} blocks"
        )
    return [str(block) for block in blocks[:zones]]


def service_name(region: str, service: str) -> str:
    return f"com.amazonaws.{region}.{service}"


def _first_zones(names: Sequence[str], wanted: int, region: str) -> list[str]:
    if len(names) < wanted:
        raise ValueError(
            f"network.availabilityZones is {wanted}, but {region} has {len(names)} available "
            f"zones ({', '.join(names)})"
        )
    return list(names[:wanted])


def _nth(index: int, names: Sequence[str]) -> str:
    return names[index]


@dataclass(frozen=True)
class PrivateNetworkArgs:
    settings: NetworkSettings
    naming: Naming
    account_id: pulumi.Input[str]
    # Stack buckets the jobs reach through the S3 endpoint.
    bucket_names: Sequence[pulumi.Input[str]]
    # ECR images the jobs and models pull (pipelines.sdk.image_uri results).
    image_uris: Sequence[str]
    # A shared registry in another account, reachable through the endpoints too.
    extra_bucket_names: Sequence[pulumi.Input[str]] = ()
    extra_kms_key_arns: Sequence[pulumi.Input[str]] = ()
    extra_sagemaker_arns: Sequence[pulumi.Input[str]] = ()


class PrivateNetwork(pulumi.ComponentResource):
    vpc: aws.ec2.Vpc
    subnets: list[aws.ec2.Subnet]
    route_table: aws.ec2.RouteTable
    jobs_security_group: aws.ec2.SecurityGroup
    endpoints_security_group: aws.ec2.SecurityGroup
    s3_endpoint: aws.ec2.VpcEndpoint
    interface_endpoints: dict[str, aws.ec2.VpcEndpoint]
    placement: NetworkPlacement

    def __init__(
        self, name: str, args: PrivateNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        naming, settings = args.naming, args.settings
        # Refused before anything is registered.
        if naming.partition == "aws-cn":
            # China's endpoint service names and ECR's layer bucket differ from the
            # com.amazonaws.<region>.<service> scheme the endpoints and policies assume.
            raise ValueError(
                f"network.mode create is not supported in {naming.region} (aws-cn): use "
                "network.mode existing with the platform's VPC"
            )
        repositories = tuple(image_repository(uri) for uri in args.image_uris)
        super().__init__("mlopskit:network:PrivateNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix = naming.prefix

        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=settings.cidr,
            # Interface endpoints' private DNS needs both.
            enable_dns_support=True,
            enable_dns_hostnames=True,
            opts=child,
        )
        # The VPC's default group allows all traffic among its members and all egress; taken
        # over with no rules, nothing placed in it by default can talk to anything.
        self.default_security_group = aws.ec2.DefaultSecurityGroup(
            f"{name}-default", vpc_id=self.vpc.id, ingress=[], egress=[], opts=child
        )
        zones = aws.get_availability_zones_output(
            state="available", opts=pulumi.InvokeOutputOptions(parent=self)
        ).names.apply(lambda names: _first_zones(names, settings.availability_zones, naming.region))
        self.subnets = [
            aws.ec2.Subnet(
                f"{name}-private-{index}",
                vpc_id=self.vpc.id,
                cidr_block=cidr,
                availability_zone=zones.apply(functools.partial(_nth, index)),
                map_public_ip_on_launch=False,
                opts=child,
            )
            for index, cidr in enumerate(subnet_cidrs(settings.cidr, settings.availability_zones))
        ]
        # One table, no routes of its own: only the VPC's local route and S3's prefix list.
        self.route_table = aws.ec2.RouteTable(f"{name}-private", vpc_id=self.vpc.id, opts=child)
        self.route_table_associations = [
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{index}",
                route_table_id=self.route_table.id,
                subnet_id=subnet.id,
                opts=child,
            )
            for index, subnet in enumerate(self.subnets)
        ]

        policies = pulumi.Output.all(
            account=args.account_id,
            buckets=pulumi.Output.all(*args.bucket_names, *args.extra_bucket_names),
            keys=pulumi.Output.all(*args.extra_kms_key_arns),
            sagemaker=pulumi.Output.all(*args.extra_sagemaker_arns),
        ).apply(
            lambda v: endpoint_policies(
                EndpointScope(
                    partition=naming.partition,
                    region=naming.region,
                    account_id=v["account"],
                    prefix=prefix,
                    metrics_namespace=naming.metrics_namespace,
                    endpoint_name=naming.endpoint,
                    bucket_names=tuple(v["buckets"]),
                    repositories=repositories,
                    extra_kms_key_arns=tuple(v["keys"]),
                    extra_sagemaker_arns=tuple(v["sagemaker"]),
                )
            )
        )
        self.s3_endpoint = aws.ec2.VpcEndpoint(
            f"{name}-{GATEWAY_SERVICE}",
            vpc_id=self.vpc.id,
            service_name=service_name(naming.region, GATEWAY_SERVICE),
            vpc_endpoint_type="Gateway",
            route_table_ids=[self.route_table.id],
            policy=policies.apply(_policy_json(GATEWAY_SERVICE)),
            opts=child,
        )

        self.jobs_security_group = aws.ec2.SecurityGroup(
            f"{name}-jobs",
            name=f"{prefix}-jobs",
            description=f"{prefix} SageMaker jobs and models: HTTPS to the VPC endpoints",
            vpc_id=self.vpc.id,
            opts=child,
        )
        self.endpoints_security_group = aws.ec2.SecurityGroup(
            f"{name}-endpoints",
            name=f"{prefix}-endpoints",
            description=f"{prefix} VPC endpoints: HTTPS from the jobs only",
            vpc_id=self.vpc.id,
            opts=child,
        )
        self.security_group_rules = self._rules(name)

        subnet_ids = [subnet.id for subnet in self.subnets]
        self.interface_endpoints = {
            service: aws.ec2.VpcEndpoint(
                f"{name}-{service}",
                vpc_id=self.vpc.id,
                service_name=service_name(naming.region, service),
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=subnet_ids,
                security_group_ids=[self.endpoints_security_group.id],
                policy=policies.apply(_policy_json(service)),
                opts=child,
            )
            for service in INTERFACE_SERVICES
        }
        self.placement = NetworkPlacement(
            subnet_ids=pulumi.Output.all(*subnet_ids),
            security_group_ids=pulumi.Output.all(self.jobs_security_group.id),
            s3_endpoint_id=self.s3_endpoint.id,
        )
        self.register_outputs(
            {
                "vpcId": self.vpc.id,
                "subnetIds": self.placement.subnet_ids,
                "jobsSecurityGroupId": self.jobs_security_group.id,
                "s3EndpointId": self.s3_endpoint.id,
            }
        )

    def _rules(
        self, name: str
    ) -> list[aws.vpc.SecurityGroupIngressRule | aws.vpc.SecurityGroupEgressRule]:
        """Each rule its own resource, no inline rules: the two groups name each other (an
        inline cycle cannot be created), and a group then has exactly these rules (the
        provider revokes AWS's default allow-all egress when it creates a group)."""
        child = pulumi.ResourceOptions(parent=self)
        jobs, endpoints = self.jobs_security_group.id, self.endpoints_security_group.id
        return [
            # Distributed training and inter-container encryption: a job's instances talk
            # to each other on any port.
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-jobs-from-jobs",
                security_group_id=jobs,
                ip_protocol="-1",
                referenced_security_group_id=jobs,
                description="Between the instances of a job",
                opts=child,
            ),
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-jobs-to-jobs",
                security_group_id=jobs,
                ip_protocol="-1",
                referenced_security_group_id=jobs,
                description="Between the instances of a job",
                opts=child,
            ),
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-jobs-to-endpoints",
                security_group_id=jobs,
                ip_protocol="tcp",
                from_port=HTTPS,
                to_port=HTTPS,
                referenced_security_group_id=endpoints,
                description="HTTPS to the interface endpoints",
                opts=child,
            ),
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-jobs-to-s3",
                security_group_id=jobs,
                ip_protocol="tcp",
                from_port=HTTPS,
                to_port=HTTPS,
                prefix_list_id=self.s3_endpoint.prefix_list_id,
                description="HTTPS to S3 through the gateway endpoint",
                opts=child,
            ),
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-endpoints-from-jobs",
                security_group_id=endpoints,
                ip_protocol="tcp",
                from_port=HTTPS,
                to_port=HTTPS,
                referenced_security_group_id=jobs,
                description="HTTPS from the jobs",
                opts=child,
            ),
        ]


def _policy_json(service: str) -> Callable[[dict[str, Document]], str]:
    return lambda documents: json.dumps(documents[service])


@dataclass(frozen=True)
class VpcFlowLogsArgs:
    naming: Naming
    account_id: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    retention_days: int


def flow_log_group_name(prefix: str) -> str:
    # Under /mlops/<prefix>/: the stack key's policy already lets CloudWatch Logs use it there.
    return f"/mlops/{prefix}/vpc-flow-logs"


class VpcFlowLogs(pulumi.ComponentResource):
    log_group: aws.cloudwatch.LogGroup
    role: aws.iam.Role
    flow_log: aws.ec2.FlowLog

    def __init__(
        self, name: str, args: VpcFlowLogsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlopskit:network:VpcFlowLogs", name, None, opts)
        naming = args.naming
        child = pulumi.ResourceOptions(parent=self)
        self.log_group = aws.cloudwatch.LogGroup(
            name,
            name=flow_log_group_name(naming.prefix),
            kms_key_id=args.kms_key_arn,
            retention_in_days=args.retention_days,
            opts=child,
        )
        # Named, not read off the group: the same ARN, known from the account alone.
        group_arn = pulumi.Output.from_input(args.account_id).apply(
            lambda account: (
                f"arn:{naming.partition}:logs:{naming.region}:{account}:log-group:"
                f"{flow_log_group_name(naming.prefix)}"
            )
        )
        service_role = ServiceRole(
            f"{name}-role",
            ServiceRoleArgs(
                role_name=naming.role("vpc-flow-logs"),
                description=f"VPC Flow Logs of {naming.prefix}: writes its one log group",
                trust_policy=pulumi.Output.from_input(args.account_id).apply(
                    lambda account: json.dumps(
                        flow_logs_trust_policy(naming.partition, naming.region, account)
                    )
                ),
                policy_names=("logs",),
                policies=group_arn.apply(_flow_log_policies),
            ),
            opts=child,
        )
        self.role = service_role.role
        self.flow_log = aws.ec2.FlowLog(
            name,
            vpc_id=args.vpc_id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=group_arn,
            iam_role_arn=service_role.arn,
            # Seconds: the shortest window AWS offers (60 or 600).
            max_aggregation_interval=60,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.log_group, *service_role.policies]
            ),
        )
        self.register_outputs({"logGroup": self.log_group.name, "flowLogId": self.flow_log.id})


def _flow_log_policies(log_group_arn: str) -> dict[str, Document]:
    return {"logs": flow_logs_policy(log_group_arn)}
