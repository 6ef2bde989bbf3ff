"""``mlops pipeline``: start and follow the stack's deployed SageMaker pipelines."""

from __future__ import annotations

from typing import Annotated

import typer

from mlops.commands.common import ProjectDirOption, console, fail, stack_settings

app = typer.Typer(help="Start and follow the stack's SageMaker pipelines.", no_args_is_help=True)


@app.command("run")
def pipeline_run(
    stack: Annotated[str, typer.Option("--stack", "-s", help="Stack name, e.g. dev.")],
    params: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Pipeline parameter as Name=value (repeatable)."),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Follow the steps until the run ends.")
    ] = False,
    poll_seconds: Annotated[
        float, typer.Option(min=0.1, help="Seconds between status checks while waiting.")
    ] = 15.0,
    endpoint_url: Annotated[
        str | None,
        typer.Option(help="SageMaker endpoint, e.g. a moto server (default: AWS).", envvar=None),
    ] = None,
    project_dir: ProjectDirOption = None,
) -> None:
    """Start STACK's training pipeline now; with --wait, report each step until it ends."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from infra.naming import Naming
    from pipelines.runner import PipelineRunError, PipelineRunner, parse_parameters

    settings = stack_settings(stack, project_dir)
    naming = Naming(prefix=settings.prefix, region=settings.region, partition=settings.partition)
    client = boto3.client("sagemaker", region_name=settings.region, endpoint_url=endpoint_url)
    runner = PipelineRunner(client, naming.training_pipeline, poll_seconds=poll_seconds)
    try:
        arn = runner.start(parse_parameters(params or []))
        console.print(f"started {naming.training_pipeline}: {arn}", soft_wrap=True)
        if not wait:
            return
        with console.status(f"following {naming.training_pipeline}"):
            result = runner.follow(
                arn, on_event=lambda line: console.print(f"  {line}", soft_wrap=True)
            )
    except PipelineRunError as exc:
        fail(str(exc))
    except (ClientError, BotoCoreError) as exc:
        fail(f"AWS refused the request: {exc}")
    if not result.succeeded:
        fail(f"{naming.training_pipeline} {result.status.lower()}: {result.failure_reason}")
    console.print(f"[green]{naming.training_pipeline} succeeded[/]")
