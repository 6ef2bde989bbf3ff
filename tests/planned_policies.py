"""Every policy document a plan declares, classified by the kind of policy it is; and the
extra plans (a team's own program, a tooling account that shares its registry, a workload
account that serves from it) that declare documents the repo's stacks do not."""

from __future__ import annotations

import atexit
import functools
import json
import runpy
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from infra.plan.mocks import RecordedResource
from infra.plan.project import load_stack_config
from infra.plan.runner import Plan, plan_config
from infra.policies.analysis.checks import PolicyKind

REPO = Path(__file__).resolve().parent.parent
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
MANAGED_POLICY = "aws:iam/policy:Policy"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
KMS_KEY = "aws:kms/key:Key"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
REGISTRY_POLICY = "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy"

# (resource type, input path) -> what kind of policy the document there is.
POLICY_FIELDS: dict[tuple[str, str], PolicyKind] = {
    (ROLE_POLICY, "policy"): PolicyKind.IDENTITY,
    (MANAGED_POLICY, "policy"): PolicyKind.IDENTITY,
    (ROLE, "assumeRolePolicy"): PolicyKind.TRUST,
    (ROLE, "inlinePolicies[].policy"): PolicyKind.IDENTITY,
    (BUCKET_POLICY, "policy"): PolicyKind.RESOURCE,
    (KMS_KEY, "policy"): PolicyKind.RESOURCE,
    (TOPIC_POLICY, "policy"): PolicyKind.RESOURCE,
    (REGISTRY_POLICY, "resourcePolicy"): PolicyKind.RESOURCE,
    ("aws:ec2/vpcEndpoint:VpcEndpoint", "policy"): PolicyKind.ENDPOINT,
}


class UnclassifiedPolicyError(AssertionError):
    """A plan declares a policy document in a field this module does not know."""


@dataclass(frozen=True)
class PlannedDocument:
    plan: str
    resource: RecordedResource
    field: str
    kind: PolicyKind
    document: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.plan}: {self.resource.type} {self.resource.name} ({self.field})"


def _as_document(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str) and value.lstrip().startswith("{") and "Statement" in value:
        value = json.loads(value)
    return value if isinstance(value, dict) and "Statement" in value else None


def _walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _walk(inner, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for inner in value:
            yield from _walk(inner, f"{path}[]")


def planned_documents(plan: Plan, label: str | None = None) -> list[PlannedDocument]:
    found = []
    for resource in plan.resources:
        for path, value in _walk(resource.inputs, ""):
            document = _as_document(value) if path else None
            if document is None:
                continue
            kind = POLICY_FIELDS.get((resource.type, path))
            if kind is None:
                raise UnclassifiedPolicyError(
                    f"{resource.type} {resource.name} declares a policy document at {path}; "
                    "add it to planned_policies.POLICY_FIELDS"
                )
            found.append(PlannedDocument(label or plan.stack, resource, path, kind, document))
    return found


# --- plans beyond the repo's three stack files ------------------------------------------

TOOLING_ACCOUNT = "333333333333"
WORKLOAD_ACCOUNT = "111111111111"
CONSUMERS = [
    {
        "accountId": WORKLOAD_ACCOUNT,
        # The roles that read the tooling registry: serving, and each monitoring job.
        "roleNames": [
            "churn-staging-serving",
            "churn-staging-drift-job",
            "churn-staging-attribution-job",
            "churn-staging-quality-job",
        ],
    },
]


def _plan(project: Path, stack: str, **config: str) -> Plan:
    loaded = load_stack_config(project, stack)
    loaded = replace(loaded, values={**loaded.values, **config})
    main = project / "__main__.py"
    program = (lambda: runpy.run_path(str(main))) if main.exists() else None
    return plan_config(loaded, program=program)


@functools.cache
def team_service_plan() -> Plan:
    """examples/team-service: another region and account (the template is the same program)."""
    return _plan(REPO / "examples" / "team-service", "dev")


@functools.cache
def _accounts_project() -> Path:
    """A project with a tooling stack (prod's settings in the tooling account, sharing its
    registry) and the staging stack, which a workload account deploys."""
    project = Path(tempfile.mkdtemp(prefix="iam-accounts-"))
    atexit.register(shutil.rmtree, project, ignore_errors=True)
    shutil.copy(REPO / "Pulumi.yaml", project / "Pulumi.yaml")
    tooling = yaml.safe_load((REPO / "Pulumi.prod.yaml").read_text())
    tooling["config"]["mlops:accountId"] = TOOLING_ACCOUNT
    tooling["config"]["mlops:sharing"] = {"consumers": CONSUMERS}
    (project / "Pulumi.tooling.yaml").write_text(yaml.safe_dump(tooling))
    shutil.copy(REPO / "Pulumi.staging.yaml", project / "Pulumi.staging.yaml")
    return project


@functools.cache
def tooling_plan() -> Plan:
    return _plan(_accounts_project(), "tooling")


@functools.cache
def workload_plan() -> Plan:
    """staging in the workload account, serving the tooling registry's model."""
    return _plan(
        _accounts_project(),
        "staging",
        **{
            "mlops:accountId": WORKLOAD_ACCOUNT,
            "mlops:sharedRegistry": json.dumps({"stack": "acme/mlops-kit/tooling"}),
        },
    )
