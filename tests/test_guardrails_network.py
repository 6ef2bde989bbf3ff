"""vpc-mode: in staging and prod every job and model runs in a VPC with no way to the internet.

Hand-built resources show each rule passing and failing; the kit's own stacks show that the
staging and prod plans (which the lead wires into the stack's VPC) pass, and would fail
without their VpcConfig.
"""

from __future__ import annotations

import json
import runpy
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from conftest import REPO, PlannedStack
from test_guardrails import _run_pack

from guardrails import PolicyConfigError, Resource, check_resources
from guardrails.config import parse_policy_config
from guardrails.model import UNKNOWN
from guardrails.network import is_default_route
from guardrails.runner import resources_of

POLICY = "vpc-mode"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/k"
TAGS = {"project": "p", "environment": "prod", "stack": "prod", "managed-by": "pulumi"}
DEV = {**TAGS, "environment": "dev", "stack": "dev"}
SUBNETS = ["subnet-0a1b2c3d4e5f60718", "subnet-0b1c2d3e4f5a60718"]
GROUPS = ["sg-0c1d2e3f4a5b60718"]
IN_VPC = {"subnets": SUBNETS, "securityGroupIds": GROUPS}
STEP_VPC = {"Subnets": SUBNETS, "SecurityGroupIds": GROUPS}

MODEL = "aws:sagemaker/model:Model"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
TRAINING_JOB = "aws:sagemaker/trainingJob:TrainingJob"
PIPELINE = "aws:sagemaker/pipeline:Pipeline"
ROUTE = "aws:ec2/route:Route"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"


def res(type_: str, name: str, props: dict[str, Any], tags: dict[str, str] = TAGS) -> Resource:
    return Resource(f"urn:{type_}::{name}", type_, name, props, tags)


def found(*resources: Resource, config: dict[str, Any] | None = None) -> list[str]:
    violations = check_resources(resources, parse_policy_config(config or {}))
    return [v.message for v in violations if v.policy == POLICY]


def model(name: str = "churn-model", **props: Any) -> Resource:
    return res(MODEL, name, {"name": name, "executionRoleArn": "arn:role", **props})


def serving(model_name: str, *, serverless: bool) -> Resource:
    variant: dict[str, Any] = {"variantName": "primary", "modelName": model_name}
    if serverless:
        variant["serverlessConfig"] = {"memorySizeInMb": 2048, "maxConcurrency": 1}
    else:
        variant.update(instanceType="ml.m5.large", initialInstanceCount=1)
    return res(ENDPOINT_CONFIG, f"serving-{serverless}", {"productionVariants": [variant]})


def pipeline(*steps: dict[str, Any], definition: Any = None) -> Resource:
    # Steps nest in a condition's branch, as the kit's register step's neighbours do.
    gate = {"Name": "Gate", "Type": "Condition", "Arguments": {"IfSteps": list(steps)}}
    document = definition or json.dumps({"Version": "2020-12-01", "Steps": [gate]})
    return res(PIPELINE, "training", {"pipelineDefinition": document})


def processing(name: str, vpc: Any = STEP_VPC) -> dict[str, Any]:
    network: dict[str, Any] = {"EnableNetworkIsolation": True}
    if vpc is not None:
        network["VpcConfig"] = vpc
    return {"Name": name, "Type": "Processing", "Arguments": {"NetworkConfig": network}}


def training(name: str, vpc: Any = STEP_VPC) -> dict[str, Any]:
    arguments = {"EnableNetworkIsolation": True}
    return {"Name": name, "Type": "Training", "Arguments": {**arguments, "VpcConfig": vpc}}


def tuning(name: str, *jobs: dict[str, Any], single: bool = False) -> dict[str, Any]:
    arguments = {"TrainingJobDefinition": jobs[0]} if single else {"TrainingJobDefinitions": jobs}
    return {"Name": name, "Type": "Tuning", "Arguments": arguments}


