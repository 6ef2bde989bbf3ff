"""A local server with SageMaker's container contract: GET /ping and POST /invocations.

It calls the same handler functions the container calls, loads the model once at start,
serves requests concurrently (Starlette runs each prediction in a worker thread under
uvicorn) and writes data capture in SageMaker's format.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import anyio.to_thread
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from inference import handler
from inference.capture import CaptureWriter
from inference.packaging import extract_model_archive

log = logging.getLogger("mlops.serve")
# SageMaker's real-time invocation payload limit.
MAX_BODY_BYTES = 6 * 1024 * 1024


class PortInUseError(OSError):
    pass


def load_model(model: Path) -> handler.ServingModel:
    """A model directory, or a model.tar.gz unpacked the way SageMaker unpacks it."""
    if model.is_file():
        scratch = Path(tempfile.mkdtemp(prefix="mlops-model-"))
        return handler.model_fn(str(extract_model_archive(model, scratch)))
    return handler.model_fn(str(model))


def create_app(model: handler.ServingModel, capture: CaptureWriter | None = None) -> Starlette:
    # One prediction at a time per process, as in SageMaker's model server workers: the
    # GIL serialises them anyway, and a queue beats threads thrashing over it.
    predicting = anyio.CapacityLimiter(1)

    async def ping(request: Request) -> Response:
        return Response(status_code=200)

    async def execution_parameters(request: Request) -> Response:
        # Batch transform asks this before sending work.
        return JSONResponse(
            {"MaxConcurrentTransforms": 4, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}
        )

    async def invocations(request: Request) -> Response:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return _error(413, f"body is {declared} bytes; the limit is {MAX_BODY_BYTES}")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _error(413, f"body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}")
        content_type = request.headers.get("content-type")
        accept = request.headers.get("accept")
        try:
            # Read per request: swapping app.state.model serves a new version from the next
            # request on, without a restart and without failing one in flight.
            payload, response_type = await anyio.to_thread.run_sync(
                handler.transform,
                request.app.state.model,
                body,
                content_type,
                accept,
                limiter=predicting,
            )
        except handler.RequestError as exc:
            return _error(exc.status_code, exc.message)
        except Exception:  # a bug of ours, never the caller's: log it, keep serving
            log.exception("prediction failed")
            return _error(500, "internal error while predicting; see the server log")
        data = payload.encode("utf-8")
        if capture is not None:
            await run_in_threadpool(capture.record, body, content_type or "", data, response_type)
        return Response(data, media_type=response_type)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if capture is not None:
            capture.close()

    app = Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/execution-parameters", execution_parameters, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    app.state.model = model
    return app


def _error(status: int, message: str) -> Response:
    return PlainTextResponse(message + "\n", status_code=status)


# How `mlops serve --workers N` hands its options to each worker process.
ENV_MODEL = "MLOPS_SERVE_MODEL"
ENV_CAPTURE_DIR = "MLOPS_SERVE_CAPTURE_DIR"
ENV_CAPTURE_PERCENT = "MLOPS_SERVE_CAPTURE_PERCENT"
ENV_ENDPOINT = "MLOPS_SERVE_ENDPOINT"


def app_from_environment() -> Starlette:
    """uvicorn factory for multi-process serving: each worker loads the model once, as
    SageMaker's model server does with one worker per vCPU."""
    capture_dir = os.environ.get(ENV_CAPTURE_DIR)
    capture = (
        CaptureWriter(
            Path(capture_dir),
            endpoint=os.environ.get(ENV_ENDPOINT, "local-endpoint"),
            sampling_percent=int(os.environ.get(ENV_CAPTURE_PERCENT, "100")),
        )
        if capture_dir
        else None
    )
    return create_app(load_model(Path(os.environ[ENV_MODEL])), capture)


class _TcpConfig(uvicorn.Config):
    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        # uvicorn binds with protocol 0, and asyncio sets TCP_NODELAY only on connections
        # whose listener says IPPROTO_TCP: without it, Nagle's algorithm and delayed ACKs
        # add ~40 ms to every keep-alive response. Re-wrap the same descriptor.
        tcp = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
        tcp.set_inheritable(True)
        return tcp


def run_workers(host: str, port: int, workers: int) -> None:
    """Serve ``app_from_environment`` in ``workers`` processes sharing one socket."""
    from uvicorn.supervisors import Multiprocess

    config = _TcpConfig(
        "inference.server:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )
    with contextlib.suppress(KeyboardInterrupt):
        Multiprocess(config, sockets=[config.bind_socket()]).run()


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PortInUseError(
                f"port {port} on {host} is in use; stop the other server or pass --port"
            ) from exc


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def server_config(app: Starlette, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)


@contextlib.contextmanager
def running(app: Starlette, host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """Serve ``app`` on a background thread; yields the base URL and stops on exit."""
    port = port or free_port(host)
    check_port_free(host, port)
    server = uvicorn.Server(server_config(app, host, port))
    thread = threading.Thread(target=server.run, name="mlops-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"server did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
