"""The kit's guardrails as a Pulumi CrossGuard policy pack.

    pulumi preview --policy-pack policy/ [--policy-pack-config policy-config.json]

Each guardrail in ``guardrails.GUARDRAILS`` becomes one policy of the same name: a resource
policy when it judges resources one at a time, a stack policy when it relates resources
(a bucket and its encryption, access block and bucket policy; a model and its endpoint).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyPack,
    PolicyProviderResource,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Secret,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from guardrails import GUARDRAILS, Context, Guardrail, Resource
from guardrails.model import SECRET, UNKNOWN, provider_default_tags

PACK_NAME = "mlops-kit-guardrails"


def plain(value: Any) -> Any:
    """Pulumi's proxied props as plain data, unknowns and secrets as the offline plan marks them
    (the proxy raises on an unknown; a validator treats the marker as "set after apply")."""
    if isinstance(value, Secret):
        return SECRET
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return {key: _item(value, key) for key in value}
    if isinstance(value, Sequence):
        return [_item(value, index) for index in range(len(value))]
    return value


def _item(container: Any, key: Any) -> Any:
    try:
        return plain(container[key])
    except UnknownValueError:
        return UNKNOWN


def _provider_tags(provider: PolicyProviderResource | None) -> dict[str, str]:
    return provider_default_tags(plain(provider.props)) if provider is not None else {}


def resource_of(args: ResourceValidationArgs) -> Resource:
    return Resource(
        args.urn, args.resource_type, args.name, plain(args.props), _provider_tags(args.provider)
    )


def stack_resource_of(resource: PolicyResource) -> Resource:
    return Resource(
        resource.urn,
        resource.resource_type,
        resource.name,
        plain(resource.props),
        _provider_tags(resource.provider),
        tuple(d.urn for d in resource.dependencies),
        {k: tuple(d.urn for d in deps) for k, deps in resource.property_dependencies.items()},
    )


def _schema(guardrail: Guardrail) -> PolicyConfigSchema | None:
    if not guardrail.params:
        return None
    properties: dict[str, dict[str, Any]] = {}
    for key, param in guardrail.params.items():
        properties[key] = dict(param.schema)
        if param.default is not None:
            properties[key]["default"] = param.default
    return PolicyConfigSchema(properties)


def resource_policy(guardrail: Guardrail) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        resource = resource_of(args)
        context = Context.of(resource, guardrail.settings(args.get_config()))
        for validator in guardrail.resource_validators:
            for message in validator(resource.type, resource.props, context):
                report(message, None)

    return ResourceValidationPolicy(
        guardrail.name,
        guardrail.description,
        validate,
        EnforcementLevel(guardrail.level.value),
        _schema(guardrail),
    )


def stack_policy(guardrail: Guardrail) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        resources = [stack_resource_of(r) for r in args.resources]
        for finding in guardrail.evaluate(resources, guardrail.settings(args.get_config())):
            report(finding.message, finding.urn)

    return StackValidationPolicy(
        guardrail.name,
        guardrail.description,
        validate,
        EnforcementLevel(guardrail.level.value),
        _schema(guardrail),
    )


def build_policies() -> list[Policy]:
    return [stack_policy(g) if g.stack_validators else resource_policy(g) for g in GUARDRAILS]


POLICIES = build_policies()

if __name__ == "__main__":
    # Pulumi runs this file as __main__; PolicyPack then serves the engine until it is done.
    PolicyPack(PACK_NAME, POLICIES)
