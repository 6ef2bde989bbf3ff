"""``mlops promote``, ``rollback`` and ``verify-endpoint``: which model a stack serves.

Promotion and rollback gate a model version, record the decision in the model registry and
edit the target's stack file; ``verify-endpoint`` checks the endpoint after `pulumi up`.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from mlops.commands.common import (
    EndpointUrlOption,
    ProfileOption,
    ProjectDirOption,
    RegionOption,
    aws_errors,
    aws_target,
    console,
    errors,
    fail,
)
from promotion.lock import DEFAULT_WAIT_SECONDS, Wait

if TYPE_CHECKING:
    from collections.abc import Callable

    from infra.aws_session import AwsTarget
    from promotion.aws import Clients
    from promotion.flow import Outcome
    from promotion.stack_file import StackFile


def _not_blank(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise typer.BadParameter("must not be empty")
    return value.strip() if value is not None else None


ApproverOption = Annotated[
    str | None,
    typer.Option(
        "--approver",
        envvar="GITHUB_ACTOR",
        callback=_not_blank,
        help="Who decides (recorded in the registry). Default: $GITHUB_ACTOR in CI, else "
        "the caller's AWS identity (its STS ARN).",
    ),
]
ReasonOption = Annotated[
    str, typer.Option("--reason", help="Why (recorded in the registry).", callback=_not_blank)
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Check the gates only; change nothing.")
]
LockTimeoutOption = Annotated[
    float,
    typer.Option(
        "--lock-timeout",
        min=0,
        help="Seconds to wait while another promotion or rollback of the same stack file "
        "runs on this machine; 0 fails at once.",
    ),
]


def promote(
    to: Annotated[str, typer.Option("--to", help="Stack that will serve the model.")],
    reason: ReasonOption,
    approver: ApproverOption = None,
    from_: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Stack whose served model to promote. Without it: the newest approved "
            "version in --to's own registry.",
        ),
    ] = None,
    dry_run: DryRunOption = False,
    lock_timeout: LockTimeoutOption = DEFAULT_WAIT_SECONDS,
    profile: ProfileOption = None,
    region: RegionOption = None,
    endpoint_url: EndpointUrlOption = None,
    project_dir: ProjectDirOption = None,
) -> None:
    """Gate a model, record the decision in the registry, and write --to's stack file.

    AWS requests use --to's account settings (region, aws:profile, assumeRoleArn).
    """
    from promotion.flow import Decision
    from promotion.flow import promote as run_promotion

    target, source = (
        _stack_file(to, project_dir),
        (_stack_file(from_, project_dir) if from_ else None),
    )
    outcome = _run_release(
        lambda clients, approver: run_promotion(
            clients,
            target=target,
            source=source,
            decision=Decision(approver=approver, reason=reason),
            dry_run=dry_run,
            wait=_wait(lock_timeout),
        ),
        approver,
        aws_target(to, project_dir, profile=profile, region=region, endpoint_url=endpoint_url)[1],
    )
    if not outcome.changed and not dry_run:
        console.print(f"{to} already serves {outcome.package.arn}; nothing changed")
    elif not dry_run:
        console.print(f"[green]{to} will serve {outcome.package.arn}[/] after `pulumi up`")


def rollback(
    stack: Annotated[str, typer.Option("--stack", "-s", help="Stack to roll back.")],
    reason: ReasonOption,
    approver: ApproverOption = None,
    dry_run: DryRunOption = False,
    lock_timeout: LockTimeoutOption = DEFAULT_WAIT_SECONDS,
    profile: ProfileOption = None,
    region: RegionOption = None,
    endpoint_url: EndpointUrlOption = None,
    project_dir: ProjectDirOption = None,
) -> None:
    """Serve the approved version before the current one; reject the current one."""
    from promotion.flow import Decision
    from promotion.flow import rollback as run_rollback

    target = _stack_file(stack, project_dir)
    outcome = _run_release(
        lambda clients, approver: run_rollback(
            clients,
            target=target,
            decision=Decision(approver=approver, reason=reason),
            dry_run=dry_run,
            wait=_wait(lock_timeout),
        ),
        approver,
        aws_target(stack, project_dir, profile=profile, region=region, endpoint_url=endpoint_url)[
            1
        ],
    )
    if not dry_run:
        console.print(f"[green]{stack} will serve {outcome.package.arn}[/] after `pulumi up`")


def verify_endpoint(
    stack: Annotated[str, typer.Option("--stack", "-s", help="Stack name, e.g. prod.")],
    expected_config: Annotated[
        str,
        typer.Option(
            "--expected-config",
            help="The endpointConfigName output of `pulumi up` (empty when the stack serves "
            "no model yet).",
        ),
    ],
    profile: ProfileOption = None,
    region: RegionOption = None,
    endpoint_url: EndpointUrlOption = None,
    project_dir: ProjectDirOption = None,
) -> None:
    """Fail unless STACK's endpoint is InService on the configuration Pulumi deployed."""
    from promotion.endpoint import EndpointCheckError, verify

    settings, aws = aws_target(
        stack, project_dir, profile=profile, region=region, endpoint_url=endpoint_url
    )
    if settings.serving.model is None:
        # A first deployment, before any model is registered, declares no endpoint.
        console.print(f"{stack} serves no model (mlops:serving.model is unset): no endpoint")
        return
    if not expected_config.strip():
        fail(f"{stack} serves a model, so --expected-config must name its configuration")
    with aws_errors(aws):
        clients = _clients(aws)
        try:
            console.print(verify(clients.sagemaker, clients.cloudwatch, settings, expected_config))
        except EndpointCheckError as exc:
            fail(str(exc))


