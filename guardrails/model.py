"""What every guardrail is made of: resources, their context, findings and the rule itself."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# Markers for values not known at plan time and for secrets. The offline plan
# (infra.plan.mocks) writes these same strings; the policy pack maps Pulumi's onto them.
UNKNOWN = "[unknown]"
SECRET = "[secret]"


class Level(StrEnum):
    """Pulumi's enforcement levels (``remediate`` counts as mandatory: nothing is rewritten)."""

    ADVISORY = "advisory"
    MANDATORY = "mandatory"
    REMEDIATE = "remediate"
    DISABLED = "disabled"

    @property
    def blocks(self) -> bool:
        return self in (Level.MANDATORY, Level.REMEDIATE)


@dataclass(frozen=True)
class Resource:
    """One resource as a policy sees it: camelCase inputs exactly as Pulumi passes them."""

    urn: str
    type: str
    name: str
    props: Mapping[str, Any]
    # The defaultTags of the provider that manages this resource; AWS applies them to it.
    provider_tags: Mapping[str, str] = field(default_factory=dict)
    dependencies: tuple[str, ...] = ()
    # Property -> URNs it depends on (CrossGuard knows these; the offline plan does not).
    property_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """What a resource validator knows beyond the resource's inputs."""

    name: str
    urn: str
    params: Mapping[str, Any]
    provider_tags: Mapping[str, str]
    environment: str | None

    @classmethod
    def of(cls, resource: Resource, params: Mapping[str, Any]) -> Context:
        return cls(
            name=resource.name,
            urn=resource.urn,
            params=params,
            provider_tags=resource.provider_tags,
            environment=environment_of(resource.props, resource.provider_tags, params),
        )


@dataclass(frozen=True)
class Finding:
    urn: str
    name: str
    message: str


ResourceValidator = Callable[[str, Mapping[str, Any], Context], list[str]]
StackValidator = Callable[[Sequence[Resource], Mapping[str, Any]], list[Finding]]


@dataclass(frozen=True)
class Param:
    """One configurable parameter: its JSON schema (as Pulumi's policy config takes it)."""

    schema: Mapping[str, Any]
    default: Any = None


@dataclass(frozen=True)
class Guardrail:
    name: str
    description: str
    level: Level
    resource_validators: tuple[ResourceValidator, ...] = ()
    # Cross-resource rules; a guardrail with any runs as a CrossGuard stack policy.
    stack_validators: tuple[StackValidator, ...] = ()
    params: Mapping[str, Param] = field(default_factory=dict)

    def settings(self, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Parameters with defaults filled in (Pulumi hands over only what config set)."""
        merged = {k: p.default for k, p in self.params.items() if p.default is not None}
        merged.update({k: v for k, v in (given or {}).items() if k != "enforcementLevel"})
        return merged

    def evaluate(self, resources: Sequence[Resource], params: Mapping[str, Any]) -> list[Finding]:
        findings: list[Finding] = []
        for resource in resources:
            context = Context.of(resource, params)
            for validate in self.resource_validators:
                messages = validate(resource.type, resource.props, context)
                findings += [Finding(resource.urn, resource.name, m) for m in messages]
        for validate_stack in self.stack_validators:
            findings += validate_stack(resources, params)
        return findings


# --- helpers the validators share ----------------------------------------------------------


def subject(resource_type: str, name: str) -> str:
    return f"{resource_type} '{name}'"


def known(value: Any) -> bool:
    return value is not None and value != UNKNOWN


def is_set(value: Any) -> bool:
    """Present and non-empty; a value known only after apply counts (e.g. a new key's ARN)."""
    return value == UNKNOWN or (value is not None and value != "" and value != [])


def lookup(props: Mapping[str, Any], path: str) -> Any:
    value: Any = props
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def as_document(value: Any) -> Mapping[str, Any] | None:
    """A policy document from a JSON string or an already decoded mapping."""
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str) and known(value):
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            return None
        return decoded if isinstance(decoded, Mapping) else None
    return None


def own_tags(props: Mapping[str, Any]) -> dict[str, Any]:
    tags = props.get("tags")
    return dict(tags) if isinstance(tags, Mapping) else {}


def provider_default_tags(provider_props: Mapping[str, Any]) -> dict[str, str]:
    """A provider's ``defaultTags.tags``; provider inputs carry objects as JSON strings."""
    default_tags = as_document(provider_props.get("defaultTags")) or {}
    tags = as_document(default_tags.get("tags")) or {}
    return {str(k): str(v) for k, v in tags.items()}


def environment_of(
    props: Mapping[str, Any], provider_tags: Mapping[str, str], params: Mapping[str, Any]
) -> str | None:
    """Policy config first (explicit wins), then the provider's default tags, then own tags."""
    for source in (params, provider_tags, own_tags(props)):
        value = source.get("environment")
        if isinstance(value, str) and known(value) and value:
            return value
    return None


def linked(
    resource: Resource, prop: str, targets: Sequence[Resource], target_prop: str
) -> list[Resource]:
    """Targets that ``resource.props[prop]`` points at: by name when both are known, else by
    the dependency Pulumi recorded (a name output is unknown before the target exists)."""
    value = resource.props.get(prop)
    if isinstance(value, str) and known(value):
        by_name = [t for t in targets if t.props.get(target_prop) == value]
        if by_name:
            return by_name
    urns = set(resource.property_dependencies.get(prop) or resource.dependencies)
    return [t for t in targets if t.urn in urns]
