"""``mlops pipeline``: start and follow the stack's deployed SageMaker pipelines."""

from __future__ import annotations

from typing import Annotated

import typer

from mlops.commands.common import (
    EndpointUrlOption,
    ProfileOption,
    ProjectDirOption,
    RegionOption,
    aws_errors,
    aws_target,
    console,
    fail,
)

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
    profile: ProfileOption = None,
    region: RegionOption = None,
    endpoint_url: EndpointUrlOption = None,
    project_dir: ProjectDirOption = None,
) -> None:
    """Start STACK's training pipeline now; with --wait, report each step until it ends.

    Requests use the stack's account settings (region, aws:profile, assumeRoleArn).
    """
    from infra.aws_session import stack_session
    from infra.naming import Naming
    from pipelines.runner import PipelineRunError, PipelineRunner, parse_parameters

    settings, aws = aws_target(
        stack, project_dir, profile=profile, region=region, endpoint_url=endpoint_url
    )
    naming = Naming(prefix=settings.prefix, region=aws.region, partition=settings.partition)
    with aws_errors(aws):
        client = stack_session(aws).client("sagemaker", endpoint_url=aws.endpoint_url)
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
    if not result.succeeded:
        fail(f"{naming.training_pipeline} {result.status.lower()}: {result.failure_reason}")
    console.print(f"[green]{naming.training_pipeline} succeeded[/]")
