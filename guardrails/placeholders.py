"""no-placeholder-settings and placeholder-settings-warning: example values never reach prod.

A stack file copied from the kit's samples carries values nobody chose: alert e-mail at
``example.com`` (RFC 2606 reserves it for documentation: mail to it is never delivered), or
the ``CHANGE-ME`` marker ``mlops stack init`` writes where it was not given a value. Alarms
that reach nobody and cost tags that say nothing pass every other check, so this rule looks
for them in what the stack declares:

- e-mail subscriptions (``aws:sns/topicSubscription``, protocol ``email``/``email-json``)
  whose address is at an RFC 2606 name or holds the marker (``mlops:monitoring.alarmEmails``);
- tags whose key or value holds the marker, in the provider's ``defaultTags``
  (``mlops:tags``, reported once per provider) or on a resource itself.

The same findings back two guardrails, because CrossGuard fixes a policy's enforcement level:
``no-placeholder-settings`` (mandatory) in ``environments`` (default prod), and
``placeholder-settings-warning`` (advisory) in its own ``environments`` (default dev and
staging), where example values are fine for a while but should not be forgotten.

The kit's own ``Pulumi.prod.yaml`` is a sample with example addresses. It says so with the tag
``sample-stack: <its stack name>``: a stack whose ``sample-stack`` tag equals its ``stack``
tag gets the warning instead of the failure. A copy under another stack name (or a stack
``mlops stack init`` writes, which drops the tag) is judged like any other stack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from guardrails.model import (
    Finding,
    Resource,
    environment_of,
    known,
    own_tags,
    provider_default_tags,
    subject,
)

# What `mlops stack init` writes where it was given no value; any setting holding it is unset.
PLACEHOLDER = "CHANGE-ME"
PLACEHOLDER_EMAIL = f"{PLACEHOLDER}@example.com"
# RFC 2606: second-level names reserved for documentation, and reserved top-level names.
EXAMPLE_DOMAINS = ("example.com", "example.net", "example.org")
RESERVED_TLDS = ("example", "test", "invalid", "localhost")
# A stack file that is the kit's sample says so with this tag, valued with its stack name.
SAMPLE_TAG = "sample-stack"

SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
EMAIL_PROTOCOLS = ("email", "email-json")
PROVIDER_PREFIX = "pulumi:providers:"

ENFORCED_ENVIRONMENTS = ("prod",)
WARNED_ENVIRONMENTS = ("dev", "staging")


def email_problem(address: str) -> str | None:
    """Why ``address`` is a placeholder rather than someone's mailbox, or None."""
    if PLACEHOLDER.lower() in address.lower():
        return f"it holds the placeholder marker {PLACEHOLDER}"
    domain = address.rsplit("@", 1)[-1].strip().rstrip(".").lower()
    for reserved in EXAMPLE_DOMAINS:
        if domain == reserved or domain.endswith(f".{reserved}"):
            return f"{reserved} is reserved for examples by RFC 2606; mail to it is never delivered"
    tld = domain.rsplit(".", 1)[-1]
    if tld in RESERVED_TLDS:
        return f".{tld} is a top-level name RFC 2606 reserves; mail to it is never delivered"
    return None


def is_placeholder_tag(key: str, value: str) -> bool:
    marker = PLACEHOLDER.lower()
    return marker in key.lower() or marker in value.lower()


def is_sample(tags: Mapping[str, Any]) -> bool:
    """The kit's sample stack file, judged leniently: its sample tag names its own stack."""
    sample, stack = tags.get(SAMPLE_TAG), tags.get("stack")
    return isinstance(sample, str) and bool(sample) and sample == stack


def validate_enforced(resources: Sequence[Resource], params: Mapping[str, Any]) -> list[Finding]:
    return _findings(resources, params, enforced=True)


def validate_warned(resources: Sequence[Resource], params: Mapping[str, Any]) -> list[Finding]:
    return _findings(resources, params, enforced=False)


