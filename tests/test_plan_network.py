"""The plan tree shows the network: the VPC, its subnets, endpoints and security groups, and
whether each model and job runs in it. A stack without a network renders as it always has."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from conftest import PlannedStack
from rich.console import Console

from infra.plan.mocks import RecordedResource, mock_ec2_id
from infra.plan.network_view import network_view
from infra.plan.render import to_rich
from infra.plan.runner import Plan

ENVIRONMENT = "mlopskit:index:MlopsEnvironment"
NETWORK = "mlopskit:network:PrivateNetwork"
MODEL = "aws:sagemaker/model:Model"
PIPELINE = "aws:sagemaker/pipeline:Pipeline"
TRAINING_JOB = "aws:sagemaker/trainingJob:TrainingJob"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
SG = "aws:ec2/securityGroup:SecurityGroup"
JOBS, ENDPOINTS = mock_ec2_id("sg", "network-jobs"), mock_ec2_id("sg", "network-endpoints")
SUBNETS = [mock_ec2_id("subnet", "network-private-0"), mock_ec2_id("subnet", "network-private-1")]
S3 = "com.amazonaws.eu-west-1.s3"


def rec(type_: str, name: str, inputs: dict[str, Any], parent: str = "") -> RecordedResource:
    custom = not type_.startswith("mlopskit:")
    return RecordedResource(
        urn=f"urn:pulumi:s::p::{type_}::{name}",
        type=type_,
        name=name,
        parent=parent,
        custom=custom,
        provider="",
        protect=False,
        retain_on_delete=False,
        delete_before_replace=False,
        replace_on_changes=(),
        depends_on=(),
        inputs=inputs,
    )


def text(*resources: RecordedResource) -> str:
    console = Console(record=True, width=200, color_system=None)
    console.print(to_rich(Plan("p", "s", tuple(resources))))
    return console.export_text()


def pipeline(parent: str) -> RecordedResource:
    in_vpc = {"Subnets": SUBNETS, "SecurityGroupIds": [JOBS]}
    steps = [
        {"Name": "Split", "Type": "Processing",
         "Arguments": {"NetworkConfig": {"VpcConfig": in_vpc}}},
        {"Name": "Gate", "Type": "Condition", "Arguments": {"ElseSteps": [
            {"Name": "Train", "Type": "Training", "Arguments": {}},
            {"Name": "Tune", "Type": "Tuning", "Arguments": {
                "TrainingJobDefinition": {"VpcConfig": in_vpc}}},
        ]}},
        {"Name": "Register", "Type": "RegisterModel", "Arguments": {}},
    ]  # fmt: skip
    definition = json.dumps({"Version": "2020-12-01", "Steps": steps})
    return rec(
        PIPELINE, "training", {"pipelineName": "t", "pipelineDefinition": definition}, parent
    )


def network_stack() -> list[RecordedResource]:
    env = rec(ENVIRONMENT, "churn", {})
    net = rec(NETWORK, "network", {}, env.urn)
    vpc_id = mock_ec2_id("vpc", "network-vpc")

    def rule(kind: str, name: str, group: str, **inputs: Any) -> RecordedResource:
        token = f"aws:vpc/securityGroup{kind}Rule:SecurityGroup{kind}Rule"
        return rec(token, name, {"securityGroupId": group, **inputs}, net.urn)

    https = {"ipProtocol": "tcp", "fromPort": 443, "toPort": 443}
    placed = {"subnets": SUBNETS, "securityGroupIds": [JOBS]}
    return [
        env,
        net,
        rec("aws:ec2/vpc:Vpc", "network-vpc", {"cidrBlock": "10.20.0.0/16"}, net.urn),
        rec("aws:ec2/flowLog:FlowLog", "network-flow", {"vpcId": vpc_id, "trafficType": "ALL",
            "logDestinationType": "cloud-watch-logs"}, env.urn),
        *[
            rec("aws:ec2/subnet:Subnet", f"network-private-{i}", {"vpcId": vpc_id,
                "availabilityZone": f"eu-west-1{zone}", "cidrBlock": cidr}, net.urn)
            for i, (zone, cidr) in enumerate([("a", "10.20.0.0/19"), ("b", "10.20.32.0/19")])
        ],
        rec("aws:ec2/vpcEndpoint:VpcEndpoint", "network-sts", {"vpcId": vpc_id,
            "vpcEndpointType": "Interface", "serviceName": "com.amazonaws.eu-west-1.sts"}, net.urn),
        rec("aws:ec2/vpcEndpoint:VpcEndpoint", "network-s3", {"vpcId": vpc_id,
            "vpcEndpointType": "Gateway", "serviceName": S3}, net.urn),
        rec(SG, "network-jobs", {"vpcId": vpc_id, "name": "churn-jobs"}, net.urn),
        rec(SG, "network-endpoints", {"vpcId": vpc_id}, net.urn),
        rec("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "network-default",
            {"vpcId": vpc_id, "ingress": [], "egress": []}, net.urn),
        rule("Ingress", "network-jobs-from-jobs", JOBS, ipProtocol="-1",
             referencedSecurityGroupId=JOBS),
        rule("Egress", "network-jobs-to-s3", JOBS, prefixListId=mock_ec2_id("pl", S3), **https),
        rule("Egress", "network-jobs-to-endpoints", JOBS, referencedSecurityGroupId=ENDPOINTS,
             **https),
        rule("Egress", "network-jobs-to-jobs", JOBS, ipProtocol="-1",
             referencedSecurityGroupId=JOBS),
        rule("Ingress", "network-endpoints-from-jobs", ENDPOINTS,
             referencedSecurityGroupId=JOBS, **https),
        rec(MODEL, "served", {"name": "served", "vpcConfig": placed}, env.urn),
        rec(MODEL, "preview", {"name": "preview"}, env.urn),
        rec(ENDPOINT_CONFIG, "preview", {"productionVariants": [
            {"modelName": "preview", "serverlessConfig": {"memorySizeInMb": 2048}}]}, env.urn),
        rec(TRAINING_JOB, "baseline", {"vpcConfig": {"subnets": SUBNETS[:1],
            "securityGroupIds": [JOBS, ENDPOINTS]}}, env.urn),
        pipeline(env.urn),
    ]  # fmt: skip


def lines(rendered: str) -> list[str]:
    """Each line without the tree's guides, so a test reads the content."""
    return [line.lstrip("│├└─ ").rstrip() for line in rendered.splitlines()]


