"""The kit as a building block: one component, a team's own program, the template, accounts."""

from __future__ import annotations

import json
import runpy
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO

from infra.plan.project import load_stack_config
from infra.plan.runner import Plan, PlanError, plan_config

ENVIRONMENT = "mlopskit:index:MlopsEnvironment"
PROVIDER = "pulumi:providers:aws"


def _plan(project: Path, stack: str, *, caller: str | None = None, **config: str) -> Plan:
    loaded = load_stack_config(project, stack)
    loaded = replace(loaded, values={**loaded.values, **config})
    main = project / "__main__.py"
    program = (lambda: runpy.run_path(str(main))) if main.exists() else None
    return plan_config(loaded, program=program, caller_account=caller)


def _ancestor_types(plan: Plan, urn: str) -> list[str]:
    by_urn = {r.urn: r for r in plan.resources}
    types, parent = [], by_urn[urn].parent
    while parent in by_urn:
        types.append(by_urn[parent].type)
        parent = by_urn[parent].parent
    return types


def test_every_resource_of_the_stack_is_part_of_one_environment(plan_of: Any) -> None:
    prod = plan_of("prod")
    (environment,) = prod.all(ENVIRONMENT)
    assert environment.name == "churn"
    for resource in prod.resources:
        if resource.type in (PROVIDER, ENVIRONMENT):
            continue
        assert ENVIRONMENT in _ancestor_types(prod, resource.urn), resource.name


def test_a_stack_in_the_wrong_account_fails_before_declaring_anything() -> None:
    with pytest.raises(PlanError) as raised:
        _plan(REPO, "prod", caller="222222222222", **{"mlops:accountId": "111111111111"})
    message = str(raised.value)
    assert "deploys to account 111111111111 (mlops:accountId)" in message
    assert "credentials are for account 222222222222" in message


def test_the_provider_is_pinned_to_the_account_and_assumes_the_configured_role() -> None:
    role = "arn:aws:iam::111111111111:role/mlops-deployer"
    plan = _plan(
        REPO, "staging", **{"mlops:accountId": "111111111111", "mlops:assumeRoleArn": role}
    )
    (provider,) = plan.of_type(PROVIDER)
    # Provider inputs travel JSON-encoded, as the engine hands them to the provider.
    inputs = {k: json.loads(v) if isinstance(v, str) and v[:1] in "[{" else v
              for k, v in provider.inputs.items()}  # fmt: skip
    assert inputs["allowedAccountIds"] == ["111111111111"]
    (assumed,) = inputs["assumeRoles"]
    assert assumed["roleArn"] == role and assumed["sessionName"] == "pulumi-churn-staging"
    # Names carry the account the stack deploys to.
    assert plan.outputs["dataBucket"] == "churn-staging-data-111111111111-eu-west-1"


def test_a_teams_own_program_uses_the_component_in_a_few_lines() -> None:
    example = REPO / "examples" / "team-service"
    source = (example / "__main__.py").read_text()
    assert len([line for line in source.splitlines() if line and line[0] not in '#"']) < 20

    plan = _plan(example, "dev")

    assert plan.project == "team-service"
    (environment,) = plan.of_type(ENVIRONMENT)
    assert environment.name == "fraud"
    assert plan.outputs["trainingPipelineName"] == "fraud-dev-training"
    buckets = {r.inputs["bucket"] for r in plan.of_type("aws:s3/bucket:Bucket")}
    assert "fraud-dev-data-210987654321-eu-central-1" in buckets


def render_template(template: Path, dest: Path, project: str, stack: str, **answers: str) -> Path:
    """What `pulumi new <template>` writes: placeholders filled, answers in the stack file."""
    shutil.copytree(template, dest)
    for path in dest.rglob("*"):
        if path.is_file():
            text = path.read_text().replace("${PROJECT}", project)
            path.write_text(text.replace("${DESCRIPTION}", f"{project}, made from the template"))
    project_doc = yaml.safe_load((dest / "Pulumi.yaml").read_text())
    prompts = project_doc.pop("template")["config"]
    missing = [key for key, spec in prompts.items() if "default" not in spec and key not in answers]
    assert not missing, f"pulumi new would prompt for {missing}"
    config = {key: answers.get(key, spec.get("default")) for key, spec in prompts.items()}
    (dest / "Pulumi.yaml").write_text(yaml.safe_dump(project_doc, sort_keys=False))
    (dest / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))
    return dest


def test_the_template_prompts_for_what_a_stack_needs() -> None:
    template = yaml.safe_load((REPO / "templates" / "mlops-service" / "Pulumi.yaml").read_text())
    assert template["name"] == "${PROJECT}" and template["description"] == "${DESCRIPTION}"
    prompts = template["template"]["config"]
    assert set(prompts) == {
        "aws:region",
        "mlops:environment",
        "mlops:serviceName",
        "mlops:accountId",
    }
    assert all(spec["description"] for spec in prompts.values())
    # The account has no sensible default: pulumi new must ask for it.
    assert "default" not in prompts["mlops:accountId"]


