"""Run `mlops serve` as a separate process, for benchmarks, tests and the local demo."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
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
) -> Iterator[ServerProcess]:
    """Start the server, wait for /ping, and stop it with SIGINT (Ctrl-C) on exit."""
    port = port or free_port()
    command = [sys.executable, "-m", "mlops.cli", "serve", "--model-dir", str(model)]
    command += ["--port", str(port), "--workers", str(workers)]
    if capture_dir is not None:
        command += ["--capture-dir", str(capture_dir)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    server = ServerProcess(f"http://127.0.0.1:{port}", process)
    try:
        _wait_until_up(server, startup_timeout)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        server.output, server.errors = process.communicate(timeout=30)
