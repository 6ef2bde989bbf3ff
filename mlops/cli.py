"""The ``mlops`` command. Each subcommand is a thin wrapper over a package of the kit."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    from collections.abc import Callable

    from infra.config.settings import Settings
    from promotion.aws import Clients
    from promotion.flow import Outcome
    from promotion.stack_file import StackFile

app = typer.Typer(
    name="mlops",
    help="MLOps on AWS SageMaker with Pulumi: plan stacks offline, train and serve locally, "
    "run the deployed pipelines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
pipeline_app = typer.Typer(
    help="Start and follow the stack's SageMaker pipelines.", no_args_is_help=True
)
app.add_typer(pipeline_app, name="pipeline")
stack_app = typer.Typer(
    help="Create stack files for new accounts from the dev, staging and prod presets.",
    no_args_is_help=True,
)
app.add_typer(stack_app, name="stack")
console = Console()
errors = Console(stderr=True)


@app.callback()
def _root() -> None:
    """Plan stacks, train and serve locally, and run the stack's pipelines."""


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
    policy: Annotated[
        bool,
        typer.Option("--policy", help="Check the guardrails; exit 1 on a mandatory violation."),
    ] = False,
    policy_config: Annotated[
        Path | None,
        typer.Option(
            "--policy-config",
            help="Guardrail levels and parameters (JSON/YAML, as --policy-pack-config); "
            "implies --policy.",
        ),
    ] = None,
) -> None:
    """Show what `pulumi up` would create for STACK, without AWS or the Pulumi CLI."""
    from guardrails import PolicyConfig, PolicyConfigError, check_plan, has_mandatory
    from guardrails import load_policy_config as load_guardrails_config
    from guardrails.report import to_rich as guardrails_report
    from infra.config.loader import ConfigError
    from infra.plan.project import ProjectError
    from infra.plan.render import to_json, to_rich
    from infra.plan.runner import PlanError, plan_stack

    try:
        guardrails = load_guardrails_config(policy_config) if policy_config else PolicyConfig()
    except PolicyConfigError as exc:
        _fail(str(exc))
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
    if policy or policy_config is not None:
        violations = check_plan(result, guardrails)
        console.print(guardrails_report(violations))
        if has_mandatory(violations):
            raise typer.Exit(code=1)