def test_the_network_is_summarised_under_the_environment() -> None:
    shown = lines(text(*network_stack()))
    start = shown.index("network")
    assert shown[start - 1].startswith("mlopskit:index:MlopsEnvironment churn")
    assert shown[start : start + 9] == [
        "network",
        "vpc network-vpc  10.20.0.0/16  flow logs ALL -> cloud-watch-logs",
        "subnet private-0  eu-west-1a  10.20.0.0/19",
        "subnet private-1  eu-west-1b  10.20.32.0/19",
        "endpoint gateway s3",
        "endpoint interface sts",
        "security group default: no rules",
        "security group endpoints: in 443 from jobs; out none",
        "security group jobs: in all from self; out all -> self, 443 -> endpoints, 443 -> pl-s3",
    ]


def test_each_model_job_and_job_step_says_whether_it_runs_in_the_vpc() -> None:
    shown = lines(text(*network_stack()))
    assert f"{MODEL} preview  not in VPC (serverless takes no VpcConfig)" in shown
    assert f"{TRAINING_JOB} baseline  in VPC (1 subnet, sg jobs, endpoints)" in shown
    at = shown.index(f"{PIPELINE} training  pipelineName=t")
    # Job steps only, condition branches included; the register step starts no job.
    assert shown[at + 1 : at + 4] == [
        "step Split  in VPC (2 subnets, sg jobs)",
        "step Train  not in VPC",
        "step Tune  in VPC (2 subnets, sg jobs)",
    ]


