"""What several command groups share: the consoles, the one-line failure, stack look-ups."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    from infra.aws_session import AwsTarget
    from infra.config.settings import Settings

console = Console()
errors = Console(stderr=True)

ProjectDirOption = Annotated[
    Path | None,
    typer.Option("--project-dir", help="Folder with Pulumi.yaml (default: search upwards)."),
]
EndpointUrlOption = Annotated[
    str | None,
    typer.Option(
        help="AWS endpoint for every client, e.g. a moto server (`mlops local up` prints "
        "one). Default: $AWS_ENDPOINT_URL, else AWS.",
    ),
]
ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile",
        help="AWS profile (default: the stack's aws:profile, as `pulumi up` uses it, then "
        "$AWS_PROFILE and the default credential chain).",
    ),
]
RegionOption = Annotated[
    str | None, typer.Option("--region", help="AWS region (default: the stack's aws:region).")
]


def fail(message: str) -> NoReturn:
    """Print ``error: MESSAGE`` on stderr and exit with code 1."""
    errors.print(Text("error: ", style="bold red") + Text(message), soft_wrap=True)
    raise typer.Exit(code=1)


def stack_settings(stack: str, project_dir: Path | None) -> Settings:
    """The stack's validated settings, read from its Pulumi.<stack>.yaml."""
    return _stack(stack, project_dir)[0]


def _stack(stack: str, project_dir: Path | None) -> tuple[Settings, dict[str, str]]:
    from infra.config.loader import ConfigError, settings_from_config
    from infra.plan.project import ProjectError, find_project_dir, load_stack_config

    try:
        config = load_stack_config(find_project_dir(project_dir or Path.cwd()), stack)
        settings = settings_from_config(config.values, project=config.project, stack=stack)
    except (ProjectError, ConfigError) as exc:
        fail(str(exc))
    return settings, config.values


def aws_target(
    stack: str,
    project_dir: Path | None,
    *,
    profile: str | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
) -> tuple[Settings, AwsTarget]:
    """The stack's settings, and where its AWS requests go: the flags, then the stack file
    (as `pulumi up` reads it), then botocore's own defaults."""
    from infra.aws_session import AwsTarget

    settings, values = _stack(stack, project_dir)
    target = AwsTarget.of(
        settings,
        profile=profile,
        region=region,
        endpoint_url=endpoint_url,
        stack_profile=values.get("aws:profile"),
    )
    return settings, target


@contextmanager
def aws_errors(target: AwsTarget) -> Iterator[None]:
    """Turn every botocore failure into one line: what to do for a local problem (no
    credentials, a missing profile, a bad region), else what AWS refused."""
    from botocore.exceptions import BotoCoreError, ClientError

    from infra.aws_session import credentials_problem, plain_error

    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        fail(credentials_problem(exc, target) or f"AWS refused the request: {plain_error(exc)}")
