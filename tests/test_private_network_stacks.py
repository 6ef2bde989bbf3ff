"""Private networking per stack, under Pulumi mocks: every job and model of a VPC stack runs
in its subnets and security group, dev runs in none, the platform's VPC (existing mode) is
used as given, a serverless endpoint gets an honest answer, and the prod buckets refuse the
job roles outside the S3 endpoint.

The network's own shape (subnets, routes, endpoints and their policies, security groups,
flow logs) is tested in tests/test_network.py; whether each request a job makes passes its
VPC endpoint's policy is part of tests/test_iam_simulation.py (tests/planned_requests.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any

import pytest
from conftest import REPO, PlannedStack, planned_vpc_config
from planned_requests import Account, stack_requests

from guardrails.pipeline_jobs import job_requests
from infra.config.loader import ConfigError, settings_from_config
from infra.plan.mocks import RecordedResource, mock_ec2_id
from infra.plan.project import load_stack_config
from infra.plan.runner import Plan, plan_config
from infra.policies.analysis.evaluation import Request, ResourcePolicy, evaluate

MODEL = "aws:sagemaker/model:Model"
TRAINING_JOB = "aws:sagemaker/trainingJob:TrainingJob"
PIPELINE = "aws:sagemaker/pipeline:Pipeline"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
VPC_ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
ACCOUNT = "123456789012"
# Steps that start a job, and where their request keeps VpcConfig and the encryption flag.
JOB_STEPS = ("Processing", "Training", "Tuning")
EXISTING = {
    "mode": "existing",
    "subnetIds": ["subnet-0a1b2c3d4e5f60718", "subnet-0b1c2d3e4f5a60718"],
    "securityGroupIds": ["sg-0c1d2e3f4a5b60718"],
}


def _plan_with(stack: str, **sections: Mapping[str, Any]) -> PlannedStack:
    """The stack's plan with some config sections replaced (not merged)."""
    config = load_stack_config(REPO, stack)
    values = dict(config.values)
    for section, value in sections.items():
        values[f"mlops:{section}"] = json.dumps(value)
    return PlannedStack(plan_config(replace(config, values=values)))


def _section(stack: str, section: str) -> dict[str, Any]:
    return dict(json.loads(load_stack_config(REPO, stack).values[f"mlops:{section}"]))


