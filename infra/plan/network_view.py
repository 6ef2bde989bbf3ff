"""The network a plan declares, as a reviewer reads it: the VPC's CIDR and flow logs, its
subnets (zone, CIDR), endpoints (gateway or interface, service), security groups with their
rules summarised, and for each model, training job and pipeline job step whether it runs in
the VPC (how many subnets, which groups).

The offline plan gives EC2 resources the IDs ``infra.plan.mocks.mock_ec2_id`` derives from
their names, so an ID another resource carries (a rule's group, a model's subnets) is mapped
back to the resource's name here; an ID the plan did not declare (network.mode existing)
is shown as given.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from guardrails.model import lookup
from guardrails.pipeline_jobs import job_requests, vpc_config_path
from infra.plan.mocks import RecordedResource, generated_name, mock_ec2_id
from infra.plan.runner import Plan

VPC = "aws:ec2/vpc:Vpc"
SUBNET = "aws:ec2/subnet:Subnet"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
GROUP = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
MODEL = "aws:sagemaker/model:Model"
TRAINING_JOB = "aws:sagemaker/trainingJob:TrainingJob"
PIPELINE = "aws:sagemaker/pipeline:Pipeline"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
UNKNOWN = "[unknown]"
# Endpoint service names are com.amazonaws.<region>.<service> (EC2's DescribeVpcEndpointServices).
_SERVICE = re.compile(r"^com\.amazonaws\.[a-z0-9-]+\.(?P<service>.+)$")


@dataclass(frozen=True)
class Subnet:
    name: str
    zone: str
    cidr: str


@dataclass(frozen=True)
class Endpoint:
    name: str
    kind: str  # Gateway or Interface, as EC2 spells it
    service: str


@dataclass(frozen=True)
class Rule:
    """One security-group rule: direction, ports, and who is on the other side."""

    ingress: bool
    ports: str
    peer: str

    def __str__(self) -> str:
        return f"{self.ports} from {self.peer}" if self.ingress else f"{self.ports} -> {self.peer}"


@dataclass(frozen=True)
class SecurityGroup:
    name: str
    rules: tuple[Rule, ...]

    def summary(self) -> str:
        ins = [str(r) for r in self.rules if r.ingress]
        outs = [str(r) for r in self.rules if not r.ingress]
        if not ins and not outs:
            return f"{self.name}: no rules"
        return f"{self.name}: in {', '.join(ins) or 'none'}; out {', '.join(outs) or 'none'}"


@dataclass(frozen=True)
class Vpc:
    name: str
    cidr: str
    flow_logs: tuple[str, ...]
    subnets: tuple[Subnet, ...]
    endpoints: tuple[Endpoint, ...]
    groups: tuple[SecurityGroup, ...]


@dataclass(frozen=True)
class Placement:
    """Where a model or job runs: in a VPC (its subnets and groups), or not."""

    in_vpc: bool
    # IDs as the request carries them; None when known only after apply.
    subnet_ids: tuple[str, ...] | None = None
    group_ids: tuple[str, ...] | None = None
    # The groups as the tree names them (the plan's own by name, others by ID).
    groups: tuple[str, ...] = ()
    why_not: str = ""

    def __str__(self) -> str:
        if not self.in_vpc:
            return f"not in VPC ({self.why_not})" if self.why_not else "not in VPC"
        count = "subnets known after apply"
        if self.subnet_ids is not None:
            count = f"{len(self.subnet_ids)} subnet{'' if len(self.subnet_ids) == 1 else 's'}"
        groups = ", ".join(self.groups) if self.group_ids is not None else "known after apply"
        return f"in VPC ({count}, sg {groups})"


@dataclass(frozen=True)
class NetworkView:
    vpcs: tuple[Vpc, ...]
    # Model or training job URN -> its placement.
    placements: Mapping[str, Placement]
    # Pipeline URN -> (step name, placement) for each job step, branches included.
    steps: Mapping[str, tuple[tuple[str, Placement], ...]]
    # Subnets and groups the stack's jobs use but does not declare (network.mode existing).
    outside_subnets: tuple[str, ...] = ()
    outside_groups: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.vpcs and not self.outside_subnets and not self.outside_groups


def network_view(plan: Plan) -> NetworkView:
    names = _Names(plan)
    vpcs = tuple(_vpc(plan, vpc, names) for vpc in plan.of_type(VPC))
    placed: list[Placement] = []
    placements: dict[str, Placement] = {}
    serverless = _serverless_models(plan)
    for resource in [*plan.of_type(MODEL), *plan.of_type(TRAINING_JOB)]:
        config = resource.inputs.get("vpcConfig")
        placement = _placement(config, "subnets", "securityGroupIds", names)
        if resource.type == MODEL and not placement.in_vpc and _model_name(resource) in serverless:
            placement = Placement(False, why_not="serverless takes no VpcConfig")
        placements[resource.urn] = placement
        placed.append(placement)
    steps: dict[str, tuple[tuple[str, Placement], ...]] = {}
    for pipeline in plan.of_type(PIPELINE):
        definition = _json(pipeline.inputs.get("pipelineDefinition"))
        if definition is None:
            continue
        found = tuple(
            (step, _placement(vpc, "Subnets", "SecurityGroupIds", names))
            for step, vpc in job_step_vpcs(definition)
        )
        if found:
            steps[pipeline.urn] = found
            placed += [p for _, p in found]
    outside_subnets = {s for p in placed for s in p.subnet_ids or () if s not in names.by_id}
    outside_groups = {g for p in placed for g in p.group_ids or () if g not in names.by_id}
    view = NetworkView(
        vpcs, placements, steps, tuple(sorted(outside_subnets)), tuple(sorted(outside_groups))
    )
    if view.empty:
        # No network: the tree stays as it was before the kit had one.
        return NetworkView((), {}, {})
    return view


def job_step_vpcs(definition: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(step name, its job's VpcConfig or None) for processing, training and tuning steps,
    those in condition branches too: the guardrails' walk over the jobs steps start."""
    for step, kind, request in job_requests(definition):
        yield str(step.get("Name")), lookup(request, vpc_config_path(kind))


