"""Run the real Pulumi program under Pulumi's mocks and collect what it would create.

No Pulumi CLI and no AWS are involved: the stack file is read here, handed to the program
as engine config, and every resource registration is recorded by the mock monitor.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import set_all_config, set_mocks
from pulumi.runtime.settings import get_root_resource
from pulumi.runtime.stack import run_pulumi_func

from infra.aws_session import offline_process_environment
from infra.plan.mocks import PLAN_ACCOUNT_ID, AwsMocks, RecordedResource, RecordingMonitor
from infra.plan.project import StackConfig
from infra.plan.references import UnresolvedReferenceError, predicted_outputs

Program = Callable[[], None]


class PlanError(Exception):
    """The program failed while being planned; the message is the program's own error."""


@dataclass(frozen=True)
class Plan:
    project: str
    stack: str
    resources: tuple[RecordedResource, ...]
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_token: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_token]

    def get(self, type_token: str, name: str) -> RecordedResource:
        for resource in self.resources:
            if resource.type == type_token and resource.name == name:
                return resource
        known = sorted(r.name for r in self.of_type(type_token))
        raise KeyError(f"no {type_token} named {name!r}; declared: {known}")

    def by_urn(self, urn: str) -> RecordedResource:
        for resource in self.resources:
            if resource.urn == urn:
                return resource
        raise KeyError(urn)

    def children_of(self, parent_urn: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.parent == parent_urn]


def default_program() -> None:
    from infra.program import main

    main()


def plan_config(
    config: StackConfig, *, program: Program | None = None, caller_account: str | None = None
) -> Plan:
    """Plan ``config``. The mocked caller is in the stack's own account (mlops:accountId,
    else a placeholder) unless ``caller_account`` says otherwise."""
    # A fresh context per plan: Pulumi keeps its root stack and settings in context
    # variables, so plans of several stacks in one process never see each other.
    account = caller_account or config.values.get("mlops:accountId") or PLAN_ACCOUNT_ID
    # Nothing the program imports may read the user's AWS setup (the SageMaker SDK builds
    # a session on import): a plan is the same whatever AWS_PROFILE says.
    with offline_process_environment(config.values.get("aws:region", "us-east-1")):
        return contextvars.Context().run(
            _plan_in_context, config, program or default_program, account
        )


def _check_references(config: StackConfig) -> None:
    """Resolve the stack references the kit's config declares before the program runs:
    an error raised inside the mocks would strand the program's pending outputs."""
    raw = config.values.get("mlops:sharedRegistry")
    if not raw:
        return
    try:
        reference = json.loads(raw).get("stack")
    except (ValueError, AttributeError):
        return  # the program's own validation reports malformed config
    if isinstance(reference, str):
        predicted_outputs(config.path.parent, reference, PLAN_ACCOUNT_ID)


def _plan_in_context(config: StackConfig, program: Program, account: str) -> Plan:
    try:
        _check_references(config)
    except UnresolvedReferenceError as exc:
        raise PlanError(str(exc)) from None
    # Pulumi binds futures to the thread's event loop; own one per plan and close it after.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    region = config.values.get("aws:region", "us-east-1")
    mocks = AwsMocks(
        region=region,
        account_id=account,
        stack_outputs=lambda name: predicted_outputs(config.path.parent, name, PLAN_ACCOUNT_ID),
    )
    monitor = RecordingMonitor(mocks)
    _avoid_sagemaker_side_effects()
    set_mocks(mocks, project=config.project, stack=config.stack, preview=True, monitor=monitor)
    set_all_config(dict(config.values), list(config.secret_keys))

    outputs: dict[str, Any] = {}

    async def run_program() -> None:
        program()
        # Under mocks the root stack registered its (empty) outputs before the program ran;
        # read the exports straight from it instead.
        root = get_root_resource()
        exported = getattr(root, "outputs", {})
        resolved = await pulumi.Output.from_input(exported).future()
        outputs.update(resolved or {})

    try:
        loop.run_until_complete(run_pulumi_func(run_program))
    except pulumi.RunError as exc:
        raise PlanError(str(exc)) from exc
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        asyncio.set_event_loop(None)
        loop.close()

    resources = tuple(sorted(monitor.recorded, key=lambda r: r.urn))
    return Plan(config.project, config.stack, resources, _plain_outputs(outputs))


def _plain_outputs(outputs: dict[str, Any]) -> dict[str, Any]:
    return {key: outputs[key] for key in sorted(outputs)}


def _avoid_sagemaker_side_effects() -> None:
    # The SageMaker SDK validates roles against IAM when it builds definitions; a plan must
    # not call AWS. Set before any sagemaker import, without overriding an explicit choice.
    os.environ.setdefault("SAGEMAKER_VALIDATE_ROLE", "false")