def _job_requests(definition: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(step name, the part of its request that holds VpcConfig) for every job a step
    starts, condition branches and a tuning step's definitions included."""
    for step, kind, request in job_requests(definition):
        yield (
            str(step["Name"]),
            request.get("NetworkConfig", {}) if kind == "Processing" else request,
        )


def _definitions(stack: PlannedStack) -> dict[str, dict[str, Any]]:
    return {
        p.inputs["pipelineName"]: json.loads(p.inputs["pipelineDefinition"])
        for p in stack.all(PIPELINE)
    }


def _serverless_models(plan: Plan) -> set[str]:
    names = set()
    for config in plan.of_type(ENDPOINT_CONFIG):
        for variant in config.inputs.get("productionVariants", []):
            if variant.get("serverlessConfig"):
                names.add(variant["modelName"])
    return names


def _model_name(model: RecordedResource) -> str:
    from infra.plan.mocks import generated_name

    return model.inputs.get("name") or generated_name(model.type, model.name)


def _placement(stack: PlannedStack) -> tuple[set[str], list[str]]:
    """The stack network's subnet IDs and the jobs' security group, as the plan names them."""
    vpc = planned_vpc_config(stack.plan)
    assert vpc is not None, f"{stack.stack} declares no network"
    return set(vpc["Subnets"]), vpc["SecurityGroupIds"]


def _assert_everything_in(stack: PlannedStack, subnets: set[str], groups: list[str]) -> int:
    """Every job of every pipeline, the baseline job and every model (but a serverless one)
    runs in ``subnets`` with ``groups`` and encrypts traffic between its instances."""
    placed = 0
    for pipeline, definition in _definitions(stack).items():
        for step, request in _job_requests(definition):
            where = f"{pipeline} step {step}"
            vpc = request.get("VpcConfig")
            assert vpc, f"{where} runs outside the VPC"
            assert set(vpc["Subnets"]) == subnets, where
            assert vpc["SecurityGroupIds"] == groups, where
            assert request["EnableInterContainerTrafficEncryption"] is True, where
            placed += 1
    for job in stack.plan.of_type(TRAINING_JOB):
        assert set(job.inputs["vpcConfig"]["subnets"]) == subnets
        assert job.inputs["vpcConfig"]["securityGroupIds"] == groups
        placed += 1
    serverless = _serverless_models(stack.plan)
    for model in stack.all(MODEL):
        if _model_name(model) in serverless:
            continue
        assert set(model.inputs["vpcConfig"]["subnets"]) == subnets, model.name
        assert model.inputs["vpcConfig"]["securityGroupIds"] == groups, model.name
        placed += 1
    return placed


@pytest.mark.parametrize("name", ["staging", "prod"])
def test_every_job_and_model_of_a_vpc_stack_runs_in_its_private_subnets(
    name: str, plan_of: Callable[[str], PlannedStack]
) -> None:
    stack = plan_of(name)
    subnets, groups = _placement(stack)
    zones = _section(name, "network")["availabilityZones"]
    assert len(subnets) == zones >= 2
    # The training pipeline's jobs, the monitoring and batch jobs, the endpoint's and the
    # batch model: nothing is left on SageMaker's network.
    assert _assert_everything_in(stack, subnets, groups) >= 10


def test_the_drift_job_keeps_its_network_but_reaches_aws_only_inside_the_vpc(
    plan_of: Callable[[str], PlannedStack],
) -> None:
    stack = plan_of("staging")
    definitions = _definitions(stack)
    drift = next(d for name, d in definitions.items() if name.endswith("-drift"))
    requests = dict(_job_requests(drift))
    detect = requests["DetectDrift"]
    # Not isolated: it lists S3, reads the registry and publishes metrics, now through the
    # VPC's endpoints, with no route anywhere else.
    assert detect["EnableNetworkIsolation"] is False
    assert detect["VpcConfig"]["Subnets"]


def test_a_vpc_jobs_requests_pass_the_vpc_endpoint_policies(
    plan_of: Callable[[str], PlannedStack],
) -> None:
    """The simulation in test_iam_simulation.py checks every endpoint-bound request against
    its endpoint's policy; here, that those checks exist for each service the jobs call."""
    simulated = stack_requests(Account(plan_of("staging").plan))
    through = {s.endpoint.name for s in simulated if s.endpoint is not None}
    assert {
        "vpc endpoint s3/policy",
        "vpc endpoint sagemaker.api/policy",
        "vpc endpoint monitoring/policy",
    } <= through
    s3 = [s for s in simulated if s.endpoint is not None and s.request.action == "s3:GetObject"]
    assert s3 and all(s.request.context.get("aws:SourceVpce") for s in s3)


def test_dev_opts_out_in_its_file_and_runs_no_network(
    plan_of: Callable[[str], PlannedStack],
) -> None:
    stack = plan_of("dev")
    assert _section("dev", "network") == {"mode": "none"}
    assert "RELAXED" in (REPO / "Pulumi.dev.yaml").read_text().split("mlops:network:")[0][-400:]
    assert not [r for r in stack.plan.resources if r.type.startswith(("aws:ec2/", "aws:vpc/"))]
    for _, definition in _definitions(stack).items():
        for step, request in _job_requests(definition):
            assert "VpcConfig" not in request, step
    assert all("vpcConfig" not in m.inputs for m in stack.all(MODEL))


def test_existing_mode_places_everything_in_the_given_subnets_and_declares_no_network() -> None:
    stack = _plan_with("staging", network=EXISTING)
    assert not [r for r in stack.plan.resources if r.type.startswith(("aws:ec2/", "aws:vpc/"))]
    assert (
        _assert_everything_in(stack, set(EXISTING["subnetIds"]), EXISTING["securityGroupIds"]) >= 10
    )


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"subnetIds": ["subnet-0a1b2c3d4e5f60718"]}, "network.subnetIds"),
        ({"subnetIds": ["subnet-0a1b2c3d", "subnet-0a1b2c3d"]}, "network.subnetIds"),
        ({"subnetIds": ["subnet-xyz", "subnet-0a1b2c3d"]}, "network.subnetIds[0]"),
        ({"securityGroupIds": []}, "network.securityGroupIds"),
        ({"securityGroupIds": [f"sg-0a1b2c3{i}" for i in range(6)]}, "network.securityGroupIds"),
        ({"requireS3Endpoint": True}, "network.s3EndpointId"),
        ({"s3EndpointId": "vpc-0a1b2c3d"}, "network.s3EndpointId"),
    ],
)
def test_a_bad_existing_network_gets_one_message_naming_the_key(
    change: dict[str, Any], key: str
) -> None:
    config = load_stack_config(REPO, "staging")
    values = {**config.values, "mlops:network": json.dumps({**EXISTING, **change})}
    with pytest.raises(ConfigError) as raised:
        settings_from_config(values, project=config.project, stack="staging")
    assert f"mlops:{key}" in str(raised.value)