class _Names:
    """EC2 IDs the plan gave its resources -> the short names a reviewer reads."""

    def __init__(self, plan: Plan) -> None:
        self.by_id: dict[str, str] = {}
        prefixes = {VPC: "vpc", SUBNET: "subnet", GROUP: "sg", DEFAULT_GROUP: "sg"}
        prefixes[ENDPOINT] = "vpce"
        for type_token, prefix in prefixes.items():
            for resource in plan.of_type(type_token):
                self.by_id[mock_ec2_id(prefix, resource.name)] = short_name(plan, resource)
        for endpoint in plan.of_type(ENDPOINT):
            service = str(endpoint.inputs.get("serviceName", ""))
            if endpoint.inputs.get("vpcEndpointType") == "Gateway":
                # The AWS-managed prefix list of the service's addresses (the mocks' ID for it).
                self.by_id[mock_ec2_id("pl", service)] = f"pl-{service_of(service)}"

    def __call__(self, value: Any) -> str:
        return self.by_id.get(str(value), str(value))


def short_name(plan: Plan, resource: RecordedResource) -> str:
    """The logical name without its component's (``network-jobs`` in ``network``: ``jobs``)."""
    try:
        parent = plan.by_urn(resource.parent).name
    except KeyError:
        return resource.name
    head = f"{parent}-"
    return resource.name[len(head) :] if resource.name.startswith(head) else resource.name


def service_of(service_name: str) -> str:
    found = _SERVICE.match(service_name)
    return found.group("service") if found else service_name


def _vpc(plan: Plan, vpc: RecordedResource, names: _Names) -> Vpc:
    own_id = mock_ec2_id("vpc", vpc.name)
    single = len(plan.of_type(VPC)) == 1

    def mine(resource: RecordedResource) -> bool:
        # A VPC ID known only after apply can only be this one when there is one.
        return resource.inputs.get("vpcId") == own_id or single

    groups = [g for g in [*plan.of_type(GROUP), *plan.of_type(DEFAULT_GROUP)] if mine(g)]
    return Vpc(
        name=vpc.name,
        cidr=str(vpc.inputs.get("cidrBlock", UNKNOWN)),
        flow_logs=tuple(
            f"{f.inputs.get('trafficType', UNKNOWN)} -> {f.inputs.get('logDestinationType', 's3')}"
            for f in plan.of_type(FLOW_LOG)
            if mine(f)
        ),
        subnets=tuple(
            Subnet(
                short_name(plan, s),
                str(s.inputs.get("availabilityZone", UNKNOWN)),
                str(s.inputs.get("cidrBlock", UNKNOWN)),
            )
            for s in plan.of_type(SUBNET)
            if mine(s)
        ),
        # Gateways first (the route-table side of the VPC), then interfaces, by service.
        endpoints=tuple(
            sorted(
                (
                    Endpoint(
                        short_name(plan, e),
                        str(e.inputs.get("vpcEndpointType", "Gateway")),
                        service_of(str(e.inputs.get("serviceName", UNKNOWN))),
                    )
                    for e in plan.of_type(ENDPOINT)
                    if mine(e)
                ),
                key=lambda e: (e.kind != "Gateway", e.service),
            )
        ),
        groups=tuple(sorted((_group(plan, g, names) for g in groups), key=lambda g: g.name)),
    )


