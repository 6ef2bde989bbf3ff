"""The execution role's policies, parsed as JSON and checked for least privilege."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import ROLE, ROLE_POLICY, PlannedStack

from infra.policies import STAR_ONLY_ACTIONS

ACCOUNT = "123456789012"


def _statements(stack: PlannedStack) -> Iterator[tuple[str, dict[str, Any]]]:
    for policy in stack.all(ROLE_POLICY):
        for statement in stack.document(policy)["Statement"]:
            yield policy.inputs["name"], statement


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def _private(stack: PlannedStack) -> bool:
    """Whether the stack's jobs run in a VPC (network.mode create or existing)."""
    pipelines = stack.plan.of_type("aws:sagemaker/pipeline:Pipeline")
    return any("VpcConfig" in str(p.inputs["pipelineDefinition"]) for p in pipelines)


def test_role_is_trusted_by_sagemaker_only(stack: PlannedStack) -> None:
    role = stack.one(ROLE, "sagemaker-execution")
    assert role.inputs["name"] == f"churn-{stack.stack}-sagemaker-execution"
    (statement,) = stack.document(role, "assumeRolePolicy")["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"


def test_one_inline_policy_per_concern_attached_to_the_role(stack: PlannedStack) -> None:
    role = stack.one(ROLE, "sagemaker-execution")
    policies = [p for p in stack.all(ROLE_POLICY) if p.inputs["role"] == role.inputs["name"]]
    by_concern = {p.inputs["name"]: p for p in policies}
    # Batch outputs are writable only where batch is on: its component grants them.
    batch = ["batch-outputs"] if "batchPipelineName" in stack.outputs else []
    # In a VPC, what SageMaker needs to attach its models and jobs there.
    network = ["network"] if _private(stack) else []
    assert sorted(by_concern) == sorted(
        ["ecr", "kms", "logs", "metrics", "registry", "s3", *batch, *network]
    )
    assert {p.parent for n, p in by_concern.items() if n != "batch-outputs"} == {role.parent}


def test_only_star_only_actions_are_granted_on_star(stack: PlannedStack) -> None:
    for policy_name, statement in _statements(stack):
        assert statement["Effect"] == "Allow"
        if "*" in _as_list(statement["Resource"]):
            actions = set(_as_list(statement["Action"]))
            # EC2's Describe* calls SageMaker makes to place a job in a VPC take no resource.
            star_only = set(STAR_ONLY_ACTIONS)
            assert actions <= star_only, (policy_name, statement)


def test_no_wildcard_actions(stack: PlannedStack) -> None:
    for policy_name, statement in _statements(stack):
        for action in _as_list(statement["Action"]):
            service, _, verb = action.partition(":")
            assert "*" not in verb and service != "*", (policy_name, action)


def test_s3_grants_name_only_this_stacks_buckets(stack: PlannedStack) -> None:
    ours = {stack.outputs[f"{p}Bucket"] for p in ("data", "artifacts", "capture")}
    for policy_name, statement in _statements(stack):
        for resource in _as_list(statement["Resource"]):
            if resource.startswith("arn:aws:s3:::"):
                bucket = resource.removeprefix("arn:aws:s3:::").split("/")[0]
                assert bucket in ours, (policy_name, resource)
    # The access-log bucket is for auditors, not for jobs.
    logs_bucket = stack.outputs["accessLogsBucket"]
    assert all(logs_bucket not in str(s["Resource"]) for _, s in _statements(stack))


def test_jobs_write_only_to_output_prefixes_never_to_code(stack: PlannedStack) -> None:
    role = stack.one(ROLE, "sagemaker-execution").inputs["name"]
    (s3,) = [
        p for p in stack.all(ROLE_POLICY) if p.inputs["role"] == role and p.inputs["name"] == "s3"
    ]
    (write,) = [s for s in stack.document(s3)["Statement"] if s["Sid"] == "WriteJobOutputs"]
    artifacts = stack.outputs["artifactsBucket"]
    assert all(resource.endswith("/*") for resource in write["Resource"])
    assert f"arn:aws:s3:::{artifacts}/models/*" in write["Resource"]
    assert not any("/code/" in resource for resource in write["Resource"])
    assert not any(resource.endswith(f"{artifacts}/*") for resource in write["Resource"])
    # Captured traffic is the endpoint's to write (serving role), not a job's.
    assert not any("/datacapture/" in resource for resource in write["Resource"])


def test_kms_grants_name_only_the_stack_key(stack: PlannedStack) -> None:
    key_arn = stack.outputs["kmsKeyArn"]
    kms = [s for name, s in _statements(stack) if name == "kms"]
    assert kms
    for statement in kms:
        assert statement["Resource"] == key_arn
    create_grant = next(s for s in kms if s["Action"] == "kms:CreateGrant")
    assert create_grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def test_every_arn_is_in_this_account_region_and_partition(stack: PlannedStack) -> None:
    for policy_name, statement in _statements(stack):
        for resource in _as_list(statement["Resource"]):
            if resource == "*" or resource.startswith("arn:aws:s3:::"):
                continue
            partition, service, region, account = resource.split(":")[1:5]
            assert partition == "aws", resource
            # IAM is global: its ARNs have no region.
            assert region == ("" if service == "iam" else "eu-west-1"), resource
            # The managed scikit-learn image lives in an AWS-owned account, by repository name.
            if service == "ecr" and account == "*":
                assert resource.endswith(":repository/sagemaker-scikit-learn"), resource
            else:
                assert account == ACCOUNT, (policy_name, resource)


def test_metrics_publishing_is_limited_to_the_kit_namespace(stack: PlannedStack) -> None:
    publishing = [s for _, s in _statements(stack) if "cloudwatch:PutMetricData" in s["Action"]]
    # The execution role everywhere; the drift, attribution and quality jobs where traffic
    # is captured (not dev).
    assert len(publishing) == (1 if stack.stack == "dev" else 4)
    for statement in publishing:
        assert statement["Condition"] == {
            "StringEquals": {"cloudwatch:namespace": f"MLOpsKit/churn-{stack.stack}"}
        }


@pytest.mark.parametrize("action", sorted(STAR_ONLY_ACTIONS))
def test_star_only_actions_each_carry_a_reason(action: str) -> None:
    assert len(STAR_ONLY_ACTIONS[action]) > 10


def test_log_actions_target_the_resource_type_iam_checks(stack: PlannedStack) -> None:
    # The VPC flow-log role's "logs" policy writes its own group (tests/test_network.py).
    logs_policies = [
        p
        for p in stack.all(ROLE_POLICY)
        if p.inputs["name"] == "logs" and not p.inputs["role"].endswith("-vpc-flow-logs")
    ]
    # execution role, processing, training and model-card jobs, serving, and the drift,
    # attribution and quality jobs where traffic is captured (not serverless dev)
    assert len(logs_policies) == (5 if stack.stack == "dev" else 8)
    for policy in logs_policies:
        logs = {s["Sid"]: s for s in stack.document(policy)["Statement"]}
        groups = logs["ManageSageMakerLogGroups"]
        streams = logs["WriteSageMakerLogStreams"]
        assert all(":log-stream:" not in r for r in groups["Resource"])
        assert all(r.endswith(":log-stream:*") for r in streams["Resource"])
        assert set(streams["Action"]) == {"logs:CreateLogStream", "logs:PutLogEvents"}
        endpoint_logs = f"log-group:/aws/sagemaker/Endpoints/churn-{stack.stack}-*"
        # Only the role endpoints run as may write endpoint logs.
        endpoint_role = policy.inputs["role"].endswith("-serving")
        assert (endpoint_logs in " ".join(groups["Resource"])) == endpoint_role