@pytest.mark.parametrize(
    ("network", "key"),
    [
        ({"mode": "none"}, "network.mode"),
        ({"mode": "create", "subnetIds": EXISTING["subnetIds"]}, "network.subnetIds"),
        ({"mode": "create", "availabilityZones": 1}, "network.availabilityZones"),
        ({"mode": "create", "cidr": "8.8.0.0/16"}, "network.cidr"),
        ({"mode": "create", "cidr": "10.0.0.0/12"}, "network.cidr"),
        ({"mode": "sideways"}, "network.mode"),
    ],
)
def test_prod_refuses_to_leave_the_vpc_and_bad_create_settings_name_their_key(
    network: dict[str, Any], key: str
) -> None:
    config = load_stack_config(REPO, "prod")
    values = {**config.values, "mlops:network": json.dumps(network)}
    with pytest.raises(ConfigError) as raised:
        settings_from_config(values, project=config.project, stack="prod")
    assert f"mlops:{key}" in str(raised.value)


def test_a_serverless_endpoint_in_a_vpc_stack_must_say_it_runs_outside_the_vpc() -> None:
    """SageMaker Serverless Inference takes no VpcConfig: refused unless the stack file
    accepts it, and then only the serverless model is outside the VPC."""
    config = load_stack_config(REPO, "dev")
    values = {**config.values, "mlops:network": json.dumps({"mode": "create"})}
    with pytest.raises(ConfigError) as raised:
        settings_from_config(values, project=config.project, stack="dev")
    assert "mlops:network.serverlessOutsideVpc" in str(raised.value)
    assert "Serverless Inference does not support VpcConfig" in str(raised.value)

    stack = _plan_with("dev", network={"mode": "create", "serverlessOutsideVpc": True})
    serverless = _serverless_models(stack.plan)
    models = {_model_name(m): m for m in stack.all(MODEL)}
    assert serverless and serverless < models.keys()
    assert all("vpcConfig" not in models[name].inputs for name in serverless)
    subnets, groups = _placement(stack)
    # The batch model and every job (dev has no monitoring jobs: nothing is captured)
    # still run in the VPC.
    batch_model = stack.one(MODEL, "churn-dev-batch-model")
    assert set(batch_model.inputs["vpcConfig"]["subnets"]) == subnets
    assert _assert_everything_in(stack, subnets, groups) >= 5


def test_prod_buckets_refuse_the_job_roles_outside_the_s3_endpoint(
    plan_of: Callable[[str], PlannedStack],
) -> None:
    stack = plan_of("prod")
    (s3_endpoint,) = [e for e in stack.all(VPC_ENDPOINT) if e.inputs["serviceName"].endswith(".s3")]
    endpoint_id = mock_ec2_id("vpce", s3_endpoint.name)
    policies = {p.inputs["bucket"]: stack.document(p) for p in stack.all(BUCKET_POLICY)}
    data = next(doc for bucket, doc in policies.items() if "-data-" in bucket)
    access_logs = next(doc for bucket, doc in policies.items() if "-access-logs-" in bucket)
    bucket = next(b for b in policies if "-data-" in b)
    resource = ResourcePolicy("data/policy", data, account=ACCOUNT)
    drift = f"arn:aws:iam::{ACCOUNT}:role/churn-prod-drift-job"
    operator = f"arn:aws:iam::{ACCOUNT}:role/ml-platform-admin"
    tls = {"aws:SecureTransport": "true"}

    def decide(principal: str, **context: str) -> str:
        request = Request(principal, "s3:GetObject", f"arn:aws:s3:::{bucket}/x", context)
        return evaluate(request, (), resource).decision.value

    assert decide(drift, **tls) == "explicitly denied"
    assert decide(drift, **tls, **{"aws:SourceVpce": "vpce-0123456789abcdef0"}) == (
        "explicitly denied"
    )
    # Through the stack's endpoint the bucket policy does not stand in the way (the role's
    # own policy then decides), and people and Pulumi outside the VPC are unaffected.
    assert decide(drift, **tls, **{"aws:SourceVpce": endpoint_id}) != "explicitly denied"
    assert decide(operator, **tls) != "explicitly denied"
    assert endpoint_id not in json.dumps(access_logs)


def test_staging_does_not_require_the_s3_endpoint(
    plan_of: Callable[[str], PlannedStack],
) -> None:
    stack = plan_of("staging")
    for policy in stack.all(BUCKET_POLICY):
        assert "aws:SourceVpce" not in json.dumps(stack.document(policy))
