"""The ``mlops`` command: the root and its command groups (``mlops.commands``, one module each).

Each subcommand is a thin wrapper over a package of the kit.
"""

from __future__ import annotations

from importlib import metadata
from typing import Annotated, Any

import typer
from typer.core import TyperOption

from mlops.commands import (
    attribution,
    batch,
    demo,
    drift,
    label,
    local,
    pipeline,
    plan,
    quality,
    release,
    serving,
    stacks,
    training,
)

DISTRIBUTION = "mlops-kit"


def _untyped_flags() -> None:
    """Show no value type next to flags (``--local``, ``--help``) in the Rich help.

    Typer 0.29 (which vendors its own click) prints the second column of the Rich options
    panel from ``TyperOption.display_type_rich`` for every option, flags included, so each
    flag read ``--local <bool>`` as if it took a value; typer 0.27 left out bool types
    there, and typer's own plain help still skips flags and counters (``get_help_record``).
    Flags and counters take no value, so they get no type; options with values keep theirs
    (``<path>``, ``<int>``, or their metavar). Idempotent: importing this module twice, or
    a typer that already fixed it, changes nothing else.
    """
    original = TyperOption.display_type_rich
    if getattr(original, "_mlops_untyped_flags", False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        return original(self, ctx)

    display_type_rich._mlops_untyped_flags = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_untyped_flags()


def installed_version() -> str:
    """The installed mlops-kit distribution's version (what pip and the wheel recorded)."""
    return metadata.version(DISTRIBUTION)


def _print_version(value: bool) -> None:
    if not value:
        return
    try:
        version = installed_version()
    except metadata.PackageNotFoundError:
        typer.echo(
            f"error: the {DISTRIBUTION} package is not installed, so it has no version; "
            "install it with `pip install -e .` (make does) and run .venv/bin/mlops",
            err=True,
        )
        raise typer.Exit(code=1) from None
    typer.echo(f"{DISTRIBUTION} {version}")
    raise typer.Exit()


app = typer.Typer(
    name="mlops",
    help="MLOps on AWS SageMaker with Pulumi: plan stacks offline, train and serve locally, "
    "run the deployed pipelines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help=f"Print the installed {DISTRIBUTION} version and exit.",
        ),
    ] = False,
) -> None:
    """Plan stacks, train and serve locally, and run the stack's pipelines."""


# `mlops --help` lists commands in this order, then the groups.
app.command()(plan.plan)
app.command()(training.train)
app.command()(serving.serve)
app.command()(release.promote)
app.command()(release.rollback)
app.command("verify-endpoint")(release.verify_endpoint)
app.command("drift")(drift.drift_command)
app.command("quality")(quality.quality_command)
app.command("attribution")(attribution.attribution_command)
app.command("label")(label.label_command)
app.command("batch")(batch.batch_command)
app.command()(demo.demo)
app.add_typer(pipeline.app, name="pipeline")
app.add_typer(stacks.app, name="stack")
app.add_typer(local.app, name="local")


if __name__ == "__main__":
    app()