@app.command()
def train(
    local: Annotated[
        bool, typer.Option("--local", help="Run every step on this machine (the only mode yet).")
    ] = False,
    run_dir: Annotated[Path, typer.Option("--run-dir", help="Where the run's files go.")] = Path(
        "runs/local"
    ),
    raw: Annotated[
        Path | None,
        typer.Option("--raw", help="Use this raw CSV instead of ingesting the shipped dataset."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for the split and the model.")] = 42,
) -> None:
    """Ingest, validate, split, train and evaluate the churn model."""
    from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from training import local as local_run
    from training.contract import DataValidationError
    from training.features import Hyperparameters

    if not local:
        _fail("only --local is available; SageMaker training runs through the pipeline")
    if raw is not None and not raw.is_file():
        _fail(f"--raw {raw}: no such file")

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        tasks: dict[str, TaskID] = {}

        def started(name: str) -> None:
            for previous in tasks.values():
                progress.update(previous, completed=1)
            tasks[name] = progress.add_task(name, total=1)

        try:
            result = local_run.run(
                run_dir, raw_csv=raw, hyperparameters=Hyperparameters(seed=seed), on_step=started
            )
        except DataValidationError as exc:
            progress.stop()
            _fail(
                f"data rejected before training (report in {run_dir}/data/processed/report):\n{exc}"
            )
        for task in tasks.values():
            progress.update(task, completed=1)

    table = Table(title=f"churn model {result.model_sha256[:12]}")
    table.add_column("metric")
    table.add_column("validation", justify="right")
    table.add_column("test", justify="right")
    for name, value in result.test_metrics.items():
        table.add_row(name, f"{result.validation_metrics[name]:.4f}", f"{value:.4f}")
    console.print(table)
    console.print(
        f"raw data {result.raw_sha256[:12]} ({sum(result.rows.values())} rows: {result.rows}); "
        f"model in {result.model_dir}; took {sum(result.seconds.values()):.1f}s"
    )


@app.command()
def serve(
    model: Annotated[
        Path, typer.Option("--model-dir", "--model", help="Model directory or model.tar.gz.")
    ] = Path("runs/local/model"),
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="SageMaker containers listen on 8080.")] = 8080,
    capture_dir: Annotated[
        Path | None, typer.Option("--capture-dir", help="Write data capture JSONL here.")
    ] = None,
    capture_percent: Annotated[
        int, typer.Option("--capture-percent", min=0, max=100, help="Share of requests captured.")
    ] = 100,
    endpoint_name: Annotated[str, typer.Option(help="Endpoint name in capture paths.")] = (
        "local-endpoint"
    ),
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, max=64, help="Processes, each with the model loaded once (default: one per CPU)."
        ),
    ] = None,
) -> None:
    """Serve a model with SageMaker's contract: GET /ping, POST /invocations."""
    import os

    cpus = os.cpu_count() or 1
    workers = workers or cpus
    # Parallelism comes from workers: each runs its BLAS/OpenMP pools on its share of the
    # cores. Idle pool threads spin, so oversubscribed pools burn CPU that requests need.
    # Set before numpy loads (below), so it holds in this process and in every worker.
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, str(max(1, cpus // workers)))

    import uvicorn

    from inference import server as serving
    from inference.capture import CaptureWriter
    from inference.handler import ModelLoadError
    from inference.server import (
        PortInUseError,
        check_port_free,
        create_app,
        load_model,
        server_config,
    )

    if not model.exists():
        _fail(f"--model-dir {model}: no such file or directory (train one: mlops train --local)")
    try:
        check_port_free(host, port)
        loaded = load_model(model)
    except (PortInUseError, ModelLoadError) as exc:
        _fail(str(exc))
    console.print(
        f"serving model {loaded.sha256[:12]} on http://{host}:{port} with {workers} worker(s) "
        f"(capture: {capture_dir or 'off'}); Ctrl-C stops"
    )
    # uvicorn handles Ctrl-C itself: it stops accepting, finishes in-flight requests, exits.
    if workers > 1:
        os.environ[serving.ENV_MODEL] = str(model.resolve())
        os.environ[serving.ENV_CAPTURE_PERCENT] = str(capture_percent)
        os.environ[serving.ENV_ENDPOINT] = endpoint_name
        if capture_dir is not None:
            os.environ[serving.ENV_CAPTURE_DIR] = str(capture_dir.resolve())
        serving.run_workers(host, port, workers)
        return
    capture = (
        CaptureWriter(capture_dir, endpoint=endpoint_name, sampling_percent=capture_percent)
        if capture_dir is not None
        else None
    )
    uvicorn.Server(server_config(create_app(loaded, capture), host, port)).run()


@pipeline_app.command("run")
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
    project_dir: Annotated[
        Path | None,
        typer.Option("--project-dir", help="Folder with Pulumi.yaml (default: search upwards)."),
    ] = None,
) -> None:
    """Start STACK's training pipeline now; with --wait, report each step until it ends."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from infra.naming import Naming
    from pipelines.runner import PipelineRunError, PipelineRunner, parse_parameters

    settings = _stack_settings(stack, project_dir)
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
        _fail(str(exc))
    except (ClientError, BotoCoreError) as exc:
        _fail(f"AWS refused the request: {exc}")
    if not result.succeeded:
        _fail(f"{naming.training_pipeline} {result.status.lower()}: {result.failure_reason}")
    console.print(f"[green]{naming.training_pipeline} succeeded[/]")


@stack_app.command("init")
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
    force: Annotated[bool, typer.Option("--force", help="Replace an existing stack file.")] = False,
    skip_profile_check: Annotated[
        bool,
        typer.Option(
            "--skip-profile-check",
            help="Do not require --profile in ~/.aws/config or credentials (CI without profiles).",
        ),
    ] = False,
    project_dir: Annotated[
        Path | None,
        typer.Option("--project-dir", help="Folder with Pulumi.yaml (default: search upwards)."),
    ] = None,
) -> None:
    """Write a validated Pulumi.<name>.yaml for a new account from a preset."""
    from infra.plan.project import ProjectError, find_project_dir
    from infra.stacks.init import StackInitError, StackRequest, create_stack, parse_preset

    try:
        request = StackRequest(
            name=name,
            account_id=account_id,
            region=region,
            profile=profile,
            preset=parse_preset(preset) if preset is not None else None,
            service_name=service_name,
            assume_role_arn=assume_role_arn,
        )
        created = create_stack(
            find_project_dir(project_dir or Path.cwd()),
            request,
            force=force,
            profile_check=not skip_profile_check,
        )
    except (ProjectError, StackInitError) as exc:
        _fail(str(exc))
    settings = created.settings
    console.print(
        Text(f"{'replaced' if created.replaced else 'wrote'} {created.path}", style="green")
        + Text(
            f" from the {created.preset.value} preset: account {settings.account_id}, "
            f"{settings.region}, profile {profile}"
        ),
        soft_wrap=True,
    )
    console.print(
        f"next: mlops plan --stack {name}, then pulumi stack select {name} --create and "
        "pulumi up (README: Deploy to a real account)",
        soft_wrap=True,
        markup=False,
    )


def _not_blank(value: str) -> str:
    if not value.strip():
        raise typer.BadParameter("must not be empty")
    return value.strip()


ProjectDirOption = Annotated[
    Path | None,
    typer.Option("--project-dir", help="Folder with Pulumi.yaml (default: search upwards)."),
]
EndpointUrlOption = Annotated[
    str | None, typer.Option(help="AWS endpoint for every client, e.g. a moto server.")
]
ApproverOption = Annotated[
    str,
    typer.Option(
        "--approver",
        envvar=["GITHUB_ACTOR", "USER"],
        callback=_not_blank,
        help="Who decides (recorded in the registry). Default: $GITHUB_ACTOR, then $USER.",
    ),
]
ReasonOption = Annotated[
    str, typer.Option("--reason", help="Why (recorded in the registry).", callback=_not_blank)
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Check the gates only; change nothing.")
]


@app.command()
def promote(
    to: Annotated[str, typer.Option("--to", help="Stack that will serve the model.")],
    reason: ReasonOption,
    approver: ApproverOption,
    from_: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Stack whose served model to promote. Without it: the newest approved "
            "version in --to's own registry.",
        ),
    ] = None,
    dry_run: DryRunOption = False,
    endpoint_url: EndpointUrlOption = None,
    project_dir: ProjectDirOption = None,
) -> None:
    """Gate a model, record the decision in the registry, and write --to's stack file."""
    from promotion.flow import Decision
    from promotion.flow import promote as run_promotion

    target, source = (
        _stack_file(to, project_dir),
        (_stack_file(from_, project_dir) if from_ else None),
    )
    outcome = _run_release(
        lambda clients: run_promotion(
            clients,
            target=target,
            source=source,
            decision=Decision(approver=approver, reason=reason),
            dry_run=dry_run,
        ),
        target,
        endpoint_url,
    )
    if not outcome.changed and not dry_run:
        console.print(f"{to} already serves {outcome.package.arn}; nothing changed")
    elif not dry_run:
        console.print(f"[green]{to} will serve {outcome.package.arn}[/] after `pulumi up`")


@app.command()
def rollback(
    stack: Annotated[str, typer.Option("--stack", "-s", help="Stack to roll back.")],
    reason: ReasonOption,
    approver: ApproverOption,
    dry_run: DryRunOption = False,
    endpoint_url: EndpointUrlOption = None,
    project_dir: ProjectDirOption = None,
) -> None:
    """Serve the approved version before the current one; reject the current one."""
    from promotion.flow import Decision
    from promotion.flow import rollback as run_rollback

    target = _stack_file(stack, project_dir)
    outcome = _run_release(
        lambda clients: run_rollback(
            clients,
            target=target,
            decision=Decision(approver=approver, reason=reason),
            dry_run=dry_run,
        ),
        target,
        endpoint_url,
    )
    if not dry_run:
        console.print(f"[green]{stack} will serve {outcome.package.arn}[/] after `pulumi up`")


@app.command("verify-endpoint")
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
    endpoint_url: EndpointUrlOption = None,
    project_dir: ProjectDirOption = None,
) -> None:
    """Fail unless STACK's endpoint is InService on the configuration Pulumi deployed."""
    from botocore.exceptions import BotoCoreError, ClientError

    from promotion.aws import Clients
    from promotion.endpoint import EndpointCheckError, verify

    settings = _stack_settings(stack, project_dir)
    if settings.serving.model is None:
        # A first deployment, before any model is registered, declares no endpoint.
        console.print(f"{stack} serves no model (mlops:serving.model is unset): no endpoint")
        return
    if not expected_config.strip():
        _fail(f"{stack} serves a model, so --expected-config must name its configuration")
    clients = Clients.create(settings.region, endpoint_url)
    try:
        console.print(verify(clients.sagemaker, clients.cloudwatch, settings, expected_config))
    except EndpointCheckError as exc:
        _fail(str(exc))
    except (ClientError, BotoCoreError) as exc:
        _fail(f"AWS refused the request: {exc}")


