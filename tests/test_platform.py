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
