"""An IAM role for one AWS service, with one inline policy per concern."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, fields
from typing import Any, TypeVar

import pulumi
import pulumi_aws as aws

from infra.policies import Document


@dataclass(frozen=True)
class ServiceRoleArgs:
    role_name: str
    description: str
    trust_policy: pulumi.Input[str]
    # Inline policy name -> document. The names are static so every policy is declared at
    # the top level (and shows in a preview); only the documents wait on ARNs.
    policy_names: Sequence[str]
    policies: pulumi.Output[dict[str, Document]]


Scope = TypeVar("Scope")


def policy_names(
    build: Callable[[Scope], dict[str, Document]], scope_type: type[Scope], **known: Any
) -> tuple[str, ...]:
    """The names ``build`` gives its policies, known before any Output resolves.

    Builders are pure functions of a frozen dataclass scope, so calling one on a scope of
    placeholders names every policy, and each can be declared (and previewed) up front.
    Optional fields keep their defaults unless ``known`` gives them a stand-in: whether a
    stack has a VPC is known before its subnet IDs are, and decides the "network" policy.
    """
    dataclass_type: Any = scope_type
    required = {
        f.name: "placeholder"
        for f in fields(dataclass_type)
        if f.default is MISSING and f.default_factory is MISSING
    }
    return tuple(build(dataclass_type(**required, **known)))


class ServiceRole(pulumi.ComponentResource):
    role: aws.iam.Role
    arn: pulumi.Output[str]
    name: pulumi.Output[str]

    def __init__(
        self, name: str, args: ServiceRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlopskit:iam:ServiceRole", name, None, opts)
        self.role = aws.iam.Role(
            name,
            name=args.role_name,
            description=args.description,
            assume_role_policy=args.trust_policy,
            # The inline policies below are the whole grant; nothing attached out of band
            # may survive a destroy.
            force_detach_policies=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.policies = [
            aws.iam.RolePolicy(
                f"{name}-{policy_name}",
                role=self.role.id,
                name=policy_name,
                policy=args.policies.apply(_as_json(policy_name)),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for policy_name in args.policy_names
        ]
        self.arn = self.role.arn
        self.name = self.role.name
        self.register_outputs({"arn": self.role.arn, "name": self.role.name})


def _as_json(policy_name: str) -> Callable[[dict[str, Document]], str]:
    return lambda documents: json.dumps(documents[policy_name])
