"""The local server protects itself: slow clients, overload, stuck workers, replaced workers.

Each test asserts outcomes (status codes, headers, a connection closed by the server, a
process gone, which worker answered), never durations; the timeouts below are safety nets
that only fail a test that would otherwise hang.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from inference import handler
from inference.capture import CaptureWriter
from inference.process import serve_in_subprocess
from inference.server import Limits, _Predictor, create_app, load_model, running
from mlops.cli import app as cli_app
from mlops.commands.serving import serve

SAFETY = 60  # seconds; only ever reached by a test that is failing
CSV = {"Content-Type": "text/csv"}


@pytest.fixture(scope="module")
def model(model_dir: Path) -> handler.ServingModel:
    return load_model(model_dir)


@pytest.fixture(scope="module")
def body(test_rows: pd.DataFrame) -> str:
    return str(test_rows.iloc[:1].to_csv(index=False, header=False))


@dataclass
class Hold:
    """Predictions block until ``release`` is set; ``started`` is set as the first begins."""

    release: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)
    ran: int = 0


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[Hold]:
    hold = Hold()
    real = handler.transform

    def blocked(*args: Any) -> tuple[str, str]:
        hold.ran += 1
        hold.started.set()
        hold.release.wait(SAFETY)
        return real(*args)

    monkeypatch.setattr(handler, "transform", blocked)
    yield hold
    hold.release.set()


def _connect(url: str) -> socket.socket:
    address = urlsplit(url)
    return socket.create_connection((address.hostname, address.port), timeout=SAFETY)


def _exchange(url: str, data: bytes) -> bytes:
    """Send ``data`` and read until the server closes the connection."""
    with _connect(url) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def _captured(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for f in root.rglob("*.jsonl") for line in f.read_text().splitlines()]


# --- slow clients -----------------------------------------------------------------------------


def test_a_body_that_stops_arriving_gets_408_and_the_server_closes_the_connection(
    model: handler.ServingModel,
) -> None:
    with running(create_app(model, limits=Limits(read_timeout=0.5))) as url:
        head = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
        received = _exchange(url, head + b"Content-Length: 100\r\n\r\n1,2,")
    assert received.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in received.lower()


@pytest.mark.parametrize(
    "sent",
    [b"", b"POST /invocations HTTP/1.1\r\nHost: x\r\n"],
    ids=["nothing", "half the headers"],
)
def test_a_connection_without_a_whole_request_is_closed(
    model: handler.ServingModel, sent: bytes
) -> None:
    with running(create_app(model, limits=Limits(read_timeout=0.5))) as url:
        assert _exchange(url, sent) == b""


def test_after_an_answer_the_next_requests_headers_have_a_deadline_too(
    model: handler.ServingModel,
) -> None:
    with (
        running(create_app(model, limits=Limits(read_timeout=0.5))) as url,
        _connect(url) as sock,
    ):
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while not answer.endswith(b"\r\n\r\n"):  # /ping answers with no body
            answer += sock.recv(65536)
        # The first bytes of a next request stop uvicorn's keep-alive timer; ours holds.
        sock.sendall(b"POST /invocations HTTP/1.1\r\n")
        assert sock.recv(65536) == b""  # closed by the server, with nothing to answer
    assert answer.startswith(b"HTTP/1.1 200 ")


# --- time budget and load shedding --------------------------------------------------------------


def test_a_request_over_its_budget_gets_504_and_a_queued_one_never_runs(
    model: handler.ServingModel,
    body: str,
    tmp_path: Path,
    held: Hold,
) -> None:
    writer = CaptureWriter(tmp_path)
    with (
        running(create_app(model, writer, Limits(request_timeout=0.5))) as url,
        httpx.Client(base_url=url, timeout=SAFETY) as client,
        ThreadPoolExecutor(max_workers=2) as pool,
    ):
        # One prediction runs (held), the other waits for it: both outlive their budget.
        calls = [
            pool.submit(client.post, "/invocations", content=body, headers=CSV) for _ in range(2)
        ]
        late = [call.result() for call in calls]
        held.release.set()
        after = client.post("/invocations", content=body, headers=CSV)
    assert [r.status_code for r in late] == [504, 504]
    assert all(r.headers["connection"] == "close" for r in late)
    assert "budget" in late[0].text
    assert after.status_code == 200
    assert held.ran == 2  # the held one and the one after; the queued one was skipped
    assert len(_captured(tmp_path)) == 1  # only the answered request


def test_beyond_the_queue_depth_requests_get_503_with_retry_after(
    model: handler.ServingModel,
    body: str,
    tmp_path: Path,
    held: Hold,
) -> None:
    writer = CaptureWriter(tmp_path)
    with (
        running(create_app(model, writer, Limits(max_queue=2))) as url,
        httpx.Client(base_url=url, timeout=SAFETY) as client,
        ThreadPoolExecutor(max_workers=6) as pool,
    ):
        calls = [
            pool.submit(client.post, "/invocations", content=body, headers=CSV) for _ in range(6)
        ]
        # One runs (held) and two wait: until released, only the shed three can finish.
        finished = as_completed(calls, timeout=SAFETY)
        shed = [next(finished).result() for _ in range(3)]
        held.release.set()
        served = [call.result() for call in finished]
    assert [r.status_code for r in shed] == [503] * 3
    assert all(int(r.headers["retry-after"]) >= 1 for r in shed)  # whole seconds
    assert all(r.headers["connection"] == "close" for r in shed)
    assert [r.status_code for r in served] == [200] * 3
    assert len(_captured(tmp_path)) == 3  # shed requests were not answered, so not captured


@pytest.mark.parametrize(
    ("waiting", "seconds_per_job", "retry_after"),
    [(0, 0.0, 1), (17, 0.007, 1), (17, 0.11, 2), (5, 1.0, 5)],
)
def test_retry_after_is_the_time_to_work_off_the_queue(
    waiting: int, seconds_per_job: float, retry_after: int
) -> None:
    predictor = _Predictor()
    predictor.waiting, predictor.seconds_per_job = waiting, seconds_per_job
    assert predictor.drain_seconds() == retry_after


def test_each_connection_is_closed_after_its_request_limit(model: handler.ServingModel) -> None:
    with (
        running(create_app(model, limits=Limits(max_requests_per_connection=3))) as url,
        httpx.Client(base_url=url, timeout=SAFETY) as client,
    ):
        closing = [client.get("/ping").headers.get("connection") for _ in range(6)]
    assert closing == [None, None, "close"] * 2


def _refuses_connections(url: str) -> bool:
    """Whether the server has stopped listening, asked until it has (or for SAFETY s)."""
    for _ in range(SAFETY * 20):
        try:
            _connect(url).close()
        except ConnectionRefusedError:
            return True
        time.sleep(0.05)
    return False


def test_shutdown_stops_listening_but_lets_an_in_flight_request_finish(
    model: handler.ServingModel, body: str, tmp_path: Path, held: Hold
) -> None:
    writer = CaptureWriter(tmp_path)
    server = ExitStack()
    url = server.enter_context(running(create_app(model, writer)))
    with httpx.Client(base_url=url, timeout=SAFETY) as client, ThreadPoolExecutor(2) as pool:
        in_flight = pool.submit(client.post, "/invocations", content=body, headers=CSV)
        assert held.started.wait(SAFETY)
        stopping = pool.submit(server.close)
        assert _refuses_connections(url)  # shutdown has begun, with the prediction held
        held.release.set()
        answer = in_flight.result()
        stopping.result()
    assert answer.status_code == 200
    assert len(_captured(tmp_path)) == 1


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--read-timeout", "0"),
        ("--read-timeout", "nan"),
        ("--request-timeout", "inf"),
        ("--request-timeout", "3601"),
        ("--request-timeout", "soon"),
        ("--shutdown-timeout", "-1"),
        ("--max-queue", "-1"),
        ("--max-queue", "1.5"),
        ("--max-requests-per-connection", "-1"),
    ],
)
def test_a_bad_limit_is_a_usage_error(option: str, value: str) -> None:
    result = CliRunner().invoke(cli_app, ["serve", option, value])
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)  # a usage message, not a traceback
    assert f"Invalid value for '{option}'" in result.output


def test_the_cli_defaults_and_ceiling_are_the_servers() -> None:
    import inspect

    from inference import server
    from mlops.commands import serving

    defaults = {name: p.default for name, p in inspect.signature(serve).parameters.items()}
    limits = Limits()
    assert {name: defaults[name] for name in vars(limits)} == vars(limits)
    assert serving.MAX_SECONDS == server.MAX_SECONDS


@pytest.mark.parametrize(
    "bad",
    [
        {"read_timeout": 0.0},
        {"request_timeout": float("nan")},
        {"shutdown_timeout": -1.0},
        {"max_queue": -1},
        {"max_requests_per_connection": -1},
    ],
)
def test_limits_refuse_bad_values(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        Limits(**bad)


# --- worker processes ---------------------------------------------------------------------------


def _worker_of(client: httpx.Client, body: str) -> int:
    response = client.post("/invocations", content=body, headers=CSV)
    assert response.status_code == 200, response.text
    return int(response.headers["x-worker-pid"])


def _answering_workers(
    client: httpx.Client, body: str, until: Callable[[set[int]], bool], attempts: int
) -> list[int]:
    """Which worker answered each request, sent one by one until ``until`` holds."""
    seen: list[int] = []
    for _ in range(attempts):
        seen.append(_worker_of(client, body))
        if until(set(seen)):
            return seen
    raise AssertionError(f"after {attempts} requests, only workers {set(seen)} answered")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_after_a_worker_is_replaced_kept_alive_clients_reach_the_replacement(
    model_dir: Path, body: str, tmp_path: Path
) -> None:
    options = ["--max-requests-per-connection", "5"]
    with (
        serve_in_subprocess(
            model_dir, workers=2, capture_dir=tmp_path / "capture", options=options
        ) as server,
        httpx.Client(base_url=server.url, timeout=SAFETY) as client,
    ):
        before = _answering_workers(client, body, lambda pids: len(pids) == 2, 2000)
        # Crash the worker that did not answer last, so the client's kept-alive connection
        # is to the survivor, as every connection ends up after a crash.
        survivor = before[-1]
        crashed = next(pid for pid in before if pid != survivor)
        os.kill(crashed, signal.SIGKILL)
        # The same client, which never reconnects of its own accord: only the server's
        # Connection: close on every fifth answer sends it to the listening socket again.
        after = _answering_workers(client, body, lambda pids: len(pids) == 2, 6000)
    assert survivor in after and crashed not in after  # so the other one is the replacement
    assert server.returncode == 0, server.errors
    assert len(_captured(tmp_path / "capture")) == len(before) + len(after)


def test_sigterm_under_load_stops_cleanly_and_every_answer_is_captured(
    model_dir: Path, test_rows: pd.DataFrame, tmp_path: Path
) -> None:
    big = pd.concat([test_rows] * 4).iloc[:1000].to_csv(index=False, header=False)
    statuses: list[int] = []
    enough = threading.Event()

    def client_loop(url: str) -> None:
        with httpx.Client(base_url=url, timeout=SAFETY) as client:
            while True:
                try:
                    statuses.append(
                        client.post("/invocations", content=big, headers=CSV).status_code
                    )
                except httpx.HTTPError:  # the server stopped listening
                    return
                if len(statuses) >= 16:
                    enough.set()

    with serve_in_subprocess(model_dir, workers=2, capture_dir=tmp_path / "capture") as server:
        clients = [threading.Thread(target=client_loop, args=(server.url,)) for _ in range(8)]
        for thread in clients:
            thread.start()
        assert enough.wait(SAFETY)
        server.process.send_signal(signal.SIGTERM)
        for thread in clients:
            thread.join(SAFETY)
        server.process.wait(SAFETY)
    assert server.returncode == 0, server.errors
    assert set(statuses) == {200}
    assert len(_captured(tmp_path / "capture")) >= len(statuses)


def test_shutdown_kills_a_worker_stuck_past_the_deadline(model_dir: Path, body: str) -> None:
    with (
        serve_in_subprocess(model_dir, workers=2, options=["--shutdown-timeout", "1"]) as server,
        httpx.Client(base_url=server.url, timeout=SAFETY) as client,
    ):
        stuck = _worker_of(client, body)
        os.kill(stuck, signal.SIGSTOP)  # ignores SIGTERM from here on, as a hung worker does
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(SAFETY)
    assert server.returncode == 0, server.errors
    assert _gone(stuck)
    assert f"worker {stuck} still running" in server.errors
