"""Run every guardrail over an offline plan's resources (``mlops plan --policy``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from guardrails.catalog import GUARDRAILS
from guardrails.config import PolicyConfig
from guardrails.model import Level, Resource, provider_default_tags
from infra.plan.mocks import RecordedResource
from infra.plan.runner import Plan

PROVIDER_PREFIX = "pulumi:providers:"


@dataclass(frozen=True)
class Violation:
    policy: str
    level: Level
    urn: str
    name: str
    message: str


def check_plan(plan: Plan, config: PolicyConfig | None = None) -> list[Violation]:
    return check_resources(resources_of(plan), config)


def check_resources(
    resources: Sequence[Resource], config: PolicyConfig | None = None
) -> list[Violation]:
    config = config or PolicyConfig()
    violations: list[Violation] = []
    for guardrail in GUARDRAILS:
        level = config.level_of(guardrail)
        if level is Level.DISABLED:
            continue
        for finding in guardrail.evaluate(resources, config.params_of(guardrail)):
            violations.append(
                Violation(guardrail.name, level, finding.urn, finding.name, finding.message)
            )
    return violations


def has_mandatory(violations: Sequence[Violation]) -> bool:
    return any(v.level.blocks for v in violations)


def resources_of(plan: Plan) -> list[Resource]:
    """The plan's custom resources as a policy pack would receive them."""
    providers = {r.urn: r for r in plan.resources if r.type.startswith(PROVIDER_PREFIX)}
    return [
        Resource(
            urn=r.urn,
            type=r.type,
            name=r.name,
            props=r.inputs,
            provider_tags=_provider_tags(providers, r),
            dependencies=r.depends_on,
        )
        for r in plan.resources
        if r.custom
    ]


def _provider_tags(
    providers: dict[str, RecordedResource], resource: RecordedResource
) -> dict[str, str]:
    # A provider reference is "<provider urn>::<provider id>".
    provider = providers.get(resource.provider.rsplit("::", 1)[0])
    if provider is None:
        return {}
    return provider_default_tags(provider.inputs)
