"""``mlops local``: a stack's resources in a local AWS (a moto server), from its offline plan."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from mlops.commands.common import ProjectDirOption, console, errors, fail

app = typer.Typer(help="A stack's resources in a local AWS (moto), to try commands against.")

DEFAULT_PORT = 5000  # moto_server's own default


@app.command("up")
def local_up(
    stack: Annotated[str, typer.Option("--stack", "-s", help="Stack to stand up, e.g. dev.")],
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1 (0: any free port).")
    ] = DEFAULT_PORT,
    endpoint_url: Annotated[
        str | None,
        typer.Option(
            help="Create the resources in this running endpoint (e.g. `moto_server`) and exit, "
            "instead of starting one and serving until Ctrl-C.",
        ),
    ] = None,
    json_path: Annotated[
        Path | None,
        typer.Option("--json", help="Also write what was created and skipped, as JSON."),
    ] = None,
    project_dir: ProjectDirOption = None,
) -> None:
    """Plan STACK offline, create its resources in a local moto server, and print the
    environment that points every `mlops` command (and the AWS CLI) at it.

    It creates what the endpoint supports (buckets, the key, roles and policies, the topic,
    alarms, rules, schedules, the registry group, the pipelines, the model and endpoint
    records) and lists what it could not, and why. Nothing reads or needs AWS credentials.
    """
    from infra.aws_session import isolated_session, offline_process_environment
    from infra.config.loader import ConfigError
    from infra.plan import local_stack
    from infra.plan.mocks import PLAN_ACCOUNT_ID
    from infra.plan.project import ProjectError, find_project_dir, load_stack_config
    from infra.plan.runner import PlanError, plan_config
    from mlops.commands.progress import Display

    try:
        project = find_project_dir(project_dir or Path.cwd())
        config = load_stack_config(project, stack)
    except (ProjectError, ConfigError) as exc:
        fail(str(exc))
    region = config.values.get("aws:region", "us-east-1")
    account = config.values.get("mlops:accountId") or PLAN_ACCOUNT_ID
    with offline_process_environment(region), _Server(endpoint_url, port) as url:
        try:
            with console.status(f"planning {stack} offline"):
                plan = plan_config(config)
        except (ConfigError, PlanError) as exc:
            fail(str(exc))
        session = isolated_session(region, access_key=account)
        with Display(console, transient=True) as display:
            progress = display.counter(f"creating {stack}'s resources", "resources")
            created = local_stack.create(plan, session, url, project, progress=progress)
        console.print(local_stack.summary(created), soft_wrap=True, markup=False)
        if json_path is not None:
            json_path.write_text(local_stack.as_json(created) + "\n", encoding="utf-8")
        console.print(
            "\nPoint commands at it (every mlops command and the AWS CLI read these):\n"
            f"  export AWS_ENDPOINT_URL={url} AWS_REGION={region}\n"
            f"  export AWS_ACCESS_KEY_ID={account} AWS_SECRET_ACCESS_KEY=local\n"
            "  export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null\n"
            "  unset AWS_PROFILE AWS_SESSION_TOKEN",
            soft_wrap=True,
            markup=False,
        )
        if endpoint_url is None:
            with _until_signalled() as stopped:
                console.print(f"\nserving on {url}; Ctrl-C stops it (its state goes with it)")
                signum = stopped()
            errors.print("stopped")
            raise typer.Exit(code=128 + signum)  # the shell's code for the signal


class _Server:
    """The given endpoint, or a moto server on 127.0.0.1 for the duration."""

    def __init__(self, endpoint_url: str | None, port: int) -> None:
        self.endpoint_url, self.port = endpoint_url, port
        self.server: object | None = None

    def __enter__(self) -> str:
        if self.endpoint_url is not None:
            return self.endpoint_url
        import logging

        from moto.server import ThreadedMotoServer

        # The server logs every request, and a traceback for each it cannot serve; the
        # summary already names those.
        logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
        # The server binds in its own thread, where a busy port would only be logged.
        if self.port:
            import socket

            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", self.port))
                except OSError as exc:
                    fail(
                        f"--port {self.port}: cannot listen on 127.0.0.1 ({exc.strerror}); "
                        "pick another, or 0 for any free port"
                    )
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        server.start()
        self.server = server
        host, port = server.get_host_and_port()
        return f"http://{host}:{port}"

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.stop()  # type: ignore[attr-defined]


@contextmanager
def _until_signalled() -> Iterator[Callable[[], int]]:
    """Ctrl-C or SIGTERM ends the wait, whenever it arrives once this is entered."""
    received: list[int] = []
    stop = threading.Event()

    def handle(signum: int, frame: object) -> None:
        received.append(signum)
        stop.set()

    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}

    def wait() -> int:
        stop.wait()
        return received[0]

    try:
        yield wait
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
