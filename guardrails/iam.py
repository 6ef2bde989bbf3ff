"""no-wildcard-iam-resources: "Resource": "*" only for actions IAM cannot scope."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from guardrails.model import Context, as_document, as_list, subject
from infra.policies import STAR_ONLY_ACTIONS

# Policy-bearing resource type -> where its documents sit in the inputs.
POLICY_FIELDS: dict[str, str] = {
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/policy:Policy": "policy",
    "aws:iam/userPolicy:UserPolicy": "policy",
    "aws:iam/groupPolicy:GroupPolicy": "policy",
}
ROLE = "aws:iam/role:Role"


def _documents(resource_type: str, props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw: list[Any] = []
    if resource_type in POLICY_FIELDS:
        raw.append(props.get(POLICY_FIELDS[resource_type]))
    elif resource_type == ROLE:
        # Inline policies declared on the role itself.
        raw += [
            p.get("policy") for p in as_list(props.get("inlinePolicies")) if isinstance(p, Mapping)
        ]
    return [d for d in (as_document(r) for r in raw) if d is not None]


def validate(resource_type: str, props: Mapping[str, Any], context: Context) -> list[str]:
    allowed = {action.lower() for action in STAR_ONLY_ACTIONS}
    messages: list[str] = []
    for document in _documents(resource_type, props):
        for index, statement in enumerate(as_list(document.get("Statement"))):
            if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
                continue
            if "*" not in as_list(statement.get("Resource")):
                continue
            actions = [str(a) for a in as_list(statement.get("Action"))]
            scoped = [a for a in actions if a.lower() not in allowed]
            if statement.get("NotAction"):
                # NotAction grants every other action, here on every resource.
                scoped.append("NotAction " + ", ".join(map(str, as_list(statement["NotAction"]))))
            if scoped:
                sid = statement.get("Sid") or f"#{index}"
                messages.append(
                    f"{subject(resource_type, context.name)}: statement {sid} allows "
                    f'{", ".join(scoped)} on "Resource": "*"; only '
                    f'{", ".join(sorted(STAR_ONLY_ACTIONS))} may use "*" '
                    "(infra.policies.STAR_ONLY_ACTIONS)"
                )
    return messages
