"""``mlops stack``: stack files for new accounts, from the dev, staging and prod presets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from mlops.commands.common import ProjectDirOption, console, fail

app = typer.Typer(
    help="Create stack files for new accounts from the dev, staging and prod presets.",
    no_args_is_help=True,
)


@app.command("init")
def stack_init(
    name: Annotated[
        str, typer.Option("--name", help="New stack, e.g. team-a-prod (names Pulumi.<name>.yaml).")
    ],
    account_id: Annotated[
        str, typer.Option("--account-id", help="12-digit AWS account the stack deploys to.")
    ],
    region: Annotated[str, typer.Option("--region", help="AWS region with SageMaker.")],
    profile: Annotated[
        str, typer.Option("--profile", help="Named AWS profile for this account (aws:profile).")
    ],
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            metavar="dev|staging|prod",
            help="Start from Pulumi.<preset>.yaml. Default: the name's suffix (team-a-prod: prod).",
        ),
    ] = None,
    service_name: Annotated[
        str | None, typer.Option("--service-name", help="mlops:serviceName (default: preset's).")
    ] = None,
    assume_role_arn: Annotated[
        str | None,
        typer.Option("--assume-role-arn", help="Role to assume; must be in --account-id."),
    ] = None,
    alert_emails: Annotated[
        list[str] | None,
        typer.Option(
            "--alert-email",
            metavar="ADDRESS",
            help="Where the stack's alarms go (mlops:monitoring.alarmEmails); repeat for more. "
            "Without it: the placeholder CHANGE-ME@example.com (a dev preset: none), which "
            "`mlops plan --policy` fails in prod.",
        ),
    ] = None,
    tags: Annotated[
        list[str] | None,
        typer.Option(
            "--tag",
            metavar="KEY=VALUE",
            help="A tag on every resource (mlops:tags); repeat for more. The preset's tag keys "
            "not given get the placeholder value CHANGE-ME, which `mlops plan --policy` fails "
            "in prod.",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing stack file.")] = False,
    skip_profile_check: Annotated[
        bool,
        typer.Option(
            "--skip-profile-check",
            help="Do not require --profile in ~/.aws/config or credentials (CI without profiles).",
        ),
    ] = False,
    project_dir: ProjectDirOption = None,
) -> None:
    """Write a validated Pulumi.<name>.yaml for a new account from a preset."""
    from infra.plan.project import ProjectError, find_project_dir
    from infra.stacks.init import (
        StackInitError,
        StackRequest,
        create_stack,
        parse_preset,
        parse_tags,
    )

    try:
        request = StackRequest(
            name=name,
            account_id=account_id,
            region=region,
            profile=profile,
            preset=parse_preset(preset) if preset is not None else None,
            service_name=service_name,
            assume_role_arn=assume_role_arn,
            alert_emails=tuple(alert_emails or ()),
            tags=parse_tags(tags or ()),
        )
        created = create_stack(
            find_project_dir(project_dir or Path.cwd()),
            request,
            force=force,
            profile_check=not skip_profile_check,
        )
    except (ProjectError, StackInitError) as exc:
        fail(str(exc))
    settings = created.settings
    console.print(
        Text(f"{'replaced' if created.replaced else 'wrote'} {created.path}", style="green")
        + Text(
            f" from the {created.preset.value} preset: account {settings.account_id}, "
            f"{settings.region}, profile {profile}"
        ),
        soft_wrap=True,
    )
    for placeholder in created.placeholders:
        console.print(
            Text("placeholder: ", style="bold yellow")
            + Text(
                f"{placeholder.setting} = {placeholder.value} ({placeholder.reason}); "
                f"pass {placeholder.option} or edit the file"
            ),
            soft_wrap=True,
        )
    if created.placeholders:
        outcome = (
            "fails until they are gone (guardrail no-placeholder-settings)"
            if settings.is_prod
            else "warns about them (placeholder-settings-warning); in prod they would fail it"
        )
        console.print(
            f"replace them before deploying: mlops plan --stack {name} --policy {outcome}",
            soft_wrap=True,
            markup=False,
        )
    console.print(
        f"next: mlops plan --stack {name} --policy, then pulumi stack select {name} --create "
        "and pulumi up (README: Deploy to a real account)",
        soft_wrap=True,
        markup=False,
    )
