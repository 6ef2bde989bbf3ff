"""vpc-mode: in the environments the config names, jobs and models run in the stack's VPC,
and nothing in the stack opens a way between that VPC and the internet.

In VPC: every SageMaker model (but one served only by serverless variants: Serverless
Inference takes no VpcConfig, https://docs.aws.amazon.com/sagemaker/latest/dg/
serverless-endpoints.html#serverless-endpoints-how-it-works-exclusions), every training job
and every job a pipeline step starts (processing, training, and a tuning step's training
jobs, read as guardrails/pipeline_jobs.py reads them) carries a VpcConfig with at least one
subnet and one security group, the minimum botocore's VpcConfig shape allows. AWS Config's
managed rule sagemaker-model-in-vpc asks the same of models.

No internet: no internet, NAT or egress-only internet gateway (nor an attachment of one),
no route to a default destination (0.0.0.0/0, ::/0), and no security-group rule open to
one, in either direction. A value known only after apply gets the benefit of the doubt, as
in the other guardrails; a pipeline parameter in place of a list does not (it is chosen per
execution, so the stack cannot promise it).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from guardrails.encryption import TRAINING_JOB
from guardrails.isolation import MODEL, serverless_only_models
from guardrails.model import (
    UNKNOWN,
    Context,
    Finding,
    Resource,
    as_document,
    as_list,
    environment_of,
    known,
    lookup,
    subject,
)
from guardrails.pipeline_jobs import PIPELINE, job_requests, vpc_config_path

DEFAULT_ENVIRONMENTS = ("staging", "prod")

# Resource types that are, or attach, a way out of the VPC to the internet.
GATEWAYS = {
    "aws:ec2/internetGateway:InternetGateway": "an internet gateway",
    "aws:ec2/internetGatewayAttachment:InternetGatewayAttachment": "an internet gateway",
    "aws:ec2/natGateway:NatGateway": "a NAT gateway",
    "aws:ec2/egressOnlyInternetGateway:EgressOnlyInternetGateway": (
        "an egress-only internet gateway"
    ),
}
ROUTE = "aws:ec2/route:Route"
# Route tables with inline routes ({cidrBlock, ipv6CidrBlock, ...} each).
ROUTE_TABLES = ("aws:ec2/routeTable:RouteTable", "aws:ec2/defaultRouteTable:DefaultRouteTable")
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
# Security groups with inline ingress/egress lists ({cidrBlocks, ipv6CidrBlocks, ...} each).
GROUPS = (
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
)


def judged(environment: str | None, params: Mapping[str, Any]) -> bool:
    environments = params.get("environments", list(DEFAULT_ENVIRONMENTS))
    return environment is not None and environment in as_list(environments)


# --- in VPC --------------------------------------------------------------------------------


def vpc_problem(value: Any, subnets_key: str, groups_key: str) -> str | None:
    """Why ``value`` (a VpcConfig) does not place a job in a VPC, or None when it does."""
    if value == UNKNOWN:
        return None
    if not isinstance(value, Mapping):
        return "is not set"
    missing = [
        what
        for key, what in ((subnets_key, "subnets"), (groups_key, "security groups"))
        if not _listed(value.get(key))
    ]
    return f"lists no {' and no '.join(missing)}" if missing else None


def _listed(value: Any) -> bool:
    """At least one ID (or a list known only after apply, or an ID that is)."""
    if value == UNKNOWN:
        return True
    return isinstance(value, list | tuple) and any(isinstance(v, str) and v for v in value)


def _step_problems(definition: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(step name, VpcConfig path, problem) for each job step outside the VPC."""
    for step, kind, arguments in job_requests(definition):
        path = vpc_config_path(kind)
        problem = vpc_problem(lookup(arguments, path), "Subnets", "SecurityGroupIds")
        if problem is not None:
            yield str(step.get("Name")), path, problem


def validate_models(resources: Sequence[Resource], params: Mapping[str, Any]) -> list[Finding]:
    exempt_serverless = params.get("exemptServerless", True) is not False
    exempt = serverless_only_models(resources) if exempt_serverless else set()
    findings: list[Finding] = []
    for model in (r for r in resources if r.type == MODEL and r.urn not in exempt):
        environment = environment_of(model.props, model.provider_tags, params)
        if not judged(environment, params):
            continue
        problem = vpc_problem(model.props.get("vpcConfig"), "subnets", "securityGroupIds")
        if problem is not None:
            findings.append(
                Finding(
                    model.urn,
                    model.name,
                    f"{subject(model.type, model.name)}: models must run in the stack's VPC in "
                    f"environment '{environment}' (vpcConfig {problem}; only a model served "
                    "solely by serverless variants is exempt)",
                )
            )
    return findings