def test_a_stack_without_a_network_renders_as_before() -> None:
    env = rec(ENVIRONMENT, "churn", {})
    resources = [
        env,
        rec(MODEL, "m", {"name": "m", "enableNetworkIsolation": True}, env.urn),
        rec("aws:s3/bucket:Bucket", "data", {"bucket": "b-data"}, env.urn),
    ]
    assert network_view(Plan("p", "s", tuple(resources))).empty
    assert lines(text(*resources))[:4] == [
        "p / stack s",
        "mlopskit:index:MlopsEnvironment churn",
        f"{MODEL} m  enableNetworkIsolation=True",
        "aws:s3/bucket:Bucket data  bucket=b-data",
    ]


def test_an_existing_vpc_is_shown_by_the_ids_the_stack_was_given() -> None:
    env = rec(ENVIRONMENT, "churn", {})
    given = {"subnets": ["subnet-0b", "subnet-0a"], "securityGroupIds": ["sg-0c"]}
    shown = lines(text(env, rec(MODEL, "m", {"name": "m", "vpcConfig": given}, env.urn)))
    assert shown[2:7] == [
        "network",
        "vpc not declared by this stack (network.mode existing)",
        "subnets subnet-0a, subnet-0b",
        "security groups sg-0c",
        f"{MODEL} m  in VPC (2 subnets, sg sg-0c)",
    ]


def test_values_known_only_after_apply_are_shown_as_such() -> None:
    env = rec(ENVIRONMENT, "churn", {})
    vpc = rec("aws:ec2/vpc:Vpc", "v", {"cidrBlock": "10.9.0.0/16"}, env.urn)
    subnet = rec("aws:ec2/subnet:Subnet", "s", {"vpcId": "[unknown]",
                 "availabilityZone": "[unknown]", "cidrBlock": "10.9.0.0/19"}, env.urn)  # fmt: skip
    model = rec(MODEL, "m", {"vpcConfig": "[unknown]"}, env.urn)
    shown = lines(text(env, vpc, subnet, model))
    # One VPC: a subnet whose VPC ID is not known yet can only be in it.
    assert "subnet s  [unknown]  10.9.0.0/19" in shown
    assert "aws:ec2/subnet:Subnet s  availabilityZone=[unknown]  cidrBlock=10.9.0.0/19" in shown
    assert f"{MODEL} m  in VPC (subnets known after apply, sg known after apply)" in shown


# --- the kit's stacks --------------------------------------------------------------------------


def test_the_staging_plan_shows_its_network_and_every_job_in_it(
    plan_of: Callable[[str], PlannedStack],
) -> None:
    console = Console(record=True, width=250, color_system=None)
    console.print(to_rich(plan_of("staging").plan))
    shown = lines(console.export_text())
    start = shown.index("network")
    # 10.20.0.0/16 cut into /19s (infra/components/network.py), one per zone, two zones.
    assert shown[start + 1 : start + 5] == [
        "vpc network-vpc  10.20.0.0/16  flow logs ALL -> cloud-watch-logs",
        "subnet private-0  eu-west-1a  10.20.0.0/19",
        "subnet private-1  eu-west-1b  10.20.32.0/19",
        "endpoint gateway s3",
    ]
    interfaces = [s.split()[-1] for s in shown if s.startswith("endpoint interface ")]
    assert interfaces == sorted(
        ["ecr.api", "ecr.dkr", "events", "kms", "logs", "monitoring", "sagemaker.api",
         "sagemaker.runtime", "sts"]
    )  # fmt: skip
    assert "security group endpoints: in 443 from jobs; out none" in shown
    assert (
        "security group jobs: in all from self; out all -> self, 443 -> endpoints, 443 -> pl-s3"
        in shown
    )
    placed = [s for s in shown if s.endswith("in VPC (2 subnets, sg jobs)")]
    assert len(placed) >= 10
    assert not [s for s in shown if "not in VPC" in s]


def test_dev_has_no_network_and_no_placements(plan_of: Callable[[str], PlannedStack]) -> None:
    plan = plan_of("dev").plan
    assert network_view(plan).empty
    console = Console(record=True, width=250, color_system=None)
    console.print(to_rich(plan))
    shown = lines(console.export_text())
    assert "network" not in shown
    assert not [s for s in shown if "VPC" in s]