def test_a_project_made_from_the_template_plans(tmp_path: Path) -> None:
    project = render_template(
        REPO / "templates" / "mlops-service",
        tmp_path / "fraud-detector",
        "fraud-detector",
        "dev",
        **{"mlops:accountId": "123412341234", "mlops:serviceName": "fraud"},
    )
    assert "${" not in (project / "__main__.py").read_text()

    plan = _plan(project, "dev")

    assert plan.project == "fraud-detector"
    assert plan.outputs["trainingPipelineName"] == "fraud-dev-training"
    assert plan.outputs["dataBucket"] == "fraud-dev-data-123412341234-eu-west-1"


# --- cross-account sharing (a tooling account's registry) ---------------------------------

TOOLING = "333333333333"
CONSUMERS = [
    {"accountId": "111111111111", "roleNames": ["churn-staging-serving", "mlops-deployer"]},
    {"accountId": "222222222222", "roleNames": ["churn-prod-serving"]},
]
CONSUMER_ARNS = sorted(
    f"arn:aws:iam::{c['accountId']}:role/{name}" for c in CONSUMERS for name in c["roleNames"]
)


@pytest.fixture(scope="module")
def tooling() -> Plan:
    return _plan(
        REPO,
        "prod",
        **{"mlops:accountId": TOOLING, "mlops:sharing": json.dumps({"consumers": CONSUMERS})},
    )


def _document(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else json.loads(value)


def _statements_naming_consumers(plan: Plan) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for resource in plan.resources:
        for field in ("policy", "resourcePolicy"):
            if field in resource.inputs:
                for statement in _document(resource.inputs[field])["Statement"]:
                    if any(c["accountId"] in json.dumps(statement) for c in CONSUMERS):
                        found.append((resource.type, statement))
    return found


def test_the_registry_is_readable_by_exactly_the_consumer_roles(tooling: Plan) -> None:
    (policy,) = tooling.of_type("aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy")
    assert policy.inputs["modelPackageGroupName"] == "churn-prod-models"
    (statement,) = _document(policy.inputs["resourcePolicy"])["Statement"]
    assert sorted(statement["Principal"]["AWS"]) == CONSUMER_ARNS
    assert statement["Effect"] == "Allow"
    assert set(statement["Action"]) == {
        "sagemaker:DescribeModelPackageGroup",
        "sagemaker:DescribeModelPackage",
        "sagemaker:ListModelPackages",
    }
    group = f"arn:aws:sagemaker:eu-west-1:{TOOLING}:model-package-group/churn-prod-models"
    packages = f"arn:aws:sagemaker:eu-west-1:{TOOLING}:model-package/churn-prod-models/*"
    assert statement["Resource"] == [group, packages]


def test_consumers_may_pull_models_and_decrypt_them_through_s3_only(tooling: Plan) -> None:
    by_sid = {s["Sid"]: (t, s) for t, s in _statements_naming_consumers(tooling)}
    assert set(by_sid) == {
        "ConsumerAccountsReadModelPackages",
        "ConsumerAccountsReadModels",
        "ConsumerAccountsDecryptThroughS3",
    }
    kind, models = by_sid["ConsumerAccountsReadModels"]
    assert kind == "aws:s3/bucketPolicy:BucketPolicy"
    artifacts = f"arn:aws:s3:::churn-prod-artifacts-{TOOLING}-eu-west-1"
    assert models["Resource"] == [f"{artifacts}/models/*", f"{artifacts}/evaluation/*"]
    assert models["Action"] == "s3:GetObject"
    kind, decrypt = by_sid["ConsumerAccountsDecryptThroughS3"]
    assert kind == "aws:kms/key:Key"
    assert sorted(decrypt["Action"]) == ["kms:Decrypt", "kms:DescribeKey"]
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}
    }
    for _, statement in by_sid.values():
        assert sorted(statement["Principal"]["AWS"]) == CONSUMER_ARNS


def test_without_consumers_nothing_is_shared(plan_of: Any) -> None:
    prod = plan_of("prod")
    assert prod.of_type("aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy") == []
    for resource in prod.resources:
        text = json.dumps(resource.inputs)
        assert "ConsumerAccounts" not in text


