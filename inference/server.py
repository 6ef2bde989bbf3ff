"""A local server with SageMaker's container contract: GET /ping and POST /invocations.

It calls the same handler functions the container calls, loads the model once at start,
serves requests concurrently (each worker process predicts on one thread, one request at a
time) and writes data capture in SageMaker's format.

It protects itself (``Limits``; each is an `mlops serve` option): a client that is slow to
send its request gets a 408 and its connection closed; a request still unanswered at its
time budget gets a 504; a worker with too many requests waiting sheds new ones with a 503 and
Retry-After; each connection is closed after a number of requests, so clients spread over a
replaced worker again; and shutdown waits for in-flight requests up to a deadline, after which
workers still running are killed. Only answered requests are captured: a 408, 503 or 504 is
not an answer from the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import os
import queue
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.supervisors import Multiprocess

from inference import handler
from inference.capture import (
    INFERENCE_ID_HEADER,
    CaptureWriter,
    InferenceIdError,
    check_inference_id,
)
from inference.packaging import extract_model_archive

if TYPE_CHECKING:  # uvicorn's ASGI types live in a private module: for annotations only
    from uvicorn._types import (
        ASGI3Application,
        ASGIReceiveCallable,
        ASGISendCallable,
        ASGISendEvent,
    )
    from uvicorn._types import Scope as ASGIScope

log = logging.getLogger("mlops.serve")
# SageMaker's real-time invocation payload limit.
MAX_BODY_BYTES = 6 * 1024 * 1024


class PortInUseError(OSError):
    pass


# Upper bound for every time limit: SageMaker's asynchronous inference allows an hour.
MAX_SECONDS = 3600.0
# After its drain deadline, a worker gets this long to cancel what is left and exit before
# the supervisor kills it.
KILL_GRACE_SECONDS = 3.0


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one worker process allows its clients; `mlops serve` sets each from an option."""

    # Seconds a client has to send a request's headers, and again its body (408 after).
    read_timeout: float = 10.0
    # Seconds from a request's headers to its answer (504 after): SageMaker's own budget.
    request_timeout: float = 60.0
    # Requests that may wait behind the running prediction before new ones get a 503; 0: never.
    max_queue: int = 16
    # Requests answered on one connection before it is closed; 0: no limit.
    max_requests_per_connection: int = 20
    # Seconds in-flight requests get to finish at shutdown before they are cancelled.
    shutdown_timeout: float = 30.0

    def __post_init__(self) -> None:
        for name in ("read_timeout", "request_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 < value <= MAX_SECONDS):
                raise ValueError(f"{name} must be in (0, {MAX_SECONDS:g}] seconds, got {value}")
        if not (math.isfinite(self.shutdown_timeout) and 0 <= self.shutdown_timeout <= MAX_SECONDS):
            raise ValueError(f"shutdown_timeout must be in [0, {MAX_SECONDS:g}] seconds")
        if self.max_queue < 0 or self.max_requests_per_connection < 0:
            raise ValueError("max_queue and max_requests_per_connection must be >= 0")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str | None) -> Limits:
        return cls(**json.loads(text)) if text else cls()


T = TypeVar("T")


