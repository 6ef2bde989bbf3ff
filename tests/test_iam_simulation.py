"""Each request a planned stack causes, decided against the planned policies; and the
evaluator itself, case by case against AWS's documented evaluation rules."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from conftest import STACKS, PlannedStack
from planned_policies import team_service_plan, tooling_plan, workload_plan
from planned_requests import PIPELINE, Account, Simulated, stack_requests

from infra.plan.runner import Plan
from infra.policies.analysis.conditions import UnsupportedPolicyError
from infra.policies.analysis.evaluation import Decision, Policy, Request, ResourcePolicy, evaluate


def _denials(requests: list[Simulated]) -> list[str]:
    denied = []
    for simulated in requests:
        outcome = evaluate(simulated.request, simulated.identity, simulated.resource)
        if not outcome.allowed:
            by = f" by {', '.join(outcome.denied_by)}" if outcome.denied_by else ""
            denied.append(f"{simulated}: {outcome.decision.value}{by}")
        if simulated.endpoint is not None:
            # A request through a VPC endpoint needs its endpoint policy's allow as well.
            through = evaluate(simulated.request, (), simulated.endpoint)
            if not through.allowed:
                denied.append(f"{simulated}: {through.decision.value} by the VPC endpoint policy")
    return denied


@pytest.fixture(scope="module")
def requests_of(plan_of: Callable[[str], PlannedStack]) -> Callable[[str], list[Simulated]]:
    cache: dict[str, list[Simulated]] = {}

    def get(stack: str) -> list[Simulated]:
        if stack not in cache:
            cache[stack] = stack_requests(Account(plan_of(stack).plan))
        return cache[stack]

    return get


@pytest.mark.parametrize("name", STACKS)
def test_every_request_a_stack_causes_is_allowed(
    name: str, requests_of: Callable[[str], list[Simulated]]
) -> None:
    denied = _denials(requests_of(name))
    assert not denied, "\n".join(denied)


def test_accounts_sharing_a_registry_and_another_program_are_allowed_too() -> None:
    tooling = Account(tooling_plan())
    for where in (
        tooling,
        Account(workload_plan(), shared=(tooling,)),
        Account(team_service_plan()),
    ):
        denied = _denials(stack_requests(where))
        assert not denied, "\n".join(denied)


CREATE_ACTIONS = {
    "Processing": "sagemaker:CreateProcessingJob",
    "Training": "sagemaker:CreateTrainingJob",
    "Tuning": "sagemaker:CreateHyperParameterTuningJob",
}


def _requests(simulated: list[Simulated], action: str, why: str = "") -> list[Simulated]:
    return [s for s in simulated if s.request.action == action and why in s.why]


@pytest.mark.parametrize("name", STACKS)
def test_the_simulation_covers_what_the_stack_runs(
    name: str, plan_of: Callable[[str], PlannedStack], requests_of: Callable[[str], list[Simulated]]
) -> None:
    """Each job step, schedule, rule, endpoint and drift job yields its requests: a
    derivation that silently found nothing would pass the test above."""
    plan, simulated = plan_of(name).plan, requests_of(name)
    for pipeline in plan.of_type(PIPELINE):
        for step in json.loads(pipeline.inputs["pipelineDefinition"])["Steps"]:
            if step["Type"] in ("Processing", "Training", "Tuning"):
                why = f"{pipeline.inputs['pipelineName']}, step {step['Name']}"
                action = CREATE_ACTIONS[step["Type"]]
                (create,) = _requests(simulated, action, why)
                (passed,) = _requests(simulated, "iam:PassRole", why)
                arguments = step["Arguments"]
                job = arguments.get("TrainingJobDefinition", arguments)
                assert passed.request.resource == job["RoleArn"]
                assert (
                    create.request.principal
                    == passed.request.principal
                    == pipeline.inputs["roleArn"]
                )
    starts = {s.request.resource for s in _requests(simulated, "sagemaker:StartPipelineExecution")}
    schedules = plan.of_type("aws:scheduler/schedule:Schedule")
    rules = plan.of_type("aws:cloudwatch/eventTarget:EventTarget")
    assert starts == {t.inputs["target"]["arn"] for t in schedules} | {
        t.inputs["arn"] for t in rules
    }
    assert len(_requests(simulated, "sts:AssumeRole", "schedule ")) == len(schedules)
    assert _requests(simulated, "s3:GetObject", "model archive")
    captures = _requests(simulated, "s3:PutObject", "data capture")
    drift = _requests(simulated, "cloudwatch:PutMetricData", "drift")
    # dev serves serverless without capture, so it has no drift job either.
    assert bool(captures) == bool(drift) == (name != "dev")
    if drift:
        assert _requests(simulated, "sagemaker:DescribeModelPackage", "baseline record")
        assert _requests(simulated, "s3:ListBucket", "captured traffic")
        assert _requests(simulated, "s3:GetObject", "baseline archive")
        assert _requests(simulated, "s3:PutObject", "output report")


def _with_train_step(plan: Plan, change: Callable[[dict[str, Any]], None]) -> Plan:
    """``plan`` with its training pipeline's training job changed by ``change``: the Train
    step's arguments, or the job definition of a Tune step's jobs."""
    (training,) = [
        p for p in plan.of_type(PIPELINE) if p.inputs["pipelineName"].endswith("-training")
    ]
    definition = json.loads(training.inputs["pipelineDefinition"])
    (train,) = [s for s in definition["Steps"] if s["Name"] in ("Train", "Tune")]
    change(train["Arguments"].get("TrainingJobDefinition", train["Arguments"]))
    edited = replace(
        training, inputs={**training.inputs, "pipelineDefinition": json.dumps(definition)}
    )
    return replace(plan, resources=tuple(edited if r is training else r for r in plan.resources))


@pytest.mark.parametrize(
    ("change", "denied_actions"),
    [
        # Another output key: the pipeline may not start the job, the bucket refuses the
        # header, and the job role may not use that key.
        (lambda a: a["OutputDataConfig"].update(KmsKeyId="arn:aws:kms:eu-west-1:123456789012:key/other"), {"sagemaker:CreateTrainingJob", "s3:PutObject", "kms:GenerateDataKey"}),
        (lambda a: a["ResourceConfig"].pop("VolumeKmsKeyId"), {"sagemaker:CreateTrainingJob"}),
        (lambda a: a.update(EnableNetworkIsolation=False), {"sagemaker:CreateTrainingJob"}),
        (lambda a: a.pop("EnableInterContainerTrafficEncryption"), {"sagemaker:CreateTrainingJob"}),
        # A role the pipeline may not pass, which could not read the splits or write models either.
        (lambda a: a.update(RoleArn="arn:aws:iam::123456789012:role/churn-staging-drift-job"), {"iam:PassRole", "s3:ListBucket", "s3:GetObject", "s3:PutObject", "logs:CreateLogStream", "logs:PutLogEvents"}),
        (lambda a: a["OutputDataConfig"].update(S3OutputPath="s3://churn-staging-artifacts-123456789012-eu-west-1/code"), {"s3:PutObject"}),
    ],
)  # fmt: skip
def test_a_train_step_the_policies_do_not_allow_is_denied(
    change: Callable[[dict[str, Any]], None],
    denied_actions: set[str],
    plan_of: Callable[[str], PlannedStack],
) -> None:
    """Staging tunes: its Tune step's training jobs are held to the training job's rules,
    the pipeline role's start of them being CreateHyperParameterTuningJob."""
    simulated = stack_requests(Account(_with_train_step(plan_of("staging").plan, change)))
    train = [s for s in simulated if "step Tune" in s.why]
    denied = {
        s.request.action for s in train if not evaluate(s.request, s.identity, s.resource).allowed
    }
    start = CREATE_ACTIONS["Tuning"]
    assert denied == {start if a == "sagemaker:CreateTrainingJob" else a for a in denied_actions}