def _stack_file(stack: str, project_dir: Path | None) -> StackFile:
    from infra.plan.project import ProjectError, find_project_dir
    from promotion.stack_file import StackFile, StackFileError

    try:
        stack_file = StackFile(find_project_dir(project_dir or Path.cwd()), stack)
        stack_file.settings()
    except (ProjectError, StackFileError) as exc:
        fail(str(exc))
    return stack_file


def _clients(aws: AwsTarget) -> Clients:
    from infra.aws_session import stack_session
    from promotion.aws import Clients

    return Clients.create(aws.region, aws.endpoint_url, stack_session(aws))


def _run_release(
    action: Callable[[Clients, str], Outcome], approver: str | None, aws: AwsTarget
) -> Outcome:
    """Run a promotion or rollback, print its gates, and turn every refusal into one line."""
    from promotion.flow import PromotionError
    from promotion.gates import describe
    from promotion.stack_file import StackFileError

    with aws_errors(aws):
        clients = _clients(aws)
        # In CI --approver comes from $GITHUB_ACTOR; elsewhere the caller's own identity.
        who = approver or str(clients.sts.get_caller_identity()["Arn"])
        try:
            with _sigterm_as_exit():
                outcome = action(clients, who)
        except PromotionError as exc:
            if exc.report is not None:
                for line in describe(exc.report.results):
                    errors.print(f"  {line}", soft_wrap=True, markup=False)
            fail(str(exc))
        except StackFileError as exc:
            fail(str(exc))
    if outcome.report is not None:
        for line in describe(outcome.report.results):
            console.print(f"  {line}", soft_wrap=True, markup=False)
    for note in outcome.notes:
        console.print(f"  {note}", soft_wrap=True, markup=False)
    return outcome


def _wait(seconds: float) -> Wait:
    return Wait(seconds, lambda text: errors.print(text, soft_wrap=True, markup=False))


@contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """Turn SIGTERM (`kill`, a cancelled CI job) into SystemExit, so the atomic write's
    `finally` removes its temporary file; SIGKILL leaves it to the next run's sweep."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; tests call from others
        return
    previous = signal.signal(signal.SIGTERM, _exit_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit_terminated(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # the shell's code for "killed by this signal"