@dataclasses.dataclass
class _Job:
    run: Callable[[], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    abandoned: bool = False


class _Predictor:
    """Runs predictions one at a time on one daemon thread, as SageMaker's model server
    workers do (the GIL serialises them anyway, and a queue beats threads thrashing over it).

    A request that stops waiting (its budget ran out) leaves a running prediction to finish
    alone rather than starting another beside it, and a queued one is skipped. The thread is a
    daemon, unlike anyio's, so a prediction that never returns cannot keep the process alive.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.waiting = 0  # requests waiting for a result, the running one included
        self.seconds_per_job = 0.0  # moving average over recent predictions

    def drain_seconds(self) -> int:
        """Whole seconds, at least 1, this worker needs for the requests waiting on it."""
        return max(1, math.ceil(self.waiting * self.seconds_per_job))

    async def run(self, function: Callable[[], T]) -> T:
        if self._thread is None or not self._thread.is_alive():  # first use, or a BaseException
            self._thread = threading.Thread(target=self._serve, name="mlops-predict", daemon=True)
            self._thread.start()
        loop = asyncio.get_running_loop()
        job = _Job(function, loop.create_future(), loop)
        self._jobs.put(job)
        self.waiting += 1
        try:
            result: T = await job.future
            return result
        finally:
            self.waiting -= 1
            job.abandoned = True  # skipped if still queued; a no-op once it has run

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job.abandoned:
                continue
            started = time.perf_counter()
            try:
                outcome: tuple[Any, BaseException | None] = (job.run(), None)
            except Exception as exc:  # handed to the request, which decides what it means
                outcome = (None, exc)
            self.seconds_per_job += 0.1 * (time.perf_counter() - started - self.seconds_per_job)
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting
                job.loop.call_soon_threadsafe(_settle, job.future, *outcome)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the request gave up
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def load_model(model: Path) -> handler.ServingModel:
    """A model directory, or a model.tar.gz unpacked the way SageMaker unpacks it."""
    if model.is_file():
        scratch = Path(tempfile.mkdtemp(prefix="mlops-model-"))
        return handler.model_fn(str(extract_model_archive(model, scratch)))
    return handler.model_fn(str(model))


def create_app(
    model: handler.ServingModel, capture: CaptureWriter | None = None, limits: Limits = Limits()
) -> Starlette:
    predictor = _Predictor()
    # Which worker answered: shows how requests spread over the processes.
    worker = {"X-Worker-Pid": str(os.getpid())}

    async def ping(request: Request) -> Response:
        return Response(status_code=200)

    async def execution_parameters(request: Request) -> Response:
        # Batch transform asks this before sending work.
        return JSONResponse(
            {"MaxConcurrentTransforms": 4, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}
        )

    async def invocations(request: Request) -> Response:
        deadline = anyio.current_time() + limits.request_timeout
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return _error(413, f"body is {declared} bytes; the limit is {MAX_BODY_BYTES}")
        try:
            with anyio.fail_after(limits.read_timeout):
                body = await _read_body(request)
        except TimeoutError:
            return _refuse(408, f"the body did not arrive within {limits.read_timeout:g} s")
        except ClientDisconnect:
            return _error(400, "the client disconnected before sending the whole body")
        if len(body) > MAX_BODY_BYTES:
            return _error(413, f"body is over {MAX_BODY_BYTES} bytes, the limit")
        # Shed after reading the body: closing a connection with unread data would reset
        # it, and the client would never see the 503. Closing it lets the retry reach
        # another worker.
        if limits.max_queue and predictor.waiting > limits.max_queue:
            return _shed()
        content_type = request.headers.get("content-type")
        accept = request.headers.get("accept")
        # The caller's InferenceId, refused before any work as SageMaker's front end would.
        inference_id = request.headers.get(INFERENCE_ID_HEADER)
        if inference_id is not None:
            try:
                check_inference_id(inference_id)
            except InferenceIdError as exc:
                return _error(400, str(exc), worker)
        # Read per request: swapping app.state.model serves a new version from the next
        # request on, without a restart and without failing one in flight.
        current = request.app.state.model
        try:
            with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                payload, response_type = await predictor.run(
                    lambda: handler.transform(current, body, content_type, accept)
                )
        except TimeoutError:
            return _refuse(504, f"no answer within the {limits.request_timeout:g} s budget")
        except handler.RequestError as exc:
            return _error(exc.status_code, exc.message, worker)
        except Exception:  # a bug of ours, never the caller's: log it, keep serving
            log.exception("prediction failed")
            return _error(500, "internal error while predicting; see the server log", worker)
        data = payload.encode("utf-8")
        # Captured before the answer is sent, so every answered request is in the capture.
        if capture is not None:
            await run_in_threadpool(
                capture.record, body, content_type or "", data, response_type, inference_id
            )
        return Response(data, media_type=response_type, headers=worker)

    def _refuse(status: int, message: str) -> Response:
        # Closed, so a client stuck behind a slow worker reconnects, perhaps to another.
        return _error(status, message, worker | {"Connection": "close"})

    def _shed() -> Response:
        # Retry once the queue is likely worked off: sooner only resends bodies to be refused.
        retry_after = predictor.drain_seconds()
        queued = predictor.waiting - 1
        response = _refuse(503, f"{queued} requests are waiting on this worker; retry later")
        response.headers["Retry-After"] = str(retry_after)
        return response

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
    app.state.limits = limits
    return app


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return PlainTextResponse(message + "\n", status_code=status, headers=headers)


async def _read_body(request: Request) -> bytes:
    """The body, or as much as shows it is over the limit (chunked bodies declare no size)."""
    chunks: list[bytes] = []
    size = 0
    async with contextlib.aclosing(request.stream()) as stream:
        async for chunk in stream:
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                break
    return b"".join(chunks)


# How `mlops serve --workers N` hands its options to each worker process.
ENV_MODEL = "MLOPS_SERVE_MODEL"
ENV_CAPTURE_DIR = "MLOPS_SERVE_CAPTURE_DIR"
ENV_CAPTURE_PERCENT = "MLOPS_SERVE_CAPTURE_PERCENT"
ENV_ENDPOINT = "MLOPS_SERVE_ENDPOINT"
ENV_LIMITS = "MLOPS_SERVE_LIMITS"


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
    limits = Limits.from_json(os.environ.get(ENV_LIMITS))
    return create_app(load_model(Path(os.environ[ENV_MODEL])), capture, limits)


class ServeConfig(uvicorn.Config):
    """uvicorn's settings plus our ``Limits``, which the connection protocol reads."""

    def __init__(self, app: ASGI3Application | Starlette | str, limits: Limits, **kwargs: Any):
        super().__init__(
            app,
            http=_GuardedH11Protocol,
            timeout_graceful_shutdown=math.ceil(limits.shutdown_timeout),
            log_level="warning",
            access_log=False,
            **kwargs,
        )
        self.limits = limits

    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        # uvicorn binds with protocol 0, and asyncio sets TCP_NODELAY only on connections
        # whose listener says IPPROTO_TCP: without it, Nagle's algorithm and delayed ACKs
        # add ~40 ms to every keep-alive response. Re-wrap the same descriptor.
        tcp = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
        tcp.set_inheritable(True)
        return tcp


_CLOSE = (b"connection", b"close")


class _GuardedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 connection with two limits it lacks.

    - A deadline for each request's headers: uvicorn waits forever for the first request on
      a connection, and for the rest of any request once its first byte has arrived.
    - A cap on requests per connection, announced with ``Connection: close`` on the last
      answer: kept-alive connections otherwise stay on the worker that accepted them, so a
      replaced worker would sit idle until clients reconnected of their own accord.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        config = self.config
        self.limits = config.limits if isinstance(config, ServeConfig) else Limits()
        self.requests_started = 0
        self.headers_timer: asyncio.TimerHandle | None = None
        self.app = self._counted(self.app)
        self._await_headers()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.headers_timer is not None:
            self.headers_timer.cancel()
        super().connection_lost(exc)

    def _await_headers(self) -> None:
        if self.headers_timer is not None:
            self.headers_timer.cancel()
        self.headers_timer = self.loop.call_later(
            self.limits.read_timeout, self._close_if_no_request, self.requests_started
        )

    def _close_if_no_request(self, started_before: int) -> None:
        if self.requests_started == started_before and not self.transport.is_closing():
            self.transport.close()

    def _counted(self, app: ASGI3Application) -> ASGI3Application:
        limit = self.limits.max_requests_per_connection

        async def counted(
            scope: ASGIScope, receive: ASGIReceiveCallable, send: ASGISendCallable
        ) -> None:
            self.requests_started += 1
            if limit and self.requests_started >= limit:
                send = _closing(send)
            await app(scope, receive, send)

        return counted


def _closing(send: ASGISendCallable) -> ASGISendCallable:
    async def closing(message: ASGISendEvent) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            if _CLOSE not in headers:
                message["headers"] = [*headers, _CLOSE]
        await send(message)

    return closing


class _Supervisor(Multiprocess):
    """uvicorn's supervisor (restarts workers that die or stop answering its health check),
    with a deadline on shutdown: uvicorn's waits forever for a worker that ignores SIGTERM."""

    def __init__(self, config: ServeConfig, sockets: list[socket.socket]) -> None:
        super().__init__(config, sockets)
        self.kill_after = config.limits.shutdown_timeout + KILL_GRACE_SECONDS

    def join_all(self) -> None:
        deadline = time.monotonic() + self.kill_after
        for worker in self.processes:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                log.warning(
                    "worker %s still running %.0f s after shutdown began; killing it",
                    worker.pid,
                    self.kill_after,
                )
                worker.kill()
                worker.process.join()


def run_workers(host: str, port: int, workers: int, limits: Limits = Limits()) -> None:
    """Serve ``app_from_environment`` in ``workers`` processes sharing one socket."""
    os.environ[ENV_LIMITS] = limits.to_json()
    config = ServeConfig(
        "inference.server:app_from_environment",
        limits,
        factory=True,
        host=host,
        port=port,
        workers=workers,
    )
    with contextlib.suppress(KeyboardInterrupt):
        _Supervisor(config, sockets=[config.bind_socket()]).run()


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


def server_config(app: Starlette, host: str, port: int) -> ServeConfig:
    limits: Limits = getattr(app.state, "limits", Limits())
    return ServeConfig(app, limits, host=host, port=port)


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
