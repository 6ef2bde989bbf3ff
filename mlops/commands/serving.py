"""``mlops serve``: a model behind SageMaker's HTTP contract, on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlops.commands.common import console, fail


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
        fail(f"--model-dir {model}: no such file or directory (train one: mlops train --local)")
    try:
        check_port_free(host, port)
        loaded = load_model(model)
    except (PortInUseError, ModelLoadError) as exc:
        fail(str(exc))
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