@pytest.mark.parametrize(
    ("sharing", "message"),
    [
        ({"consumers": [{"accountId": TOOLING, "roleNames": ["x"]}]}, "this stack's own account"),
        ({"consumers": [{"accountId": "111111111111", "roleNames": []}]}, "at least 1 item"),
        ({"consumers": [{"accountId": "1111", "roleNames": ["x"]}]}, "not an AWS account ID"),
        ({"consumers": [{"accountId": "111111111111", "roleNames": ["a b"]}]}, "pattern"),
    ],
)
def test_bad_sharing_config_is_refused(sharing: dict[str, Any], message: str) -> None:
    with pytest.raises(PlanError, match="mlops:sharing") as raised:
        _plan(REPO, "prod", **{"mlops:accountId": TOOLING, "mlops:sharing": json.dumps(sharing)})
    assert message in str(raised.value)


# --- a workload stack serving from the tooling registry ------------------------------------

WORKLOAD = "111111111111"


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    project = tmp_path_factory.mktemp("accounts")
    shutil.copy(REPO / "Pulumi.yaml", project / "Pulumi.yaml")
    tooling = yaml.safe_load((REPO / "Pulumi.prod.yaml").read_text())
    tooling["config"]["mlops:accountId"] = TOOLING
    tooling["config"]["mlops:sharing"] = {"consumers": CONSUMERS}
    (project / "Pulumi.tooling.yaml").write_text(yaml.safe_dump(tooling))
    shutil.copy(REPO / "Pulumi.staging.yaml", project / "Pulumi.staging.yaml")
    return _plan(
        project,
        "staging",
        **{
            "mlops:accountId": WORKLOAD,
            "mlops:sharedRegistry": json.dumps({"stack": "acme/mlops-kit/tooling"}),
        },
    )


def test_a_workload_reads_the_tooling_stack_through_a_stack_reference(workload: Plan) -> None:
    (reference,) = workload.of_type("pulumi:pulumi:StackReference")
    assert reference.inputs["name"] == "acme/mlops-kit/tooling"
    models = workload.of_type("aws:sagemaker/model:Model")
    (model,) = [m for m in models if "shadow" not in m.name and "batch" not in m.name]
    # The stack file's packageVersion, in the tooling account's registry.
    assert model.inputs["primaryContainer"]["modelPackageName"] == (
        f"arn:aws:sagemaker:eu-west-1:{TOOLING}:model-package/churn-tooling-models/1"
    )


def test_the_workload_roles_may_read_only_the_shared_models(workload: Plan) -> None:
    shared = {
        p.inputs["role"]: _document(p.inputs["policy"])
        for p in workload.of_type("aws:iam/rolePolicy:RolePolicy")
        if p.inputs["name"] == "shared-registry"
    }
    reports_too = {"churn-staging-attribution-job", "churn-staging-quality-job"}
    assert set(shared) == {"churn-staging-serving", "churn-staging-drift-job", *reports_too}
    artifacts = f"arn:aws:s3:::churn-tooling-artifacts-{TOOLING}-eu-west-1"
    for role, policy in shared.items():
        by_sid = {s["Sid"]: s for s in policy["Statement"]}
        # The quality and attribution jobs also read the registered version's evaluation
        # reports (its quality statistics and explainability analysis).
        expected = (
            sorted([f"{artifacts}/models/*", f"{artifacts}/evaluation/*"])
            if role in reports_too
            else f"{artifacts}/models/*"
        )
        found = by_sid["ReadSharedModels"]["Resource"]
        assert (sorted(found) if isinstance(found, list) else found) == expected
        decrypt = by_sid["DecryptSharedModelsThroughS3"]
        assert decrypt["Resource"].startswith(f"arn:aws:kms:eu-west-1:{TOOLING}:key/")
        assert decrypt["Condition"] == {
            "StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}
        }
        # The monitoring jobs look packages up in the registry; serving is handed its ARN.
        assert ("DescribeSharedModelPackages" in by_sid) is (role != "churn-staging-serving")
    # The drift job finds its baseline in the shared registry.
    (drift,) = [
        p
        for p in workload.of_type("aws:sagemaker/pipeline:Pipeline")
        if p.inputs["pipelineName"].endswith("-drift")
    ]
    definition = _document(drift.inputs["pipelineDefinition"])
    arguments = definition["Steps"][0]["Arguments"]["AppSpecification"]["ContainerArguments"]
    baseline = arguments[arguments.index("--baseline") + 1]
    assert baseline == f"arn:aws:sagemaker:eu-west-1:{TOOLING}:model-package/churn-tooling-models/1"


def test_a_reference_to_an_unknown_stack_is_a_clear_plan_error(tmp_path: Path) -> None:
    shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copy(REPO / "Pulumi.staging.yaml", tmp_path / "Pulumi.staging.yaml")
    with pytest.raises(PlanError, match="cannot resolve StackReference 'acme/x/nowhere'"):
        _plan(
            tmp_path, "staging", **{"mlops:sharedRegistry": json.dumps({"stack": "acme/x/nowhere"})}
        )