def _jobs_outside(resource_type: str, props: Mapping[str, Any], context: Context) -> list[str]:
    who = subject(resource_type, context.name)
    where = f"in environment '{context.environment}'"
    if resource_type == TRAINING_JOB:
        problem = vpc_problem(props.get("vpcConfig"), "subnets", "securityGroupIds")
        if problem is None:
            return []
        return [f"{who}: training jobs must run in the stack's VPC {where} (vpcConfig {problem})"]
    definition = as_document(props.get("pipelineDefinition")) if resource_type == PIPELINE else None
    if definition is None:  # not a pipeline, or its definition is known only after apply
        return []
    return [
        f"{who}: step {step}: pipeline jobs must run in the stack's VPC {where} ({path} {problem})"
        for step, path, problem in _step_problems(definition)
    ]


# --- no internet ---------------------------------------------------------------------------


def is_default_route(cidr: Any) -> bool:
    """0.0.0.0/0 or ::/0 however written; an unknown or malformed value is not one."""
    if not isinstance(cidr, str) or not known(cidr):
        return False
    try:
        return ipaddress.ip_network(cidr.strip(), strict=False).prefixlen == 0
    except ValueError:
        return False


def _routes(resource_type: str, props: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(label, destination) for each route the resource declares."""
    if resource_type == ROUTE:
        yield "route", props.get("destinationCidrBlock")
        yield "route", props.get("destinationIpv6CidrBlock")
    elif resource_type in ROUTE_TABLES:
        for index, route in enumerate(as_list(props.get("routes"))):
            if isinstance(route, Mapping):
                yield f"route {index}", route.get("cidrBlock")
                yield f"route {index}", route.get("ipv6CidrBlock")


def _ports(protocol: Any, from_port: Any, to_port: Any) -> str:
    if str(protocol) in ("-1", "all"):
        return "all traffic"
    ports = f"{from_port}" if from_port == to_port else f"{from_port}-{to_port}"
    return f"{protocol} {ports}"


def _group_rules(resource_type: str, props: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(label, source or destination) for each CIDR a security-group rule names."""
    if resource_type in (INGRESS_RULE, EGRESS_RULE):
        direction = "ingress" if resource_type == INGRESS_RULE else "egress"
        ports = _ports(props.get("ipProtocol"), props.get("fromPort"), props.get("toPort"))
        for key in ("cidrIpv4", "cidrIpv6"):
            yield f"{direction} rule ({ports})", props.get(key)
    elif resource_type == GROUP_RULE:
        ports = _ports(props.get("protocol"), props.get("fromPort"), props.get("toPort"))
        for cidr in [*as_list(props.get("cidrBlocks")), *as_list(props.get("ipv6CidrBlocks"))]:
            yield f"{props.get('type')} rule ({ports})", cidr
    elif resource_type in GROUPS:
        for direction in ("ingress", "egress"):
            for index, rule in enumerate(as_list(props.get(direction))):
                if not isinstance(rule, Mapping):
                    continue
                ports = _ports(rule.get("protocol"), rule.get("fromPort"), rule.get("toPort"))
                cidrs = [*as_list(rule.get("cidrBlocks")), *as_list(rule.get("ipv6CidrBlocks"))]
                for cidr in cidrs:
                    yield f"{direction} rule {index} ({ports})", cidr


def _ways_out(resource_type: str, props: Mapping[str, Any], context: Context) -> list[str]:
    who = subject(resource_type, context.name)
    where = f"in environment '{context.environment}'"
    if resource_type in GATEWAYS:
        return [
            f"{who}: {GATEWAYS[resource_type]} is a way to the internet, and {where} the VPC "
            "reaches AWS only through its VPC endpoints"
        ]
    found = [
        f"{who}: {label} to {cidr} leads to the internet; no default route is allowed {where}"
        for label, cidr in _routes(resource_type, props)
        if is_default_route(cidr)
    ]
    found += [
        f"{who}: {label} is open to {cidr}; {where} rules may name only security groups, "
        "prefix lists and private ranges"
        for label, cidr in _group_rules(resource_type, props)
        if is_default_route(cidr)
    ]
    return found


def validate_resource(resource_type: str, props: Mapping[str, Any], context: Context) -> list[str]:
    if not judged(context.environment, context.params):
        return []
    return _jobs_outside(resource_type, props, context) + _ways_out(resource_type, props, context)