def _findings(
    resources: Sequence[Resource], params: Mapping[str, Any], *, enforced: bool
) -> list[Finding]:
    default = ENFORCED_ENVIRONMENTS if enforced else WARNED_ENVIRONMENTS
    environments = params.get("environments", default)

    def judged(tags: Mapping[str, str], environment: str | None) -> bool:
        if environment is None:
            return False
        if is_sample(tags):  # the kit's sample: a warning wherever it is, never a failure
            return not enforced
        return environment in environments

    findings: list[Finding] = []
    # Provider defaultTags reach every resource the provider manages: one finding each.
    reported: set[frozenset[tuple[str, str]]] = set()
    providers = [r for r in resources if r.type.startswith(PROVIDER_PREFIX)]
    others = [r for r in resources if not r.type.startswith(PROVIDER_PREFIX)]
    for resource in providers:
        tags = provider_default_tags(resource.props)
        environment = environment_of({}, tags, params)
        if tags and judged(tags, environment):
            reported.add(frozenset(tags.items()))
            findings += _tag_findings(resource, tags, tags, environment, source="provider")
    for resource in others:
        tags = {**resource.provider_tags, **_string_tags(own_tags(resource.props))}
        environment = environment_of(resource.props, resource.provider_tags, params)
        if not judged(tags, environment):
            continue
        given = frozenset(resource.provider_tags.items())
        if resource.provider_tags and given not in reported:
            reported.add(given)
            findings += _tag_findings(
                resource, resource.provider_tags, tags, environment, source="provider"
            )
        own = {
            k: v
            for k, v in _string_tags(own_tags(resource.props)).items()
            if resource.provider_tags.get(k) != v
        }
        findings += _tag_findings(resource, own, tags, environment, source="own")
        if resource.type == SUBSCRIPTION:
            findings += _email_findings(resource, tags, environment)
    return findings


def _string_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): v for k, v in tags.items() if isinstance(v, str) and known(v)}


def _stack_file(tags: Mapping[str, str]) -> str:
    stack = tags.get("stack")
    return f"Pulumi.{stack}.yaml" if stack else "the stack file"


def _sample_note(tags: Mapping[str, str]) -> str:
    if not is_sample(tags):
        return ""
    return (
        f". A warning only: the stack is tagged {SAMPLE_TAG}={tags[SAMPLE_TAG]} (the kit's "
        "sample); replace the value and remove that tag before a real deployment"
    )


def _email_findings(
    resource: Resource, tags: Mapping[str, str], environment: str | None
) -> list[Finding]:
    props = resource.props
    address = props.get("endpoint")
    if props.get("protocol") not in EMAIL_PROTOCOLS or not isinstance(address, str):
        return []
    if not known(address):
        return []
    problem = email_problem(address)
    if problem is None:
        return []
    message = (
        f"{subject(resource.type, resource.name)}: alert e-mail {address} is a placeholder "
        f"({problem}), so alarms in environment '{environment}' reach nobody. Set "
        f"mlops:monitoring.alarmEmails in {_stack_file(tags)} to your on-call addresses "
        f"(for a new stack, `mlops stack init --alert-email ADDRESS` writes them)"
        f"{_sample_note(tags)}"
    )
    return [Finding(resource.urn, resource.name, message)]


def _tag_findings(
    resource: Resource,
    candidates: Mapping[str, str],
    tags: Mapping[str, str],
    environment: str | None,
    *,
    source: str,
) -> list[Finding]:
    keys = [k for k, v in candidates.items() if is_placeholder_tag(k, v)]
    if not keys:
        return []
    shown = ", ".join(f"{k}={candidates[k]}" for k in keys)
    where = (
        "in the provider's defaultTags, so every resource it manages carries them"
        if source == "provider"
        else "set on this resource"
    )
    settings = ", ".join(f"mlops:tags.{k}" for k in keys)
    message = (
        f"{subject(resource.type, resource.name)}: tag(s) {shown} hold the placeholder "
        f"{PLACEHOLDER} ({where}) in environment '{environment}'. Set {settings} in "
        f"{_stack_file(tags)} to real values (for a new stack, `mlops stack init --tag "
        f"KEY=VALUE` writes them){_sample_note(tags)}"
    )
    return [Finding(resource.urn, resource.name, message)]
