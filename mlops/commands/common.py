"""What several command groups share: the consoles, the one-line failure, stack look-ups."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    from infra.config.settings import Settings

console = Console()
errors = Console(stderr=True)

ProjectDirOption = Annotated[
    Path | None,
    typer.Option("--project-dir", help="Folder with Pulumi.yaml (default: search upwards)."),
]
EndpointUrlOption = Annotated[
    str | None, typer.Option(help="AWS endpoint for every client, e.g. a moto server.")
]


def fail(message: str) -> NoReturn:
    """Print ``error: MESSAGE`` on stderr and exit with code 1."""
    errors.print(Text("error: ", style="bold red") + Text(message), soft_wrap=True)
    raise typer.Exit(code=1)


def stack_settings(stack: str, project_dir: Path | None) -> Settings:
    """The stack's validated settings, read from its Pulumi.<stack>.yaml."""
    from infra.config.loader import ConfigError, settings_from_config
    from infra.plan.project import ProjectError, find_project_dir, load_stack_config

    try:
        config = load_stack_config(find_project_dir(project_dir or Path.cwd()), stack)
        return settings_from_config(config.values, project=config.project, stack=stack)
    except (ProjectError, ConfigError) as exc:
        fail(str(exc))
