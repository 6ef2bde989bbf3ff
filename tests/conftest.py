"""Shared fixtures: plan any stack of this repo under Pulumi's mocks, once per session."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.plan.mocks import RecordedResource
from infra.plan.project import load_stack_config
from infra.plan.runner import Plan, plan_config

REPO = Path(__file__).resolve().parent.parent
STACKS = ("dev", "staging", "prod")

BUCKET = "aws:s3/bucket:Bucket"
KMS_KEY = "aws:kms/key:Key"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
PROVIDER = "pulumi:providers:aws"


class PlannedStack:
    """A plan plus helpers to find resources by type and name and read their JSON inputs."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def __getattr__(self, name: str) -> Any:
        return getattr(self.plan, name)

    def one(self, type_token: str, name: str) -> RecordedResource:
        return self.plan.get(type_token, name)

    def all(self, type_token: str) -> list[RecordedResource]:
        found = self.plan.of_type(type_token)
        assert found, f"the {self.plan.stack} plan declares no {type_token}"
        return found

    def sibling(self, resource: RecordedResource, type_token: str) -> RecordedResource:
        """The resource of ``type_token`` declared next to ``resource`` in the same component."""
        matches = [r for r in self.plan.children_of(resource.parent) if r.type == type_token]
        assert len(matches) == 1, f"{resource.name}: expected one {type_token}, got {matches}"
        return matches[0]

    @staticmethod
    def document(resource: RecordedResource, field: str = "policy") -> dict[str, Any]:
        raw = resource.inputs[field]
        return raw if isinstance(raw, dict) else json.loads(raw)


@pytest.fixture(scope="session")
def plan_of() -> Callable[[str], PlannedStack]:
    cache: dict[str, PlannedStack] = {}

    def get(stack: str) -> PlannedStack:
        if stack not in cache:
            cache[stack] = PlannedStack(plan_config(load_stack_config(REPO, stack)))
        return cache[stack]

    return get


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest, plan_of: Callable[[str], PlannedStack]) -> PlannedStack:
    """Each test using this runs once per stack file in the repo."""
    return plan_of(request.param)


@pytest.fixture
def raw_config() -> Callable[[str], dict[str, str]]:
    """A stack file's config exactly as the engine would pass it to the program."""
    return lambda stack: dict(load_stack_config(REPO, stack).values)
