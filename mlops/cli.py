"""The ``mlops`` command. Each subcommand is a thin wrapper over a package of the kit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.text import Text

app = typer.Typer(
    name="mlops",
    help="MLOps on AWS SageMaker with Pulumi: plan stacks offline, and more.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True)


@app.callback()
def _root() -> None:
    """Keeps `plan` a subcommand even while it is the only one."""


@app.command()
def plan(
    stack: Annotated[str, typer.Option("--stack", "-s", help="Stack name, e.g. dev.")],
    json_file: Annotated[
        Path | None,
        typer.Option("--json", help="Also write every resource's type, name, parent and inputs."),
    ] = None,
    project_dir: Annotated[
        Path | None,
        typer.Option("--project-dir", help="Folder with Pulumi.yaml (default: search upwards)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Skip the tree.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Show what `pulumi up` would create for STACK, without AWS or the Pulumi CLI."""
    from infra.config.loader import ConfigError
    from infra.plan.project import ProjectError
    from infra.plan.render import to_json, to_rich
    from infra.plan.runner import PlanError, plan_stack

    try:
        result = plan_stack(stack, project_dir=project_dir)
    except (ProjectError, ConfigError, PlanError) as exc:
        _fail(str(exc))
    except Exception as exc:  # the program's own failure: report it, not our stack frames
        if debug:
            raise
        _fail(f"the Pulumi program failed: {type(exc).__name__}: {exc} (rerun with --debug)")

    if not quiet:
        console.print(to_rich(result))
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(to_json(result), encoding="utf-8")
        console.print(f"wrote {len(result.resources)} resources to {json_file}")


def _fail(message: str) -> NoReturn:
    errors.print(Text("error: ", style="bold red") + Text(message), soft_wrap=True)
    raise typer.Exit(code=1)


if __name__ == "__main__":
    app()