def private_network() -> list[Resource]:
    """The shape the kit's network has: rules that name groups and S3's prefix list only."""
    return [
        res(ROUTE_TABLE, "private", {"vpcId": "vpc-1", "routes": []}),
        res(ROUTE, "to-s3", {"routeTableId": "rtb-1", "destinationPrefixListId": "pl-63a5400a"}),
        res(ROUTE, "to-peer", {"routeTableId": "rtb-1", "destinationCidrBlock": "10.40.0.0/16"}),
        res(SECURITY_GROUP, "jobs", {"vpcId": "vpc-1", "name": "p-jobs"}),
        res(SECURITY_GROUP, "endpoints", {"vpcId": "vpc-1", "ingress": [], "egress": []}),
        res(INGRESS, "jobs-from-jobs", {"ipProtocol": "-1", "referencedSecurityGroupId": "sg-1"}),
        res(
            EGRESS,
            "jobs-to-s3",
            {"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "prefixListId": "pl-63a5400a"},
        ),
        res(
            INGRESS,
            "endpoints-from-vpc",
            {"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "cidrIpv4": "10.20.0.0/16"},
        ),
    ]


# --- passing ---------------------------------------------------------------------------------


def test_a_stack_with_everything_in_the_vpc_and_no_way_out_passes() -> None:
    step_job = {"VpcConfig": STEP_VPC, "EnableNetworkIsolation": True}
    resources = [
        model(vpcConfig=IN_VPC),
        serving("churn-model", serverless=False),
        res(TRAINING_JOB, "baseline", {"vpcConfig": IN_VPC}),
        pipeline(processing("Evaluate"), training("Train"), tuning("Tune", step_job)),
        *private_network(),
    ]
    assert found(*resources) == []


def test_values_known_only_after_apply_get_the_benefit_of_the_doubt() -> None:
    unknown_lists = {"subnets": UNKNOWN, "securityGroupIds": [UNKNOWN]}
    resources = [
        model("a", vpcConfig=UNKNOWN),
        model("b", vpcConfig=unknown_lists),
        res(TRAINING_JOB, "baseline", {"vpcConfig": UNKNOWN}),
        pipeline(definition=UNKNOWN),
        pipeline(processing("Evaluate", vpc=UNKNOWN)),
        res(ROUTE, "later", {"destinationCidrBlock": UNKNOWN}),
        res(INGRESS, "later", {"ipProtocol": "tcp", "cidrIpv4": UNKNOWN}),
    ]
    assert found(*resources) == []


# --- in VPC ------------------------------------------------------------------------------------


def test_a_model_outside_the_vpc_is_denied_with_what_is_missing() -> None:
    assert found(model()) == [
        f"{MODEL} 'churn-model': models must run in the stack's VPC in environment 'prod' "
        "(vpcConfig is not set; only a model served solely by serverless variants is exempt)"
    ]
    no_subnets = model(vpcConfig={"subnets": [], "securityGroupIds": GROUPS})
    assert "(vpcConfig lists no subnets;" in found(no_subnets)[0]
    empty = model(vpcConfig={"subnets": [""], "securityGroupIds": []})
    assert "(vpcConfig lists no subnets and no security groups;" in found(empty)[0]


def test_a_model_only_serverless_variants_serve_is_exempt_unless_configured() -> None:
    # Serverless Inference takes no VpcConfig.
    only_serverless = [model(), serving("churn-model", serverless=True)]
    assert found(*only_serverless) == []
    strict = {POLICY: {"exemptServerless": False}}
    assert len(found(*only_serverless, config=strict)) == 1
    # One instance variant is enough to need the VPC; so is being served by no endpoint.
    assert len(found(*only_serverless, serving("churn-model", serverless=False))) == 1
    assert len(found(model())) == 1


def test_a_training_job_outside_the_vpc_is_denied() -> None:
    assert found(res(TRAINING_JOB, "baseline", {})) == [
        f"{TRAINING_JOB} 'baseline': training jobs must run in the stack's VPC in environment "
        "'prod' (vpcConfig is not set)"
    ]
    no_groups = res(TRAINING_JOB, "baseline", {"vpcConfig": {"subnets": SUBNETS}})
    assert found(no_groups)[0].endswith("(vpcConfig lists no security groups)")


def test_every_pipeline_job_outside_the_vpc_is_named_by_step_and_path() -> None:
    tuned_in = {"VpcConfig": STEP_VPC}
    tuned_out: dict[str, Any] = {"EnableNetworkIsolation": True}
    resources = pipeline(
        processing("Evaluate", vpc=None),
        training("Train", vpc={"Subnets": SUBNETS, "SecurityGroupIds": []}),
        tuning("Tune", tuned_in, tuned_out),
        tuning("TuneOne", tuned_out, single=True),
        processing("Report"),
    )
    where = f"{PIPELINE} 'training': step"
    why = "pipeline jobs must run in the stack's VPC in environment 'prod'"
    assert found(resources) == [
        f"{where} Evaluate: {why} (NetworkConfig.VpcConfig is not set)",
        f"{where} Train: {why} (VpcConfig lists no security groups)",
        f"{where} Tune: {why} (VpcConfig is not set)",
        f"{where} TuneOne: {why} (VpcConfig is not set)",
    ]


def test_a_pipeline_parameter_in_place_of_the_subnets_is_not_a_promise() -> None:
    # Chosen per execution, so the stack cannot vouch for it (unlike an unknown at preview).
    parameter = {"Subnets": {"Get": "Parameters.Subnets"}, "SecurityGroupIds": GROUPS}
    [message] = found(pipeline(processing("Evaluate", vpc=parameter)))
    assert message.endswith("(NetworkConfig.VpcConfig lists no subnets)")


# --- no way to the internet ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "what"),
    [
        ("aws:ec2/internetGateway:InternetGateway", "an internet gateway"),
        ("aws:ec2/internetGatewayAttachment:InternetGatewayAttachment", "an internet gateway"),
        ("aws:ec2/natGateway:NatGateway", "a NAT gateway"),
        (
            "aws:ec2/egressOnlyInternetGateway:EgressOnlyInternetGateway",
            "an egress-only internet gateway",
        ),
    ],
)
def test_a_gateway_to_the_internet_is_denied(type_: str, what: str) -> None:
    assert found(res(type_, "out", {"vpcId": "vpc-1"})) == [
        f"{type_} 'out': {what} is a way to the internet, and in environment 'prod' the VPC "
        "reaches AWS only through its VPC endpoints"
    ]


def test_a_default_route_is_denied_as_a_route_or_inline() -> None:
    assert found(res(ROUTE, "out", {"destinationCidrBlock": "0.0.0.0/0", "gatewayId": "igw"})) == [
        f"{ROUTE} 'out': route to 0.0.0.0/0 leads to the internet; no default route is allowed "
        "in environment 'prod'"
    ]
    v6 = res(ROUTE, "out6", {"destinationIpv6CidrBlock": "::/0"})
    assert "route to ::/0 leads" in found(v6)[0]
    table = res(
        ROUTE_TABLE,
        "public",
        {"routes": [{"cidrBlock": "10.0.0.0/8"}, {"ipv6CidrBlock": "::/0"}]},
    )
    assert [m.split(" leads")[0] for m in found(table)] == [
        f"{ROUTE_TABLE} 'public': route 1 to ::/0"
    ]


def test_a_security_group_rule_open_to_everywhere_is_denied_in_each_form() -> None:
    https = {"fromPort": 443, "toPort": 443}
    resources = [
        res(INGRESS, "in", {"ipProtocol": "tcp", **https, "cidrIpv4": "0.0.0.0/0"}),
        res(EGRESS, "out", {"ipProtocol": "-1", "cidrIpv6": "::/0"}),
        res(
            GROUP_RULE,
            "legacy",
            {
                "type": "egress",
                "protocol": "tcp",
                **https,
                "cidrBlocks": ["10.0.0.0/8", "0.0.0.0/0"],
            },
        ),
        res(
            SECURITY_GROUP,
            "inline",
            {
                "ingress": [
                    {
                        "protocol": "tcp",
                        "fromPort": 22,
                        "toPort": 22,
                        "cidrBlocks": ["10.1.0.0/16"],
                    },
                    {
                        "protocol": "tcp",
                        "fromPort": 8080,
                        "toPort": 8081,
                        "ipv6CidrBlocks": ["::/0"],
                    },
                ]
            },
        ),
    ]
    rule = "in environment 'prod' rules may name only security groups, prefix lists and private"
    assert found(*resources) == [
        f"{INGRESS} 'in': ingress rule (tcp 443) is open to 0.0.0.0/0; {rule} ranges",
        f"{EGRESS} 'out': egress rule (all traffic) is open to ::/0; {rule} ranges",
        f"{GROUP_RULE} 'legacy': egress rule (tcp 443) is open to 0.0.0.0/0; {rule} ranges",
        f"{SECURITY_GROUP} 'inline': ingress rule 1 (tcp 8080-8081) is open to ::/0; {rule} ranges",
    ]


@pytest.mark.parametrize(
    ("cidr", "default"),
    [
        ("0.0.0.0/0", True),
        ("::/0", True),
        ("0:0::/0", True),
        (" 0.0.0.0/0", True),
        ("10.0.0.0/8", False),
        ("0.0.0.0/1", False),
        ("not-a-cidr", False),
        (UNKNOWN, False),
        (None, False),
    ],
)
def test_default_destinations_are_recognised_however_written(cidr: Any, default: bool) -> None:
    assert is_default_route(cidr) is default


# --- environments and config -----------------------------------------------------------------


def test_only_the_configured_environments_are_judged() -> None:
    outside = [
        res(MODEL, "m", {"name": "m"}, tags=DEV),
        res(TRAINING_JOB, "baseline", {}, tags=DEV),
        res("aws:ec2/natGateway:NatGateway", "nat", {}, tags=DEV),
    ]
    assert found(*outside) == []
    assert len(found(*outside, config={POLICY: {"environments": ["dev"]}})) == 3
    # An explicit environment in the config wins over the tags.
    assert len(found(*outside, config={POLICY: {"environment": "staging"}})) == 3
    assert found(res(MODEL, "m", {"name": "m"}, tags={}), config={POLICY: {}}) == []
    assert found(model(), config={POLICY: "disabled"}) == []


def test_a_bad_parameter_is_refused_with_its_name() -> None:
    with pytest.raises(PolicyConfigError, match=r"vpc-mode.environments must be a JSON array"):
        parse_policy_config({POLICY: {"environments": "prod"}})
    with pytest.raises(PolicyConfigError, match=r"vpc-mode has no parameter 'subnets'"):
        parse_policy_config({POLICY: {"subnets": []}})


def test_the_policy_pack_reports_what_the_offline_check_reports() -> None:
    # Run as Pulumi would, but under another name, so PolicyPack (a gRPC server) does not start.
    pack = runpy.run_path(str(REPO / "policy"), run_name="policy_pack_under_test")
    resources = [
        model(),
        serving("churn-model", serverless=False),
        pipeline(processing("Evaluate", vpc=None)),
        res(EGRESS, "out", {"ipProtocol": "-1", "cidrIpv4": "0.0.0.0/0"}),
    ]
    reported = [m for name, m in _run_pack(pack, resources, TAGS) if name == POLICY]
    assert len(reported) == 3
    assert sorted(reported) == sorted(found(*resources))


# --- the kit's stacks --------------------------------------------------------------------------
# These need the lead's wiring of the network into infra/components/environment.py: until
# every model, job and step of staging and prod carries VpcConfig, the first one fails.


@pytest.mark.parametrize("name", ["staging", "prod"])
def test_the_kits_vpc_stacks_pass_and_would_fail_without_their_vpc_config(
    name: str, plan_of: Callable[[str], PlannedStack]
) -> None:
    resources = resources_of(plan_of(name).plan)
    assert found(*resources) == []
    outside = found(*[_without_vpc(r) for r in resources])
    # Without VpcConfig every model (none is serverless here) and every job step fails.
    models = {r.name for r in resources if r.type == MODEL}
    assert len(models) == 2
    assert {m.split("'")[1] for m in outside if m.startswith(MODEL)} == models
    steps = [m for m in outside if m.startswith(PIPELINE)]
    assert len(steps) >= 8
    assert all("pipeline jobs must run in the stack's VPC" in m for m in steps)


def test_dev_runs_in_no_vpc_and_is_not_judged_unless_configured(
    plan_of: Callable[[str], PlannedStack],
) -> None:
    resources = resources_of(plan_of("dev").plan)
    assert found(*resources) == []
    strict = found(*resources, config={POLICY: {"environments": ["dev"]}})
    # Dev's serverless model stays exempt; its batch model and its jobs do not.
    assert [m.split("'")[1] for m in strict if m.startswith(MODEL)] == ["churn-dev-batch-model"]
    assert len([m for m in strict if m.startswith(PIPELINE)]) >= 4


def _without_vpc(resource: Resource) -> Resource:
    props = {k: v for k, v in resource.props.items() if k != "vpcConfig"}
    definition = props.get("pipelineDefinition")
    if resource.type == PIPELINE and isinstance(definition, str) and definition != UNKNOWN:
        props["pipelineDefinition"] = json.dumps(_drop_key(json.loads(definition), "VpcConfig"))
    return replace(resource, props=props)


def _drop_key(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        return {k: _drop_key(v, key) for k, v in value.items() if k != key}
    if isinstance(value, list):
        return [_drop_key(v, key) for v in value]
    return value
