"""Every action, resource ARN and condition key of a policy document, against AWS's reference.

What is checked, per statement (each failure is a ``Finding`` naming the policy, the Sid and
the offending name):

* each action exists (a wildcard must name at least one);
* each resource ARN has the format of a resource type one of the actions accepts, and each
  action accepts at least one of the resources; in identity policies ``"*"`` is allowed only
  for actions that support no resource type at all (least privilege), in resource policies
  only in a key policy (where it means the key);
* each condition operator is a real one, each key exists (global keys: AWS's list; service
  keys: listed for *every* action of the statement, since a key absent from a request makes
  the condition false and so silently drops that action), and the operator fits the key's
  type (String operators may test ARN keys, Arn operators String keys holding ARNs, as
  AWS's own examples do).

Principals are not checked: they are not actions.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from infra.policies.analysis.condition_keys import (
    GLOBAL_CONDITION_KEYS,
    KeyType,
    global_key_type,
)
from infra.policies.analysis.operators import Operator, UnknownOperatorError
from infra.policies.analysis.patterns import split_arn
from infra.policies.analysis.reference import Action, ServiceReference


class PolicyKind(enum.Enum):
    IDENTITY = "identity policy"  # attached to a role: Resource, no Principal
    TRUST = "trust policy"  # a role's assume-role policy: Principal, no Resource
    RESOURCE = "resource policy"  # on a bucket, key, topic...: Principal and Resource
    # On a VPC endpoint: Principal and Resource, but it filters requests to many resources
    # rather than naming its own, so "*" is for actions with no resource type, as in IAM.
    ENDPOINT = "VPC endpoint policy"


@dataclass(frozen=True)
class Finding:
    policy: str
    sid: str
    problem: str

    def __str__(self) -> str:
        return f"{self.policy}, statement {self.sid}: {self.problem}"


@dataclass(frozen=True)
class Tally:
    """How much was checked: documents, statements, and each name in them."""

    documents: int = 0
    statements: int = 0
    actions: int = 0
    resources: int = 0
    condition_keys: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.documents + other.documents,
            self.statements + other.statements,
            self.actions + other.actions,
            self.resources + other.resources,
            self.condition_keys + other.condition_keys,
        )


@dataclass(frozen=True)
class Checked:
    findings: tuple[Finding, ...]
    tally: Tally


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def check_document(
    document: Mapping[str, Any],
    *,
    policy: str,
    kind: PolicyKind,
    reference: ServiceReference | None = None,
) -> Checked:
    """``policy`` names the document in findings (e.g. the resource that carries it)."""
    reference = reference or ServiceReference.bundled()
    findings: list[Finding] = []
    tally = Tally(documents=1)
    statements = as_list(document.get("Statement"))
    if document.get("Version") != "2012-10-17":
        findings.append(Finding(policy, "-", 'Version must be "2012-10-17"'))
    sids = [str(s["Sid"]) for s in statements if isinstance(s, Mapping) and s.get("Sid")]
    for duplicate in sorted({s for s in sids if sids.count(s) > 1}):
        findings.append(Finding(policy, duplicate, "Sid is not unique in the document"))
    for index, statement in enumerate(statements):
        checker = _StatementChecker(reference, policy, kind, statement, index)
        findings += checker.check()
        tally += checker.tally
    return Checked(tuple(findings), tally)


@dataclass
class _StatementChecker:
    reference: ServiceReference
    policy: str
    kind: PolicyKind
    statement: Mapping[str, Any]
    index: int
    findings: list[Finding] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)

    @property
    def sid(self) -> str:
        return str(self.statement.get("Sid") or f"#{self.index}")

    def fail(self, problem: str) -> None:
        self.findings.append(Finding(self.policy, self.sid, problem))

    def check(self) -> list[Finding]:
        statement = self.statement
        if statement.get("Effect") not in ("Allow", "Deny"):
            self.fail(f"Effect must be Allow or Deny, not {statement.get('Effect')!r}")
        self._check_elements()
        patterns = [str(a) for a in as_list(statement.get("Action") or statement.get("NotAction"))]
        actions = self._check_actions(patterns)
        if "Resource" in statement and "Action" in statement:
            self._check_resources(
                patterns, actions, [str(r) for r in as_list(statement["Resource"])]
            )
        if "Action" in statement:
            self._check_conditions(patterns, actions)
        else:
            # NotAction covers every other action: only the keys themselves can be checked.
            self._check_conditions([], {})
        self.tally = Tally(
            statements=1,
            actions=len(patterns),
            resources=len(as_list(statement.get("Resource") or statement.get("NotResource"))),
            condition_keys=sum(len(block) for block in (statement.get("Condition") or {}).values()),
        )
        return self.findings

    def _check_elements(self) -> None:
        present = set(self.statement)
        if len(present & {"Action", "NotAction"}) != 1:
            self.fail("needs exactly one of Action and NotAction")
        has_principal = bool(present & {"Principal", "NotPrincipal"})
        has_resource = bool(present & {"Resource", "NotResource"})
        wanted_principal = self.kind is not PolicyKind.IDENTITY
        wanted_resource = self.kind is not PolicyKind.TRUST
        if has_principal != wanted_principal:
            self.fail(
                f"a {self.kind.value} {'needs' if wanted_principal else 'takes no'} Principal"
            )
        if has_resource != wanted_resource:
            self.fail(f"a {self.kind.value} {'needs' if wanted_resource else 'takes no'} Resource")

    def _check_actions(self, patterns: Sequence[str]) -> dict[str, list[Action]]:
        expanded: dict[str, list[Action]] = {}
        for pattern in patterns:
            if pattern == "*":
                self.fail('Action "*" names every action of every service')
                continue
            service = pattern.partition(":")[0]
            found = self.reference.actions(pattern)
            if not self.reference.knows_service(service):
                self.fail(f"action {pattern}: no service {service!r} in the reference")
            elif not found:
                self.fail(f"action {pattern} is not in the Service Authorization Reference")
            expanded[pattern] = found
        return expanded

    def _check_resources(
        self, patterns: Sequence[str], actions: Mapping[str, list[Action]], resources: list[str]
    ) -> None:
        everything = [a for found in actions.values() for a in found]
        if not everything:
            return
        if "*" in resources:
            least_privilege = self.kind in (PolicyKind.IDENTITY, PolicyKind.ENDPOINT)
            if least_privilege and self.statement.get("Effect") == "Allow":
                scoped = [a.qualified for a in everything if a.resource_types]
                if scoped:
                    self.fail(
                        f'grants {", ".join(sorted(scoped))} on "*", but '
                        f"{'it supports' if len(scoped) == 1 else 'they support'} resource "
                        "types: name the resources (least privilege)"
                    )
            elif self.kind is PolicyKind.RESOURCE and any(a.service != "kms" for a in everything):
                # Only a key policy's "*" means "this resource"; elsewhere name it.
                self.fail(
                    'a resource policy names its resource; "*" only means the key in a key policy'
                )
            resources = [r for r in resources if r != "*"]
        for resource in resources:
            if split_arn(resource) is None:
                self.fail(f"resource {resource} is not an ARN")
            elif not any(self._accepts(action, resource) for action in everything):
                self.fail(
                    f"resource {resource} has the format of no resource type that "
                    f"{', '.join(patterns)} accept"
                )
        for pattern in patterns:
            found = actions.get(pattern, [])
            usable = [a for a in found if not a.resource_types] or [
                a for a in found if any(self._accepts(a, r) for r in resources)
            ]
            if found and resources and not usable:
                types = sorted({t for a in found for t in a.resource_types})
                self.fail(
                    f"action {pattern} applies to none of the statement's resources; it "
                    f"takes {', '.join(types)}"
                )

    def _accepts(self, action: Action, resource: str) -> bool:
        types = self.reference.resource_types_of(action)
        matching = [t for t in types if t.matches(resource)]
        if not matching:
            return False
        # The ARN names the most specific type it fits; the action must take that one.
        service_types = [
            self.reference.resource_type(action.service, name)
            for name in self.reference.resource_type_names(action.service)
        ]
        best = max(t.specificity for t in service_types if t.matches(resource))
        return any(t.specificity == best for t in matching)

    def _check_conditions(
        self, patterns: Sequence[str], actions: Mapping[str, list[Action]]
    ) -> None:
        condition = self.statement.get("Condition") or {}
        if not isinstance(condition, Mapping):
            self.fail("Condition must be an object")
            return
        for operator_name, block in condition.items():
            try:
                operator = Operator.parse(operator_name)
            except UnknownOperatorError as error:
                self.fail(str(error))
                continue
            for key, values in (block or {}).items():
                key_type = self._key_type(key, patterns, actions)
                if key_type is not None:
                    self._check_operator(operator, key, key_type, as_list(values))

    def _key_type(
        self, key: str, patterns: Sequence[str], actions: Mapping[str, list[Action]]
    ) -> KeyType | None:
        if key.lower().startswith("aws:"):
            found = global_key_type(key)
            if found is None:
                self.fail(
                    f"condition key {key} is not an AWS global condition key"
                    + _suggestion(key, list(GLOBAL_CONDITION_KEYS))
                )
            return found
        for pattern in patterns:
            found_actions = actions.get(pattern, [])
            supporting = [a for a in found_actions if a.condition_key(key)]
            # A wildcard keeps the actions that support the key; a named action must.
            if found_actions and not supporting:
                self.fail(
                    f"condition key {key} is not in the Service Authorization Reference "
                    f"for {pattern}"
                    + _suggestion(key, [k for a in found_actions for k in a.condition_keys])
                )
                return None
        key_type = self.reference.key_type(key)
        if key_type is None:
            self.fail(
                f"condition key {key} has no type in the reference"
                + _suggestion(key, list(self.reference.known_keys(key.partition(":")[0])))
            )
        return key_type

    def _check_operator(
        self, operator: Operator, key: str, key_type: KeyType, values: list[Any]
    ) -> None:
        if operator.family == "Null":
            if any(str(v).lower() not in ("true", "false") for v in values):
                self.fail(f"Null on {key} takes true or false, not {values}")
            return
        fits = operator.family == key_type.base or {operator.family, key_type.base} == {
            "String",
            "ARN",
        }
        if operator.family == "ARN" and key_type.base == "String":
            fits = all(split_arn(str(v)) is not None for v in values)
        if key.lower() == "aws:epochtime" and operator.family == "Numeric":
            fits = True  # AWS documents it with date and numeric operators
        if not fits:
            self.fail(
                f"{operator.name} does not fit {key}, a {key_type.base} key; use a "
                f"{key_type.base} operator"
            )
        if operator.family == "Bool" and any(
            str(v).lower() not in ("true", "false") for v in values
        ):
            self.fail(f"{operator.name} on {key} takes true or false, not {values}")
        if operator.set_operator and not key_type.multivalued:
            self.fail(f"{operator.name}: {key} is single-valued; drop {operator.set_operator}")
        if key_type.multivalued and not operator.set_operator:
            self.fail(
                f"{operator.name}: {key} is multivalued; qualify it with ForAnyValue/ForAllValues"
            )


def _suggestion(key: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(dict.fromkeys(candidates)), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""