# --- the evaluator ---------------------------------------------------------------------------

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/job"
OBJECT = "arn:aws:s3:::bucket/data/x.csv"
KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1"


def _policy(*statements: dict[str, Any], name: str = "p") -> Policy:
    return Policy(name, {"Version": "2012-10-17", "Statement": list(statements)})


def _allow(action: Any = "s3:GetObject", resource: Any = OBJECT, **extra: Any) -> dict[str, Any]:
    return {"Sid": "A", "Effect": "Allow", "Action": action, "Resource": resource, **extra}


def _decide(
    statement: dict[str, Any],
    context: dict[str, Any] | None = None,
    action: str = "s3:GetObject",
    resource: str = OBJECT,
) -> Decision:
    return evaluate(Request(ROLE, action, resource, context or {}), [_policy(statement)]).decision


ALLOWED, IMPLICIT, EXPLICIT = Decision.ALLOWED, Decision.IMPLICIT_DENY, Decision.EXPLICIT_DENY


@pytest.mark.parametrize(
    ("statement", "context", "expected"),
    [
        (_allow(), {}, ALLOWED),
        (_allow("s3:getobject"), {}, ALLOWED),  # action names are case-insensitive
        (_allow("s3:Get*"), {}, ALLOWED),
        (_allow("s3:Put*"), {}, IMPLICIT),
        (_allow("*"), {}, ALLOWED),
        (_allow(resource="arn:aws:s3:::bucket/data/*"), {}, ALLOWED),
        (
            _allow(resource="arn:aws:s3:::bucket/Data/*"),
            {},
            IMPLICIT,
        ),  # resources are case-sensitive
        (_allow(resource="arn:aws:s3:::bucket/*/x.csv"), {}, ALLOWED),
        (_allow(resource="arn:aws:s3:::bucket/data/?.csv"), {}, ALLOWED),
        (
            {"Sid": "A", "Effect": "Allow", "NotAction": "s3:PutObject", "Resource": OBJECT},
            {},
            ALLOWED,
        ),
        ({"Sid": "A", "Effect": "Allow", "NotAction": "s3:Get*", "Resource": OBJECT}, {}, IMPLICIT),
        (
            {
                "Sid": "A",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "NotResource": "arn:aws:s3:::other/*",
            },
            {},
            ALLOWED,
        ),
        (
            {
                "Sid": "A",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "NotResource": "arn:aws:s3:::bucket/*",
            },
            {},
            IMPLICIT,
        ),
        (
            _allow(Condition={"StringEquals": {"s3:prefix": "data/"}}),
            {"s3:prefix": "data/"},
            ALLOWED,
        ),
        (
            _allow(Condition={"StringEquals": {"s3:prefix": "data/"}}),
            {"S3:Prefix": "data/"},
            ALLOWED,
        ),  # keys are case-insensitive
        (
            _allow(Condition={"StringEquals": {"s3:prefix": "data/"}}),
            {"s3:prefix": "Data/"},
            IMPLICIT,
        ),
        (
            _allow(Condition={"StringEqualsIgnoreCase": {"s3:prefix": "data/"}}),
            {"s3:prefix": "Data/"},
            ALLOWED,
        ),
        (
            _allow(Condition={"StringEquals": {"s3:prefix": ["a/", "data/"]}}),
            {"s3:prefix": "data/"},
            ALLOWED,
        ),  # values: any
        (
            _allow(Condition={"StringEquals": {"s3:prefix": "data/"}}),
            {},
            IMPLICIT,
        ),  # absent key: false
        (
            _allow(Condition={"StringNotEquals": {"s3:prefix": "data/"}}),
            {},
            ALLOWED,
        ),  # negated, absent: true
        (
            _allow(Condition={"StringNotEquals": {"s3:prefix": ["a/", "data/"]}}),
            {"s3:prefix": "data/"},
            IMPLICIT,
        ),
        (_allow(Condition={"StringEqualsIfExists": {"s3:prefix": "data/"}}), {}, ALLOWED),
        (
            _allow(Condition={"StringEqualsIfExists": {"s3:prefix": "data/"}}),
            {"s3:prefix": "x/"},
            IMPLICIT,
        ),
        (_allow(Condition={"StringLike": {"s3:prefix": "da*/"}}), {"s3:prefix": "data/"}, ALLOWED),
        (
            _allow(Condition={"StringNotLike": {"s3:prefix": "da*/"}}),
            {"s3:prefix": "data/"},
            IMPLICIT,
        ),
        (_allow(Condition={"Null": {"s3:prefix": "true"}}), {}, ALLOWED),
        (_allow(Condition={"Null": {"s3:prefix": "false"}}), {}, IMPLICIT),
        (
            _allow(Condition={"Bool": {"aws:SecureTransport": "true"}}),
            {"aws:SecureTransport": "true"},
            ALLOWED,
        ),
        (
            _allow(Condition={"Bool": {"aws:SecureTransport": True}}),
            {"aws:SecureTransport": "TRUE"},
            ALLOWED,
        ),
        (_allow(Condition={"Bool": {"aws:SecureTransport": "true"}}), {}, IMPLICIT),
        (_allow(Condition={"BoolIfExists": {"aws:SecureTransport": "false"}}), {}, ALLOWED),
        (
            _allow(Condition={"ArnEquals": {"aws:SourceArn": "arn:aws:s3:::bucket"}}),
            {"aws:SourceArn": "arn:aws:s3:::bucket"},
            ALLOWED,
        ),
        (
            _allow(Condition={"ArnLike": {"aws:SourceArn": "arn:aws:events:*:*:rule/x-*"}}),
            {"aws:SourceArn": f"arn:aws:events:eu-west-1:{ACCOUNT}:rule/x-1"},
            ALLOWED,
        ),
        # A wildcard does not span the colons of an ARN's first five parts.
        (
            _allow(Condition={"ArnLike": {"aws:SourceArn": "arn:aws:*:rule/x"}}),
            {"aws:SourceArn": f"arn:aws:events:eu-west-1:{ACCOUNT}:rule/x"},
            IMPLICIT,
        ),
        (
            _allow(Condition={"ArnNotLike": {"aws:SourceArn": "arn:aws:s3:::other"}}),
            {"aws:SourceArn": "arn:aws:s3:::bucket"},
            ALLOWED,
        ),
        (
            _allow(Condition={"NumericLessThan": {"s3:TlsVersion": "1.2"}}),
            {"s3:TlsVersion": "1.3"},
            IMPLICIT,
        ),
        (
            _allow(Condition={"NumericGreaterThanEquals": {"s3:TlsVersion": "1.2"}}),
            {"s3:TlsVersion": "1.2"},
            ALLOWED,
        ),
        (
            _allow(Condition={"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}),
            {"aws:CurrentTime": "2026-11-30T08:00:00Z"},
            ALLOWED,
        ),
        (
            _allow(Condition={"DateGreaterThan": {"aws:EpochTime": "2030-01-01T00:00:00Z"}}),
            {"aws:EpochTime": "1796112000"},
            IMPLICIT,
        ),
        (
            _allow(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
            {"aws:SourceIp": "10.1.2.3"},
            ALLOWED,
        ),
        (
            _allow(Condition={"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
            {"aws:SourceIp": "10.1.2.3"},
            IMPLICIT,
        ),
        (
            _allow(Condition={"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}}),
            {"aws:TagKeys": ["team", "cost"]},
            ALLOWED,
        ),
        (
            _allow(Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}}),
            {"aws:TagKeys": ["team", "cost"]},
            IMPLICIT,
        ),
        (
            _allow(Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}}),
            {},
            ALLOWED,
        ),  # vacuously true
        (_allow(Condition={"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}}), {}, IMPLICIT),
        # Every operator and every key of a block must hold.
        (
            _allow(
                Condition={
                    "StringEquals": {"s3:prefix": "data/"},
                    "Bool": {"aws:SecureTransport": "true"},
                }
            ),
            {"s3:prefix": "data/"},
            IMPLICIT,
        ),
        ({**_allow(), "Effect": "Deny"}, {}, EXPLICIT),
    ],
)
def test_one_statement_decides_as_aws_documents(
    statement: dict[str, Any], context: dict[str, Any], expected: Decision
) -> None:
    assert _decide(statement, context) is expected


def test_a_deny_anywhere_wins_over_allows() -> None:
    request = Request(ROLE, "s3:PutObject", OBJECT, {"aws:SecureTransport": "false"})
    bucket = ResourcePolicy(
        "bucket",
        {
            "Statement": [
                {
                    "Sid": "TlsOnly",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": OBJECT,
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ]
        },
        account=ACCOUNT,
    )
    outcome = evaluate(request, [_policy(_allow("s3:PutObject"), name="role")], bucket)
    assert outcome.decision is EXPLICIT
    assert outcome.denied_by == ("bucket/TlsOnly",)


def _grant(principal: Any, action: str = "s3:GetObject", resource: str = OBJECT) -> dict[str, Any]:
    return {
        "Statement": [
            {
                "Sid": "G",
                "Effect": "Allow",
                "Principal": principal,
                "Action": action,
                "Resource": resource,
            }
        ]
    }


OTHER = "222222222222"
OTHER_ROLE = f"arn:aws:iam::{OTHER}:role/consumer"


@pytest.mark.parametrize(
    ("principal", "identity_allows", "resource_policy", "expected"),
    [
        # Same account: either side suffices; an account grant only delegates to IAM.
        (ROLE, True, ResourcePolicy("b", {"Statement": []}, account=ACCOUNT), ALLOWED),
        (ROLE, False, ResourcePolicy("b", _grant({"AWS": ROLE}), account=ACCOUNT), ALLOWED),
        (
            ROLE,
            False,
            ResourcePolicy("b", _grant({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}), account=ACCOUNT),
            IMPLICIT,
        ),
        (ROLE, False, ResourcePolicy("b", _grant({"AWS": ACCOUNT}), account=ACCOUNT), IMPLICIT),
        (ROLE, False, ResourcePolicy("b", _grant("*"), account=ACCOUNT), ALLOWED),
        # Another account: both sides must allow; the resource side may name the account.
        (OTHER_ROLE, True, ResourcePolicy("b", {"Statement": []}, account=ACCOUNT), IMPLICIT),
        (
            OTHER_ROLE,
            False,
            ResourcePolicy("b", _grant({"AWS": OTHER_ROLE}), account=ACCOUNT),
            IMPLICIT,
        ),
        (
            OTHER_ROLE,
            True,
            ResourcePolicy("b", _grant({"AWS": [OTHER_ROLE]}), account=ACCOUNT),
            ALLOWED,
        ),
        (
            OTHER_ROLE,
            True,
            ResourcePolicy("b", _grant({"AWS": f"arn:aws:iam::{OTHER}:root"}), account=ACCOUNT),
            ALLOWED,
        ),
        # A key policy must grant: by name, or by naming the account and letting IAM decide.
        (
            ROLE,
            True,
            ResourcePolicy("k", {"Statement": []}, account=ACCOUNT, must_grant=True),
            IMPLICIT,
        ),
        (
            ROLE,
            True,
            ResourcePolicy(
                "k",
                _grant({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}),
                account=ACCOUNT,
                must_grant=True,
            ),
            ALLOWED,
        ),
        (
            ROLE,
            False,
            ResourcePolicy(
                "k",
                _grant({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}),
                account=ACCOUNT,
                must_grant=True,
            ),
            IMPLICIT,
        ),
        (
            ROLE,
            False,
            ResourcePolicy("k", _grant({"AWS": ROLE}), account=ACCOUNT, must_grant=True),
            ALLOWED,
        ),
        # Service principals have no identity policies: the resource policy decides.
        (
            "logging.s3.amazonaws.com",
            False,
            ResourcePolicy("b", _grant({"Service": "logging.s3.amazonaws.com"}), account=ACCOUNT),
            ALLOWED,
        ),
        (
            "logging.s3.amazonaws.com",
            False,
            ResourcePolicy("b", _grant({"Service": "cloudwatch.amazonaws.com"}), account=ACCOUNT),
            IMPLICIT,
        ),
        (
            "sagemaker.amazonaws.com",
            False,
            ResourcePolicy("b", _grant({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}), account=ACCOUNT),
            IMPLICIT,
        ),
    ],
)
def test_identity_and_resource_policies_combine_as_aws_documents(
    principal: str, identity_allows: bool, resource_policy: ResourcePolicy, expected: Decision
) -> None:
    identity = [_policy(_allow())] if identity_allows else []
    assert (
        evaluate(Request(principal, "s3:GetObject", OBJECT), identity, resource_policy).decision
        is expected
    )


def test_not_principal_excludes_the_named_principal() -> None:
    deny_others = ResourcePolicy(
        "b",
        {
            "Statement": [
                {
                    "Sid": "D",
                    "Effect": "Deny",
                    "NotPrincipal": {"AWS": ROLE},
                    "Action": "s3:*",
                    "Resource": OBJECT,
                }
            ]
        },
        account=ACCOUNT,
    )
    assert evaluate(Request(ROLE, "s3:GetObject", OBJECT), [_policy(_allow())], deny_others).allowed
    other = f"arn:aws:iam::{ACCOUNT}:role/other"
    assert (
        evaluate(Request(other, "s3:GetObject", OBJECT), [_policy(_allow())], deny_others).decision
        is EXPLICIT
    )


def test_a_trust_policy_without_resource_applies_to_its_role() -> None:
    trust = ResourcePolicy(
        "trust",
        {
            "Statement": [
                {
                    "Sid": "T",
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
                }
            ]
        },
        account=ACCOUNT,
        must_grant=True,
    )
    assume = Request("events.amazonaws.com", "sts:AssumeRole", ROLE, {"aws:SourceAccount": ACCOUNT})
    assert evaluate(assume, resource=trust).allowed
    assert not evaluate(
        replace(assume, context={"aws:SourceAccount": OTHER}), resource=trust
    ).allowed
    assert not evaluate(
        replace(assume, principal="scheduler.amazonaws.com"), resource=trust
    ).allowed


def test_what_it_cannot_decide_is_refused_not_guessed() -> None:
    with pytest.raises(UnsupportedPolicyError, match="policy variable"):
        _decide(_allow(resource="arn:aws:s3:::bucket/${aws:username}/*"))
    with pytest.raises(UnsupportedPolicyError, match="needs ForAnyValue/ForAllValues"):
        _decide(
            _allow(Condition={"StringEquals": {"aws:TagKeys": "team"}}), {"aws:TagKeys": ["a", "b"]}
        )