def _group(plan: Plan, group: RecordedResource, names: _Names) -> SecurityGroup:
    own_id = mock_ec2_id("sg", group.name)
    rules = [r for i in ("ingress", "egress") for r in _inline(group.inputs, i, own_id, names)]
    for rule in plan.resources:
        if rule.inputs.get("securityGroupId") != own_id:
            continue
        if rule.type in (INGRESS_RULE, EGRESS_RULE):
            inputs = rule.inputs
            peer = _peer(
                inputs.get("referencedSecurityGroupId"),
                inputs.get("prefixListId"),
                inputs.get("cidrIpv4") or inputs.get("cidrIpv6"),
                own_id,
                names,
            )
            ports = _ports(inputs.get("ipProtocol"), inputs.get("fromPort"), inputs.get("toPort"))
            rules.append(Rule(rule.type == INGRESS_RULE, ports, peer))
        elif rule.type == GROUP_RULE:
            source = rule.inputs.get("sourceSecurityGroupId")
            inline = {**rule.inputs, "securityGroups": [source] if source else []}
            direction = str(rule.inputs.get("type"))
            rules += _inline({direction: [inline]}, direction, own_id, names)
    # The group's own members first, then other groups, prefix lists and ranges.
    rules.sort(key=lambda r: (r.peer != "self", r.peer))
    return SecurityGroup(short_name(plan, group), tuple(rules))


def _inline(
    inputs: Mapping[str, Any], direction: str, own_id: str, names: _Names
) -> Iterator[Rule]:
    """Rules written inside a group (or SecurityGroupRule's fields, which are the same)."""
    for rule in inputs.get(direction) or []:
        if not isinstance(rule, Mapping):
            continue
        ports = _ports(rule.get("protocol"), rule.get("fromPort"), rule.get("toPort"))
        peers: list[str] = ["self"] if rule.get("self") else []
        peers += [_peer(g, None, None, own_id, names) for g in rule.get("securityGroups") or []]
        peers += [_peer(None, p, None, own_id, names) for p in rule.get("prefixListIds") or []]
        cidrs = [*(rule.get("cidrBlocks") or []), *(rule.get("ipv6CidrBlocks") or [])]
        peers += [str(c) for c in cidrs]
        for peer in peers:
            yield Rule(direction == "ingress", ports, peer)


def _peer(group: Any, prefix_list: Any, cidr: Any, own_id: str, names: _Names) -> str:
    if group:
        return "self" if group == own_id else names(group)
    if prefix_list:
        return names(prefix_list)
    return str(cidr)


def _ports(protocol: Any, from_port: Any, to_port: Any) -> str:
    if str(protocol) in ("-1", "all"):
        return "all"
    ports = f"{from_port}" if from_port == to_port else f"{from_port}-{to_port}"
    return ports if str(protocol) == "tcp" else f"{protocol} {ports}"


def _placement(config: Any, subnets_key: str, groups_key: str, names: _Names) -> Placement:
    if config == UNKNOWN:
        return Placement(True)
    if not isinstance(config, Mapping):
        return Placement(False)
    subnet_ids, group_ids = _ids(config.get(subnets_key)), _ids(config.get(groups_key))
    groups = tuple(map(names, group_ids or ()))
    return Placement(True, subnet_ids, group_ids, groups)


def _ids(value: Any) -> tuple[str, ...] | None:
    """A list of known IDs, or None for one known only after apply (or a pipeline parameter)."""
    if not isinstance(value, list) or any(not isinstance(v, str) or v == UNKNOWN for v in value):
        return None
    return tuple(value)


def _serverless_models(plan: Plan) -> set[str]:
    """Names of models every endpoint config that serves them serves serverless."""
    variants: dict[str, list[bool]] = {}
    for config in plan.of_type(ENDPOINT_CONFIG):
        for variant in config.inputs.get("productionVariants") or []:
            if isinstance(variant, Mapping):
                name = str(variant.get("modelName"))
                variants.setdefault(name, []).append(bool(variant.get("serverlessConfig")))
    return {name for name, serverless in variants.items() if all(serverless)}


def _model_name(resource: RecordedResource) -> str:
    return str(resource.inputs.get("name") or generated_name(resource.type, resource.name))


def _json(value: Any) -> Mapping[str, Any] | None:
    if isinstance(value, Mapping):
        return value
    if not isinstance(value, str) or not value.startswith("{"):
        return None
    try:
        decoded = json.loads(value)
    except json.JSONDecodeError:
        return None
    return decoded if isinstance(decoded, Mapping) else None
