"""IAM in a VPC, decided by the offline simulator: pipeline roles start jobs only in the
stack's subnets and security groups, job roles may attach their jobs there and nowhere else,
the buckets refuse listed job roles outside the S3 endpoint, and without a VPC nothing
changes. Scopes are built by hand (no plan), so every test runs in milliseconds."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import pytest

from infra.policies import Document
from infra.policies.analysis.checks import PolicyKind, check_document
from infra.policies.analysis.evaluation import (
    Decision,
    Outcome,
    Policy,
    Request,
    ResourcePolicy,
    evaluate,
)
from infra.policies.analysis.reference import ServiceReference
from infra.policies.batch import BatchScope, batch_pipeline_policies
from infra.policies.bucket import endpoint_only_statement, secure_bucket_policy
from infra.policies.execution_role import ExecutionRoleScope, permission_policies
from infra.policies.monitoring import (
    MonitoringScope,
    attribution_job_policies,
    drift_job_policies,
    drift_pipeline_policies,
    quality_job_policies,
    quality_pipeline_policies,
)
from infra.policies.training import (
    TrainingScope,
    model_card_job_policies,
    pipeline_policies,
    processing_job_policies,
    training_job_policies,
)
from infra.policies.vpc import (
    NETWORK_DESCRIBE_ACTIONS,
    NETWORK_INTERFACE_ACTIONS,
    InvalidVpcError,
    network_interface_statements,
    vpc_job_conditions,
    with_vpc_conditions,
)
from pipelines.spec import VpcSpec

ACCOUNT = "123456789012"
REGION = "eu-west-1"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1111"
VPC = VpcSpec(("subnet-0aaa", "subnet-0bbb"), ("sg-0ccc",))
FOREIGN_SUBNET, FOREIGN_GROUP = "subnet-0fff", "sg-0fff"
ENDPOINT = "vpce-0123456789abcdef0"


def _role(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/churn-prod-{name}"


def _sagemaker(resource: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{resource}"


def _ec2(resource: str) -> str:
    return f"arn:aws:ec2:{REGION}:{ACCOUNT}:{resource}"


TRAINING = TrainingScope(
    partition="aws",
    region=REGION,
    account_id=ACCOUNT,
    prefix="churn-prod",
    kms_key_arn=KEY,
    data_bucket_arn="arn:aws:s3:::churn-prod-data",
    artifacts_bucket_arn="arn:aws:s3:::churn-prod-artifacts",
    model_package_group="churn-prod-models",
    pipeline_name="churn-prod-training",
    processing_role_arn=_role("processing-job"),
    training_role_arn=_role("training-job"),
    model_card_role_arn=_role("model-card-job"),
    tuning=True,
)
MONITORING = MonitoringScope(
    partition="aws",
    region=REGION,
    account_id=ACCOUNT,
    prefix="churn-prod",
    kms_key_arn=KEY,
    artifacts_bucket_arn="arn:aws:s3:::churn-prod-artifacts",
    capture_bucket_arn="arn:aws:s3:::churn-prod-capture",
    model_package_group="churn-prod-models",
    metrics_namespace="MLOpsKit/churn-prod",
    drift_role_arn=_role("drift-job"),
    attribution_role_arn=_role("attribution-job"),
    quality_role_arn=_role("quality-job"),
    training_pipeline_name="churn-prod-training",
    retrain_rule_name="churn-prod-retrain",
    drift_sharded=True,
)
BATCH = BatchScope(
    partition="aws",
    region=REGION,
    account_id=ACCOUNT,
    kms_key_arn=KEY,
    execution_role_arn=_role("sagemaker-execution"),
    model_arn=_sagemaker("model/churn-prod-batch-model-1"),
    instance_type="ml.m5.large",
    split_instance_type="ml.t3.medium",
    artifacts_bucket_arn="arn:aws:s3:::churn-prod-artifacts",
    capture_bucket_arn="arn:aws:s3:::churn-prod-capture",
    pipeline_name="churn-prod-batch",
)
EXECUTION = ExecutionRoleScope(
    partition="aws",
    region=REGION,
    account_id=ACCOUNT,
    prefix="churn-prod",
    kms_key_arn=KEY,
    data_bucket_arn="arn:aws:s3:::churn-prod-data",
    artifacts_bucket_arn="arn:aws:s3:::churn-prod-artifacts",
    capture_bucket_arn="arn:aws:s3:::churn-prod-capture",
    metrics_namespace="MLOpsKit/churn-prod",
)


def _policies(documents: Mapping[str, Document]) -> list[Policy]:
    return [Policy(name, document) for name, document in documents.items()]


def _decide(request: Request, documents: Mapping[str, Document]) -> Outcome:
    return evaluate(request, _policies(documents))


# --- the condition block --------------------------------------------------------------


def test_the_job_condition_is_a_subset_test_with_both_keys_required() -> None:
    assert vpc_job_conditions(VPC) == {
        "ForAllValues:StringEquals": {
            "sagemaker:VpcSubnets": ["subnet-0aaa", "subnet-0bbb"],
            "sagemaker:VpcSecurityGroupIds": ["sg-0ccc"],
        },
        "Null": {"sagemaker:VpcSubnets": "false", "sagemaker:VpcSecurityGroupIds": "false"},
    }


def test_the_vpc_merges_into_a_statement_that_already_tests_other_keys() -> None:
    existing: dict[str, dict[str, Any]] = {
        "Bool": {"sagemaker:NetworkIsolation": "true"},
        "ForAllValues:StringEquals": {"sagemaker:InstanceTypes": ["ml.t3.medium"]},
    }
    assert with_vpc_conditions(existing, VPC) == {
        "Bool": {"sagemaker:NetworkIsolation": "true"},
        "ForAllValues:StringEquals": {
            "sagemaker:InstanceTypes": ["ml.t3.medium"],
            "sagemaker:VpcSubnets": ["subnet-0aaa", "subnet-0bbb"],
            "sagemaker:VpcSecurityGroupIds": ["sg-0ccc"],
        },
        "Null": {"sagemaker:VpcSubnets": "false", "sagemaker:VpcSecurityGroupIds": "false"},
    }
    # The caller's block is not mutated, and no VPC hands it back as it was.
    assert existing["ForAllValues:StringEquals"] == {"sagemaker:InstanceTypes": ["ml.t3.medium"]}
    assert with_vpc_conditions(existing, None) is existing


# --- pipeline roles: where jobs may start ------------------------------------------------

SECURE_JOB = {
    "sagemaker:NetworkIsolation": "true",
    "sagemaker:InterContainerTrafficEncryption": "true",
    "sagemaker:VolumeKmsKey": KEY,
    "sagemaker:OutputKmsKey": KEY,
}
# (case, the request's VpcConfig as subnets and groups; None: no VpcConfig), allowed?
PLACEMENTS = [
    ("the stack's subnets and group", (("subnet-0aaa", "subnet-0bbb"), ("sg-0ccc",)), True),
    ("one of the stack's subnets", (("subnet-0bbb",), ("sg-0ccc",)), True),
    ("a foreign subnet", ((FOREIGN_SUBNET,), ("sg-0ccc",)), False),
    ("a foreign security group", (("subnet-0aaa",), (FOREIGN_GROUP,)), False),
    ("ours mixed with a foreign subnet", (("subnet-0aaa", FOREIGN_SUBNET), ("sg-0ccc",)), False),
    ("ours mixed with a foreign group", (("subnet-0aaa",), ("sg-0ccc", FOREIGN_GROUP)), False),
    ("no VpcConfig at all", None, False),
]
PLACEMENT_IDS = [case for case, _, _ in PLACEMENTS]


def _placed(
    base: Mapping[str, Any], placement: tuple[tuple[str, ...], tuple[str, ...]] | None
) -> dict[str, Any]:
    if placement is None:
        return dict(base)
    subnets, groups = placement
    return {**base, "sagemaker:VpcSubnets": subnets, "sagemaker:VpcSecurityGroupIds": groups}


def _job_start_cases() -> list[tuple[str, Callable[[Any], dict[str, Document]], Any, str, str]]:
    """(label, builder, scope without VPC, action, job ARN) per job-starting pipeline."""

    def job(kind: str, step: str) -> str:
        return _sagemaker(f"{kind}/pipelines-abc123def456-{step}-x1y2z3")

    processing = "sagemaker:CreateProcessingJob"
    return [
        ("training: processing", pipeline_policies, TRAINING, processing,
         job("processing-job", "evaluate")),
        ("training: training", pipeline_policies, TRAINING, "sagemaker:CreateTrainingJob",
         job("training-job", "train")),
        ("training: tuning", pipeline_policies, TRAINING, "sagemaker:CreateHyperParameterTuningJob",
         _sagemaker("hyper-parameter-tuning-job/abc123-tune")),
        ("drift: processing", drift_pipeline_policies, MONITORING, processing,
         job("processing-job", "drift")),
        ("quality: processing", quality_pipeline_policies, MONITORING, processing,
         job("processing-job", "quality")),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("label", "build", "scope", "action", "job"),
    _job_start_cases(),
    ids=[case[0] for case in _job_start_cases()],
)
@pytest.mark.parametrize(("case", "placement", "allowed"), PLACEMENTS, ids=PLACEMENT_IDS)
def test_a_pipeline_starts_jobs_only_in_the_stacks_network(
    label: str,
    build: Callable[[Any], dict[str, Document]],
    scope: Any,
    action: str,
    job: str,
    case: str,
    placement: tuple[tuple[str, ...], tuple[str, ...]] | None,
    allowed: bool,
) -> None:
    principal = _role("pipeline")
    context = _placed(SECURE_JOB, placement)
    outcome = _decide(Request(principal, action, job, context), build(replace(scope, vpc=VPC)))
    assert outcome.allowed is allowed, (label, case, outcome)
    if not allowed:
        assert outcome.decision is Decision.IMPLICIT_DENY
    # Today (no VPC) the same request is decided on isolation and keys alone: allowed.
    assert _decide(Request(principal, action, job, context), build(scope)).allowed


@pytest.mark.parametrize(("case", "placement", "allowed"), PLACEMENTS, ids=PLACEMENT_IDS)
def test_the_model_card_job_is_held_to_the_network_too(
    case: str, placement: tuple[tuple[str, ...], tuple[str, ...]] | None, allowed: bool
) -> None:
    """The one job started without isolation must still be in the VPC: its statement would
    otherwise let any processing job named like it start anywhere."""
    job = _sagemaker("processing-job/pipelines-abc123def456-publishmodelcard-x1y2z3")
    context = _placed(
        {"sagemaker:InterContainerTrafficEncryption": "true", "sagemaker:VolumeKmsKey": KEY},
        placement,
    )
    request = Request(_role("pipeline"), "sagemaker:CreateProcessingJob", job, context)
    assert _decide(request, pipeline_policies(replace(TRAINING, vpc=VPC))).allowed is allowed
    assert _decide(request, pipeline_policies(TRAINING)).allowed


@pytest.mark.parametrize(("case", "placement", "allowed"), PLACEMENTS, ids=PLACEMENT_IDS)
def test_the_batch_split_job_is_held_to_the_network_and_the_transform_is_not_changed(
    case: str, placement: tuple[tuple[str, ...], tuple[str, ...]] | None, allowed: bool
) -> None:
    policies = batch_pipeline_policies(replace(BATCH, vpc=VPC), split=True)
    split = Request(
        _role("batch-pipeline"),
        "sagemaker:CreateProcessingJob",
        _sagemaker("processing-job/pipelines-abc123def456-splitbadrows-x1y2z3"),
        _placed({**SECURE_JOB, "sagemaker:InstanceTypes": ("ml.t3.medium",)}, placement),
    )
    assert _decide(split, policies).allowed is allowed
    # CreateTransformJob carries no VPC keys: its model (pinned by ARN) holds the VpcConfig.
    transform = Request(
        _role("batch-pipeline"),
        "sagemaker:CreateTransformJob",
        _sagemaker("transform-job/pipelines-abc123def456-transform-x1y2z3"),
        {
            "sagemaker:ModelArn": BATCH.model_arn,
            "sagemaker:InstanceTypes": ("ml.m5.large",),
            "sagemaker:VolumeKmsKey": KEY,
            "sagemaker:OutputKmsKey": KEY,
        },
    )
    assert _decide(transform, policies).allowed
    (statement,) = [
        s
        for s in policies["sagemaker"]["Statement"]
        if s["Action"] == "sagemaker:CreateTransformJob"
    ]
    assert statement == next(
        s
        for s in batch_pipeline_policies(BATCH, split=True)["sagemaker"]["Statement"]
        if s["Action"] == "sagemaker:CreateTransformJob"
    )


# --- job roles: attaching a job to the VPC ----------------------------------------------

JOB_ROLES: list[tuple[str, Callable[[Any], dict[str, Document]], Any]] = [
    ("processing-job", processing_job_policies, TRAINING),
    ("training-job", training_job_policies, TRAINING),
    ("model-card-job", model_card_job_policies, TRAINING),
    ("drift-job", drift_job_policies, MONITORING),
    ("attribution-job", attribution_job_policies, MONITORING),
    ("quality-job", quality_job_policies, MONITORING),
    ("sagemaker-execution", permission_policies, EXECUTION),
]
ROLE_IDS = [name for name, _, _ in JOB_ROLES]

OURS, THEIRS = _ec2("subnet/subnet-0aaa"), _ec2(f"subnet/{FOREIGN_SUBNET}")
INTERFACE = _ec2("network-interface/eni-0123456789abcdef0")
# (action, resource, context, allowed): what SageMaker does as the role, and what it may not.
EC2_REQUESTS = [
    ("ec2:CreateNetworkInterface", INTERFACE, {}, True),
    ("ec2:CreateNetworkInterface", OURS, {}, True),
    ("ec2:CreateNetworkInterface", _ec2("security-group/sg-0ccc"), {}, True),
    ("ec2:CreateNetworkInterface", THEIRS, {}, False),
    ("ec2:CreateNetworkInterface", _ec2(f"security-group/{FOREIGN_GROUP}"), {}, False),
    # Our subnet's ID in another region is another subnet.
    ("ec2:CreateNetworkInterface", OURS.replace(REGION, "us-east-1"), {}, False),
    *((action, INTERFACE, {"ec2:Subnet": OURS}, True) for action in NETWORK_INTERFACE_ACTIONS),
    *((action, INTERFACE, {"ec2:Subnet": THEIRS}, False) for action in NETWORK_INTERFACE_ACTIONS),
    *((action, INTERFACE, {}, False) for action in NETWORK_INTERFACE_ACTIONS),
    *((action, "*", {}, True) for action in NETWORK_DESCRIBE_ACTIONS),
    # Nothing beyond SageMaker's list: not even attaching an interface to an instance.
    ("ec2:AttachNetworkInterface", INTERFACE, {"ec2:Subnet": OURS}, False),
]  # fmt: skip


@pytest.mark.parametrize(("name", "build", "scope"), JOB_ROLES, ids=ROLE_IDS)
def test_a_job_role_may_attach_its_job_to_the_stacks_subnets_only(
    name: str, build: Callable[[Any], dict[str, Document]], scope: Any
) -> None:
    with_vpc, without = build(replace(scope, vpc=VPC)), build(scope)
    assert "network" in with_vpc
    assert "network" not in without
    wrong = []
    for action, resource, context, allowed in EC2_REQUESTS:
        request = Request(_role(name), action, resource, context)
        if _decide(request, with_vpc).allowed is not allowed:
            wrong.append(f"{action} on {resource} {context}: expected allowed={allowed}")
        if _decide(request, without).allowed:
            wrong.append(f"{action} on {resource} allowed without a VPC")
    assert not wrong, "\n".join(wrong)


def test_the_network_statements_scope_what_the_reference_lets_them() -> None:
    statements = {s["Sid"]: s for s in network_interface_statements("aws", REGION, ACCOUNT, VPC)}
    assert statements["CreateJobInterfacesInStackSubnets"]["Resource"] == [
        _ec2("network-interface/*"),
        _ec2("subnet/subnet-0aaa"),
        _ec2("subnet/subnet-0bbb"),
        _ec2("security-group/sg-0ccc"),
    ]
    assert statements["ManageJobInterfacesInStackSubnets"]["Condition"] == {
        "ArnEquals": {"ec2:Subnet": [_ec2("subnet/subnet-0aaa"), _ec2("subnet/subnet-0bbb")]}
    }
    assert statements["DescribeJobNetwork"]["Resource"] == "*"


def test_the_ec2_actions_are_sagemakers_documented_list_and_scoped_as_the_reference_allows() -> (
    None
):
    # "How to use SageMaker execution roles", for CreateProcessingJob/TrainingJob/Model in a
    # private VPC (docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html).
    documented = {
        "ec2:CreateNetworkInterface",
        "ec2:CreateNetworkInterfacePermission",
        "ec2:DeleteNetworkInterface",
        "ec2:DeleteNetworkInterfacePermission",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeVpcs",
        "ec2:DescribeDhcpOptions",
        "ec2:DescribeSubnets",
        "ec2:DescribeSecurityGroups",
    }
    granted = {
        action
        for statement in network_interface_statements("aws", REGION, ACCOUNT, VPC)
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    }
    assert granted == documented
    reference = ServiceReference.bundled()
    for action in NETWORK_DESCRIBE_ACTIONS:
        (found,) = reference.actions(action)
        assert found.resource_types == (), f"{action} could be scoped to {found.resource_types}"
    for action in NETWORK_INTERFACE_ACTIONS:
        (found,) = reference.actions(action)
        assert found.condition_key("ec2:Subnet"), action
    (create,) = reference.actions("ec2:CreateNetworkInterface")
    assert set(create.resource_types) == {"network-interface", "subnet", "security-group"}
    for action in (
        "sagemaker:CreateProcessingJob",
        "sagemaker:CreateTrainingJob",
        "sagemaker:CreateHyperParameterTuningJob",
    ):
        (found,) = reference.actions(action)
        assert found.condition_key("sagemaker:VpcSubnets"), action
        assert found.condition_key("sagemaker:VpcSecurityGroupIds"), action
    (transform,) = reference.actions("sagemaker:CreateTransformJob")
    assert not transform.condition_key("sagemaker:VpcSubnets")


# --- the buckets: listed job roles only through the S3 endpoint --------------------------

DATA = "arn:aws:s3:::churn-prod-data"
OBJECT = f"{DATA}/raw/part-00000.csv"
LISTED = [_role(name) for name in ("processing-job", "training-job", "drift-job")]


def _bucket() -> ResourcePolicy:
    document = secure_bucket_policy(
        bucket_arn=DATA,
        kms_key_arn=KEY,
        extra_statements=[endpoint_only_statement(DATA, ENDPOINT, LISTED)],
    )
    return ResourcePolicy("data/policy", document, account=ACCOUNT)


def _get(principal: str, **context: str) -> Outcome:
    identity = Policy(
        "s3",
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "Read",
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": f"{DATA}/*",
                }
            ],
        },
    )
    request = Request(
        principal,
        "s3:GetObject",
        OBJECT,
        {"aws:SecureTransport": "true", "aws:PrincipalArn": principal, **context},
    )
    return evaluate(request, [identity], _bucket())


def test_a_listed_job_role_reads_through_the_endpoint_and_is_refused_elsewhere() -> None:
    role = _role("training-job")
    assert _get(role, **{"aws:SourceVpce": ENDPOINT}).allowed
    for elsewhere in ({}, {"aws:SourceVpce": "vpce-0fffffffffffffff0"}):
        outcome = _get(role, **elsewhere)
        assert outcome.decision is Decision.EXPLICIT_DENY, elsewhere
        assert outcome.denied_by == ("data/policy/DenyJobRolesOutsideTheS3Endpoint",)


def test_an_unlisted_principal_is_not_affected() -> None:
    # The pipeline role reads evaluation reports from outside the VPC; so do Pulumi and the CLI.
    for principal in (_role("training-pipeline"), f"arn:aws:iam::{ACCOUNT}:role/deployer"):
        assert _get(principal).allowed
        assert _get(principal, **{"aws:SourceVpce": ENDPOINT}).allowed


def test_the_endpoint_statement_names_the_bucket_its_objects_and_the_roles() -> None:
    assert endpoint_only_statement(DATA, ENDPOINT, LISTED) == {
        "Sid": "DenyJobRolesOutsideTheS3Endpoint",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [DATA, f"{DATA}/*"],
        "Condition": {
            "StringNotEquals": {"aws:SourceVpce": ENDPOINT},
            "ArnEquals": {"aws:PrincipalArn": LISTED},
        },
    }


# --- every document against the IAM reference; no VPC, no change ------------------------


def _every_document(vpc: VpcSpec | None) -> dict[str, Document]:
    training, monitoring = replace(TRAINING, vpc=vpc), replace(MONITORING, vpc=vpc)
    documents: dict[str, Document] = {}
    for label, policies in [
        ("training-pipeline", pipeline_policies(training)),
        ("drift-pipeline", drift_pipeline_policies(monitoring)),
        ("quality-pipeline", quality_pipeline_policies(monitoring)),
        ("batch-pipeline", batch_pipeline_policies(replace(BATCH, vpc=vpc), split=True)),
        *((name, build(replace(scope, vpc=vpc))) for name, build, scope in JOB_ROLES),
    ]:
        documents.update({f"{label}/{name}": document for name, document in policies.items()})
    return documents


def test_every_vpc_document_passes_the_policy_sentry_check() -> None:
    findings = [
        str(finding)
        for label, document in _every_document(VPC).items()
        for finding in check_document(document, policy=label, kind=PolicyKind.IDENTITY).findings
    ]
    bucket = check_document(_bucket().document, policy="data", kind=PolicyKind.RESOURCE)
    findings += [str(finding) for finding in bucket.findings]
    assert not findings, "\n".join(findings)


def _without_vpc_additions(document: Document) -> Document:
    """``document`` less what a VPC adds: its two condition keys (and an operator left empty)."""
    statements = []
    for statement in document["Statement"]:
        condition = {
            operator: {
                k: v
                for k, v in block.items()
                if k not in ("sagemaker:VpcSubnets", "sagemaker:VpcSecurityGroupIds")
            }
            for operator, block in statement.get("Condition", {}).items()
        }
        condition = {operator: block for operator, block in condition.items() if block}
        statements.append({**statement, "Condition": condition} if condition else statement)
    return {**document, "Statement": statements}


def test_a_vpc_adds_the_network_policy_and_the_placement_conditions_and_nothing_else() -> None:
    with_vpc, without = _every_document(VPC), _every_document(None)
    network = {label for label in with_vpc if label.endswith("/network")}
    assert network == {f"{name}/network" for name in ROLE_IDS}
    stripped = {
        label: _without_vpc_additions(document)
        for label, document in with_vpc.items()
        if label not in network
    }
    assert stripped == without
    # Every job-starting statement changed: training (jobs, model card, tuning), drift,
    # quality and the batch split job.
    changed = [
        statement
        for label, document in with_vpc.items()
        for statement in document["Statement"]
        if "Null" in statement.get("Condition", {})
    ]
    assert len(changed) == 6
    assert {
        a
        for s in changed
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    } == {
        "sagemaker:CreateProcessingJob",
        "sagemaker:CreateTrainingJob",
        "sagemaker:CreateHyperParameterTuningJob",
    }


# --- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vpc", "message"),
    [
        (VpcSpec((), ("sg-0ccc",)), r"one subnet and one security group, got subnets=\[\]"),
        (VpcSpec(("subnet-0aaa",), ()), r"security_group_ids=\[\]"),
        ("placeholder", r"is a pipelines.spec.VpcSpec, not 'placeholder'"),
    ],
)  # fmt: skip
def test_a_vpc_no_job_could_run_in_is_refused_with_its_cause(vpc: Any, message: str) -> None:
    with pytest.raises(InvalidVpcError, match=message):
        vpc_job_conditions(vpc)
    with pytest.raises(InvalidVpcError, match=message):
        network_interface_statements("aws", REGION, ACCOUNT, vpc)


def test_a_bad_endpoint_or_no_roles_is_refused_with_its_cause() -> None:
    with pytest.raises(ValueError, match="looks like vpce-0123456789abcdef0, not 's3'"):
        endpoint_only_statement(DATA, "s3", LISTED)
    with pytest.raises(ValueError, match="needs at least one role ARN"):
        endpoint_only_statement(DATA, ENDPOINT, [])
