"""``mlops serve``: a model behind SageMaker's HTTP contract, on this machine."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from mlops.commands.common import console, fail

# The ceiling of every time limit (an hour, as SageMaker's asynchronous inference); kept here
# so that --help does not import the server.
MAX_SECONDS = 3600.0


def _seconds(value: float, *, allow_zero: bool = False) -> float:
    low_ok = value >= 0 if allow_zero else value > 0
    if not (math.isfinite(value) and low_ok and value <= MAX_SECONDS):
        bounds = "from 0 to" if allow_zero else "above 0 and at most"
        raise typer.BadParameter(f"must be {bounds} {MAX_SECONDS:g} seconds, not {value:g}")
    return value


def _positive_seconds(value: float) -> float:
    return _seconds(value)


def _seconds_or_zero(value: float) -> float:
    return _seconds(value, allow_zero=True)


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
    read_timeout: Annotated[
        float,
        typer.Option(
            callback=_positive_seconds,
            help="Seconds (up to 3600) a client has to send a request's headers, and again "
            "its body; then the server closes the connection, with a 408 if the headers "
            "had arrived.",
        ),
    ] = 10.0,
    request_timeout: Annotated[
        float,
        typer.Option(
            callback=_positive_seconds,
            help="Seconds (up to 3600) from a request's headers to its answer; then a 504, "
            "as the scikit-learn image's nginx answers after SAGEMAKER_MODEL_SERVER_TIMEOUT "
            "(60 s).",
        ),
    ] = 60.0,
    max_queue: Annotated[
        int,
        typer.Option(
            min=0,
            max=100_000,
            help="Requests that may wait behind the running prediction in each worker; "
            "more get a 503 with Retry-After. 0 never sheds.",
        ),
    ] = 16,
    max_requests_per_connection: Annotated[
        int,
        typer.Option(
            min=0,
            max=1_000_000,
            help="Requests answered on one connection before the server closes it, so "
            "clients spread over a restarted worker again. 0: no limit.",
        ),
    ] = 20,
    shutdown_timeout: Annotated[
        float,
        typer.Option(
            callback=_seconds_or_zero,
            help="Seconds (0-3600) in-flight requests get to finish on Ctrl-C or SIGTERM; a "
            "worker still running 3 s later is killed.",
        ),
    ] = 30.0,
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

    from inference import server as serving
    from inference.handler import ModelLoadError
    from inference.server import Limits, PortInUseError, check_port_free, load_model

    limits = Limits(
        read_timeout=read_timeout,
        request_timeout=request_timeout,
        max_queue=max_queue,
        max_requests_per_connection=max_requests_per_connection,
        shutdown_timeout=shutdown_timeout,
    )
    if not model.exists():
        fail(f"--model-dir {model}: no such file or directory (train one: mlops train)")
    try:
        check_port_free(host, port)
        loaded = load_model(model)  # here, so a bad model is one clear error, not one per worker
    except (PortInUseError, ModelLoadError) as exc:
        fail(str(exc))
    console.print(
        f"serving model {loaded.sha256[:12]} on http://{host}:{port} with {workers} worker(s) "
        f"(capture: {capture_dir or 'off'}); Ctrl-C stops"
    )
    console.print(
        f"limits per worker: {read_timeout:g} s to send a request, {request_timeout:g} s to "
        f"answer it, {max_queue or 'unlimited'} waiting, "
        f"{max_requests_per_connection or 'unlimited'} requests per connection, "
        f"{shutdown_timeout:g} s to drain on shutdown"
    )
    # Always under the supervisor, even with one worker: it replaces a worker that dies or
    # hangs, and kills one that outlives the shutdown deadline.
    os.environ[serving.ENV_MODEL] = str(model.resolve())
    os.environ[serving.ENV_CAPTURE_PERCENT] = str(capture_percent)
    os.environ[serving.ENV_ENDPOINT] = endpoint_name
    if capture_dir is not None:
        os.environ[serving.ENV_CAPTURE_DIR] = str(capture_dir.resolve())
    serving.run_workers(host, port, workers, limits)
