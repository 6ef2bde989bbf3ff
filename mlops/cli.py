"""The ``mlops`` command: the root and its command groups (``mlops.commands``, one module each).

Each subcommand is a thin wrapper over a package of the kit.
"""

from __future__ import annotations

import typer

from mlops.commands import demo, drift, pipeline, plan, release, serving, stacks, training

app = typer.Typer(
    name="mlops",
    help="MLOps on AWS SageMaker with Pulumi: plan stacks offline, train and serve locally, "
    "run the deployed pipelines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Plan stacks, train and serve locally, and run the stack's pipelines."""


# `mlops --help` lists commands in this order, then the groups.
app.command()(plan.plan)
app.command()(training.train)
app.command()(serving.serve)
app.command()(release.promote)
app.command()(release.rollback)
app.command("verify-endpoint")(release.verify_endpoint)
app.command("drift")(drift.drift_command)
app.command()(demo.demo)
app.add_typer(pipeline.app, name="pipeline")
app.add_typer(stacks.app, name="stack")


if __name__ == "__main__":
    app()
