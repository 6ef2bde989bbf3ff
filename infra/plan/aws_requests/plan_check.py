"""Map every AWS resource of a plan to its requests and validate them, and each pipeline step.

A resource type without a mapping, an input a mapping leaves unread, and every request field
AWS would refuse are all reported the same way: one line naming the resource, the request,
the field path and the rule.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from infra.plan.aws_requests import (
    automation,
    identity,
    network,
    observability,
    sagemaker,
    storage,
)
from infra.plan.aws_requests.inputs import Context, Inputs, Request
from infra.plan.aws_requests.pipeline_steps import StepCheck, check_definition
from infra.plan.aws_requests.shapes import Outcome, validate
from infra.plan.mocks import RecordedResource
from infra.plan.runner import Plan

Mapping = Callable[[Inputs, Context], list[Request]]
MAPPINGS: dict[str, Mapping] = {
    **storage.MAPPINGS,
    **identity.MAPPINGS,
    **sagemaker.MAPPINGS,
    **observability.MAPPINGS,
    **automation.MAPPINGS,
    **network.MAPPINGS,
}
PIPELINE = "aws:sagemaker/pipeline:Pipeline"
# Custom resources that make no AWS request: the provider itself, and stack references
# (read from Pulumi's state).
NOT_AWS = ("pulumi:providers:", "pulumi:pulumi:StackReference")


@dataclass(frozen=True)
class ResourceCheck:
    resource: RecordedResource
    requests: tuple[Request, ...]
    outcomes: tuple[Outcome, ...]
    unmapped: tuple[str, ...]
    steps: tuple[StepCheck, ...] = ()

    @property
    def problems(self) -> list[str]:
        where = f"{self.resource.type} {self.resource.name}"
        found = [
            f"{where}: input {path} maps to no request field (map it, or list it as "
            "provider-only with the reason)"
            for path in self.unmapped
        ]
        for sent, outcome in zip(self.requests, self.outcomes, strict=True):
            found += [f"{where} -> {sent.label}: {v}" for v in outcome.violations]
        for step in self.steps:
            found += [f"{where} {step.label}: {v}" for v in step.outcome.violations]
        return found


@dataclass(frozen=True)
class PlanCheck:
    stack: str
    checks: tuple[ResourceCheck, ...]
    unmapped_types: tuple[str, ...]

    @property
    def problems(self) -> list[str]:
        found = [f"{t}: no request mapping for this resource type" for t in self.unmapped_types]
        return found + [problem for check in self.checks for problem in check.problems]

    @property
    def fields(self) -> int:
        outcomes = [o for c in self.checks for o in c.outcomes]
        outcomes += [s.outcome for c in self.checks for s in c.steps]
        return sum(o.fields for o in outcomes)

    @property
    def steps(self) -> list[StepCheck]:
        return [step for check in self.checks for step in check.steps]


def check_plan(plan: Plan) -> PlanCheck:
    providers = _providers(plan)
    checks: list[ResourceCheck] = []
    unmapped_types: set[str] = set()
    for resource in plan.resources:
        if not resource.custom or resource.type.startswith(NOT_AWS):
            continue
        mapping = MAPPINGS.get(resource.type)
        if mapping is None:
            unmapped_types.add(resource.type)
            continue
        checks.append(check_resource(resource, mapping, _context(resource, providers)))
    return PlanCheck(plan.stack, tuple(checks), tuple(sorted(unmapped_types)))


def resource_requests(plan: Plan, resource: RecordedResource) -> list[Request]:
    """The requests the provider sends for one planned resource, unvalidated."""
    mapping = MAPPINGS[resource.type]
    return mapping(Inputs(resource.inputs), _context(resource, _providers(plan)))


def check_resource(resource: RecordedResource, mapping: Mapping, ctx: Context) -> ResourceCheck:
    inputs = Inputs(resource.inputs)
    requests = tuple(mapping(inputs, ctx))
    outcomes = tuple(validate(r.service, r.operation, r.params) for r in requests)
    steps: tuple[StepCheck, ...] = ()
    if resource.type == PIPELINE and isinstance(resource.inputs.get("pipelineDefinition"), str):
        steps = tuple(check_definition(resource.inputs["pipelineDefinition"]))
    return ResourceCheck(resource, requests, outcomes, tuple(inputs.unmapped()), steps)


def _providers(plan: Plan) -> dict[str, RecordedResource]:
    return {r.urn: r for r in plan.resources if r.type.startswith("pulumi:providers:aws")}


def _context(resource: RecordedResource, providers: dict[str, RecordedResource]) -> Context:
    provider = providers.get(resource.provider.rpartition("::")[0])
    settings = provider.inputs if provider is not None else {}
    raw = settings.get("defaultTags")
    default_tags = (json.loads(raw) if isinstance(raw, str) else raw or {}).get("tags") or {}
    return Context(resource, str(settings.get("region", "us-east-1")), default_tags)