def _stack_file(stack: str, project_dir: Path | None) -> StackFile:
    from infra.plan.project import ProjectError, find_project_dir
    from promotion.stack_file import StackFile, StackFileError

    try:
        stack_file = StackFile(find_project_dir(project_dir or Path.cwd()), stack)
        stack_file.settings()
    except (ProjectError, StackFileError) as exc:
        _fail(str(exc))
    return stack_file


def _run_release(
    action: Callable[[Clients], Outcome], target: StackFile, endpoint_url: str | None
) -> Outcome:
    """Run a promotion or rollback, print its gates, and turn every refusal into one line."""
    from botocore.exceptions import BotoCoreError, ClientError

    from promotion.aws import Clients
    from promotion.flow import PromotionError
    from promotion.gates import describe
    from promotion.stack_file import StackFileError

    clients = Clients.create(target.settings().region, endpoint_url)
    try:
        outcome = action(clients)
    except PromotionError as exc:
        if exc.report is not None:
            for line in describe(exc.report.results):
                errors.print(f"  {line}", soft_wrap=True, markup=False)
        _fail(str(exc))
    except StackFileError as exc:
        _fail(str(exc))
    except (ClientError, BotoCoreError) as exc:
        _fail(f"AWS refused the request: {exc}")
    if outcome.report is not None:
        for line in describe(outcome.report.results):
            console.print(f"  {line}", soft_wrap=True, markup=False)
    for note in outcome.notes:
        console.print(f"  {note}", soft_wrap=True, markup=False)
    return outcome


