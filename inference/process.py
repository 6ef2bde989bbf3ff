"""Run `mlops serve` as a separate process, for benchmarks, tests and the local demo."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from inference.server import free_port


@dataclass
class ServerProcess:
    url: str
    process: subprocess.Popen[str]
    output: str = field(default="", init=False)
    errors: str = field(default="", init=False)

    @property
    def returncode(self) -> int | None:
        return self.process.returncode


def _wait_until_up(server: ServerProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            _, errors = server.process.communicate()
            raise RuntimeError(f"mlops serve exited with {server.process.returncode}: {errors}")
        try:
            with urllib.request.urlopen(f"{server.url}/ping", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"mlops serve did not answer /ping within {timeout:.0f} s")


@contextlib.contextmanager
def serve_in_subprocess(
    model: Path,
    *,
    workers: int,
    capture_dir: Path | None = None,
    port: int | None = None,
    startup_timeout: float = 60,
    stop_timeout: float = 60,
    options: Sequence[str] = (),
) -> Iterator[ServerProcess]:
    """Start the server, wait for /ping, and stop it with SIGINT (Ctrl-C) on exit.

    ``options`` are more `mlops serve` options, such as ``["--max-queue", "8"]``. A server
    still running ``stop_timeout`` s after SIGINT is killed with its workers, and that fails.
    """
    port = port or free_port()
    command = [sys.executable, "-m", "mlops.cli", "serve", "--model-dir", str(model)]
    command += ["--port", str(port), "--workers", str(workers), *options]
    if capture_dir is not None:
        command += ["--capture-dir", str(capture_dir)]
    # A session of its own: if it ever has to be killed, its workers go with it.
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    server = ServerProcess(f"http://127.0.0.1:{port}", process)
    try:
        _wait_until_up(server, startup_timeout)
        yield server
    finally:
        _stop(server, stop_timeout)


def _stop(server: ServerProcess, timeout: float) -> None:
    process = server.process
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        server.output, server.errors = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        server.output, server.errors = process.communicate()
        raise
