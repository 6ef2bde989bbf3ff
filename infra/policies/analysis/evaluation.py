"""Decide one request against identity and resource policies, as IAM does within AWS's
evaluation logic (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html),
for what the kit uses: no SCPs, permission boundaries or session policies.

* An explicit Deny in any applicable policy wins.
* Same account: allowed if the identity policy allows, or the resource policy allows this
  principal by name (a grant to the account only delegates to IAM policies).
* Another account: both sides must allow (the resource side may name the account).
* A KMS key policy or a role trust policy must grant itself: directly, or by naming the
  account, which then lets IAM policies decide (``must_grant``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from infra.policies.analysis.conditions import (
    Context,
    UnsupportedPolicyError,
    conditions_hold,
    normalize_context,
)
from infra.policies.analysis.patterns import arn_matches, glob_matches, split_arn


class Decision(enum.Enum):
    ALLOWED = "allowed"
    IMPLICIT_DENY = "implicitly denied (no statement allows it)"
    EXPLICIT_DENY = "explicitly denied"


@dataclass(frozen=True)
class Request:
    # A role ARN, or a service principal such as "sagemaker.amazonaws.com".
    principal: str
    action: str
    # The resource's ARN; "*" for actions that take no resource.
    resource: str
    # Condition keys the request carries, e.g. {"aws:SecureTransport": "true"}.
    context: Mapping[str, str | Sequence[str]] = field(default_factory=dict)

    @property
    def principal_account(self) -> str | None:
        parts = split_arn(self.principal)
        return parts[4] if parts else None

    def __str__(self) -> str:
        return f"{self.principal} -> {self.action} on {self.resource}"


@dataclass(frozen=True)
class Policy:
    name: str
    document: Mapping[str, Any]


@dataclass(frozen=True)
class ResourcePolicy(Policy):
    account: str = ""
    must_grant: bool = False


@dataclass(frozen=True)
class Outcome:
    decision: Decision
    allowed_by: tuple[str, ...] = ()
    denied_by: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOWED


class _Reach(enum.IntEnum):
    """How a resource policy's Principal covers the requester."""

    NONE = 0
    ACCOUNT = 1  # the requester's account (root or ID): delegation to its IAM policies
    EXACT = 2  # the requester itself, its service, or everyone


def evaluate(
    request: Request,
    identity: Sequence[Policy] = (),
    resource: ResourcePolicy | None = None,
) -> Outcome:
    context = normalize_context({**_principal_keys(request), **request.context})
    identity_allows: list[str] = []
    resource_allows: list[tuple[str, _Reach]] = []
    denies: list[str] = []
    for policy in identity:
        for label, effect, _ in _applicable(policy, request, context, principal=False):
            if effect == "Allow":
                identity_allows.append(label)
            else:
                denies.append(label)
    if resource is not None:
        for label, effect, reach in _applicable(resource, request, context, principal=True):
            if effect == "Allow":
                resource_allows.append((label, reach))
            else:
                denies.append(label)
    if denies:
        return Outcome(Decision.EXPLICIT_DENY, denied_by=tuple(denies))

    by_name = [label for label, reach in resource_allows if reach is _Reach.EXACT]
    by_account = [label for label, reach in resource_allows if reach is _Reach.ACCOUNT]
    same_account = resource is None or request.principal_account in (None, resource.account)
    granted: list[str] = []
    if resource is None:
        granted = identity_allows
    elif not same_account:
        if (by_name or by_account) and identity_allows:
            granted = by_name + by_account + identity_allows
    elif resource.must_grant:
        if by_name:
            granted = by_name
        elif by_account and identity_allows:
            granted = by_account + identity_allows
    else:
        granted = identity_allows + by_name
    if not granted:
        return Outcome(Decision.IMPLICIT_DENY)
    return Outcome(Decision.ALLOWED, allowed_by=tuple(granted))


def _principal_keys(request: Request) -> dict[str, str]:
    """Global keys AWS puts in every request an IAM principal makes (IAM User Guide, "AWS
    global condition context keys": aws:PrincipalArn, aws:PrincipalAccount)."""
    account = request.principal_account
    if account is None:
        return {}
    return {"aws:PrincipalArn": request.principal, "aws:PrincipalAccount": account}


def _applicable(
    policy: Policy, request: Request, context: Context, *, principal: bool
) -> Iterator[tuple[str, str, _Reach]]:
    statements = policy.document.get("Statement", [])
    for index, statement in enumerate(statements if isinstance(statements, list) else [statements]):
        reach = _principal_reach(statement, request) if principal else _Reach.EXACT
        if reach is _Reach.NONE:
            continue
        if not _matches_action(statement, request.action):
            continue
        if not _matches_resource(statement, request.resource):
            continue
        if not conditions_hold(statement.get("Condition", {}), context):
            continue
        yield f"{policy.name}/{statement.get('Sid') or f'#{index}'}", statement["Effect"], reach


def _listed(value: Any) -> list[str]:
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def _action_matches(pattern: str, action: str) -> bool:
    if pattern == "*":
        return True
    service, _, name = pattern.partition(":")
    wanted_service, _, wanted_name = action.partition(":")
    return service.lower() == wanted_service.lower() and glob_matches(
        name, wanted_name, ignore_case=True
    )


def _matches_action(statement: Mapping[str, Any], action: str) -> bool:
    if "NotAction" in statement:
        return not any(_action_matches(p, action) for p in _listed(statement["NotAction"]))
    return any(_action_matches(p, action) for p in _listed(statement.get("Action", [])))


def _resource_matches(pattern: str, resource: str) -> bool:
    if "${" in pattern:
        raise UnsupportedPolicyError(f"policy variable in resource {pattern!r}")
    if pattern == "*" or resource == "*":
        return pattern == "*"
    return arn_matches(pattern, resource)


def _matches_resource(statement: Mapping[str, Any], resource: str) -> bool:
    if "NotResource" in statement:
        return not any(_resource_matches(p, resource) for p in _listed(statement["NotResource"]))
    if "Resource" not in statement:
        return True  # a trust policy: the role it is attached to
    return any(_resource_matches(p, resource) for p in _listed(statement["Resource"]))


def _principal_reach(statement: Mapping[str, Any], request: Request) -> _Reach:
    if "NotPrincipal" in statement:
        named = _reach(statement["NotPrincipal"], request)
        return _Reach.EXACT if named is _Reach.NONE else _Reach.NONE
    return _reach(statement.get("Principal"), request)


def _reach(principal: Any, request: Request) -> _Reach:
    if principal == "*":
        return _Reach.EXACT
    if not isinstance(principal, Mapping):
        return _Reach.NONE
    best = _Reach.NONE
    for kind, values in principal.items():
        for value in _listed(values):
            if value == "*" or value == request.principal:
                best = max(best, _Reach.EXACT)
            elif kind == "AWS" and _names_account(value, request.principal_account):
                best = max(best, _Reach.ACCOUNT)
    return best


def _names_account(principal: str, account: str | None) -> bool:
    """Whether an AWS principal is ``account`` as a whole: its ID or its root user's ARN."""
    if account is None:
        return False
    parts = split_arn(principal)
    return principal == account or (parts is not None and parts[4:] == [account, "root"])