@app.command("drift")
def drift_command(
    capture: Annotated[
        str, typer.Option("--capture", help="Data capture folder or s3:// prefix.")
    ] = "runs/local/capture",
    baseline: Annotated[
        str,
        typer.Option(
            "--baseline",
            help="baseline.json, model dir, model.tar.gz (local or s3://) or model package ARN.",
        ),
    ] = "runs/local/model",
    output: Annotated[
        str, typer.Option("--output", help="Folder or s3:// prefix for drift.json/.html.")
    ] = "runs/local/drift",
    window_hours: Annotated[float, typer.Option(help="Hours of capture to compare.")] = 24.0,
    end: Annotated[
        str | None, typer.Option(help="Window end, ISO 8601 (default: now, UTC).")
    ] = None,
    psi_threshold: Annotated[float, typer.Option(help="PSI at which a feature drifts.")] = 0.2,
    ks_alpha: Annotated[float, typer.Option(help="Significance level of the tests.")] = 0.01,
    namespace: Annotated[str | None, typer.Option(help="CloudWatch namespace.")] = None,
    endpoint_name: Annotated[
        str | None, typer.Option(help="Endpoint to read and name in metrics.")
    ] = None,
    publish: Annotated[
        bool, typer.Option("--publish/--no-publish", help="Put the metrics to CloudWatch.")
    ] = False,
    region: Annotated[str | None, typer.Option(help="AWS region.")] = None,
    endpoint_url: EndpointUrlOption = None,
) -> None:
    """Compare a window of endpoint data capture with the model's training baseline."""
    from monitoring import drift as drift_job

    argv = [
        "--capture", capture, "--baseline", baseline, "--output", output,
        "--window-hours", str(window_hours), "--psi-threshold", str(psi_threshold),
        "--ks-alpha", str(ks_alpha), "--publish" if publish else "--no-publish",
    ]  # fmt: skip
    for flag, value in (
        ("--end", end),
        ("--namespace", namespace),
        ("--endpoint-name", endpoint_name),
        ("--region", region),
        ("--endpoint-url", endpoint_url),
    ):
        if value is not None:
            argv += [flag, value]
    # The job's own exit codes: 0 when it ran (drift or not), 2 for caller errors.
    code = drift_job.main(argv)
    if code:
        raise typer.Exit(code=code)


@app.command()
def demo(
    runs_root: Annotated[
        Path, typer.Option("--runs", help="Folder for run folders (one per run).")
    ] = Path("runs/demo"),
    phase_rows: Annotated[
        int, typer.Option(min=100, max=1500, help="Rows of traffic per phase.")
    ] = 1500,
) -> None:
    """The whole lifecycle on this machine, with moto as the AWS: train, register, gate,
    promote, serve, drift, alarm, retrain, promote again and swap without dropping a request."""
    from rich.table import Table

    from demo.lifecycle import STEPS, DemoError, DemoOptions, Lifecycle

    def announce(number: int, name: str) -> None:
        console.print(f"[bold cyan][{number}/{len(STEPS)}][/] {name}")

    def note(text: str) -> None:
        console.print(f"      {text}", soft_wrap=True, markup=False, highlight=False)

    lifecycle = Lifecycle(DemoOptions(runs_root=runs_root, phase_rows=phase_rows), announce, note)
    try:
        result = lifecycle.run()
    except DemoError as exc:
        _fail(f"the demo stopped at '{exc.step}': {exc.message}")
    except KeyboardInterrupt:
        errors.print("interrupted: the server and the embedded AWS are stopped")
        raise typer.Exit(code=130) from None
    table = Table(title="demo summary", show_header=False)
    for name, seconds in result.seconds.items():
        table.add_row(name, f"{seconds:.1f} s")
    table.add_row("total", f"{sum(result.seconds.values()):.1f} s")
    console.print(table)
    console.print(f"[green]done[/]: serving {result.served}; report {result.report}")


def _stack_settings(stack: str, project_dir: Path | None) -> Settings:
    """The stack's validated settings, read from its Pulumi.<stack>.yaml."""
    from infra.config.loader import ConfigError, settings_from_config
    from infra.plan.project import ProjectError, find_project_dir, load_stack_config

    try:
        config = load_stack_config(find_project_dir(project_dir or Path.cwd()), stack)
        return settings_from_config(config.values, project=config.project, stack=stack)
    except (ProjectError, ConfigError) as exc:
        _fail(str(exc))


def _fail(message: str) -> NoReturn:
    errors.print(Text("error: ", style="bold red") + Text(message), soft_wrap=True)
    raise typer.Exit(code=1)


if __name__ == "__main__":
    app()
