"""Run the handler on requests in child processes that the OS stops if one costs too much.

Tests may not assert on wall-clock time, yet "a hostile body is refused quickly, in bounded
memory" must be checked. So each request runs in a process forked from a helper that has
loaded the model (as a serving worker has), under RLIMIT_CPU (the kernel kills it after
``cpu_seconds`` of CPU) and RLIMIT_AS (allocations past the helper's own address space plus
``extra_memory`` fail). A request that parses pathologically then dies or raises, and its
outcome says so; one that is refused properly exits normally with its 4xx. Each outcome also
records the child's CPU time and peak resident set size (``getrusage`` of the child).

``run_bounded`` starts the helper (this file, run as a script) in the interpreter running
the tests; the ``PYTHONPATH`` it is given comes first, so another copy of ``inference``
can be measured the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# Enough for any answer worth reading; the full length is kept in message_chars.
MESSAGE_KEPT = 4000


@dataclass(frozen=True)
class Request:
    id: str
    body: bytes
    content_type: str | None
    accept: str | None = None


@dataclass(frozen=True)
class Outcome:
    id: str
    # The refusal's status, 200 for an answer, None when the child raised or was killed.
    status: int | None
    message: str
    message_chars: int
    cpu_seconds: float
    peak_rss_bytes: int
    # Resident set size the child started with: the helper's (the loaded model, libraries).
    baseline_rss_bytes: int

    @property
    def extra_rss_bytes(self) -> int:
        return max(0, self.peak_rss_bytes - self.baseline_rss_bytes)


def run_bounded(
    model_dir: Path,
    requests: Sequence[Request],
    *,
    cpu_seconds: int = 5,
    extra_memory: int = 1536 * 2**20,
) -> list[Outcome]:
    """Each request through ``handler.transform`` in its own limited child process."""
    with tempfile.TemporaryDirectory(prefix="bounded-handler-") as scratch:
        work = Path(scratch)
        manifest = []
        for number, request in enumerate(requests):
            (work / f"{number}.body").write_bytes(request.body)
            manifest.append(
                {"id": request.id, "content_type": request.content_type, "accept": request.accept}
            )
        (work / "requests.json").write_text(json.dumps(manifest))
        paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        environment = os.environ | {
            "PYTHONPATH": os.pathsep.join([*paths, str(REPO)]),
            # One thread per library, as the helper forks: threads do not survive a fork.
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
        }
        helper = [sys.executable, __file__, str(model_dir), str(work)]
        helper += [str(cpu_seconds), str(extra_memory)]
        subprocess.run(helper, env=environment, check=True, cwd=REPO)
        outcomes = json.loads((work / "outcomes.json").read_text())
    return [Outcome(**outcome) for outcome in outcomes]


# --- the helper process --------------------------------------------------------------------


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _child(
    handler: Any,
    model: Any,
    request: dict[str, Any],
    body: bytes,
    limits: tuple[int, int],
    write: int,
) -> None:
    cpu_seconds, address_space = limits
    # Soft limit: SIGXCPU, which kills; the hard limit a second later is SIGKILL.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    # What the child starts with resident (the helper's pages), in the peak's own terms.
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    try:
        handler.transform(model, body, request["content_type"], request["accept"])
        status, message = 200, ""
    except handler.RequestError as refused:
        status, message = refused.status_code, refused.message
    except BaseException as failure:  # any other ending is what the test is looking for
        status, message = None, f"{type(failure).__name__}: {failure}"
    result = {
        "status": status,
        "message": message[:MESSAGE_KEPT],
        "message_chars": len(message),
        "baseline_rss_bytes": baseline,
    }
    with os.fdopen(write, "wb") as pipe:
        pipe.write(json.dumps(result).encode())


def _run_one(
    handler: Any, model: Any, request: dict[str, Any], body: bytes, limits: tuple[int, int]
) -> dict[str, Any]:
    read, write = os.pipe()
    helper_rss = _status_kib("VmRSS") * 1024  # the baseline of a child that cannot report
    pid = os.fork()
    if pid == 0:  # the child: never returns into the helper's own code
        code = 0
        try:
            os.close(read)
            _child(handler, model, request, body, limits, write)
        except BaseException:  # e.g. a MemoryError while reporting
            code = 1
        os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        reported = pipe.read()
    _, wait_status, usage = os.wait4(pid, 0)
    measured = {
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_bytes": usage.ru_maxrss * 1024,
    }
    if os.WIFSIGNALED(wait_status) or not reported:
        ended = (
            f"killed by {signal.Signals(os.WTERMSIG(wait_status)).name}"
            if os.WIFSIGNALED(wait_status)
            else f"exited with {os.WEXITSTATUS(wait_status)} without reporting"
        )
        unreported = {"status": None, "message": ended, "message_chars": len(ended)}
        return {"id": request["id"], **unreported, "baseline_rss_bytes": helper_rss, **measured}
    return {"id": request["id"], **json.loads(reported), **measured}


def _helper(argv: list[str]) -> None:
    model_dir, work, cpu_seconds, extra_memory = argv
    from inference import handler

    model = handler.model_fn(model_dir)
    requests = json.loads((Path(work) / "requests.json").read_text())
    # Warm up as a serving worker is: lazy imports and first-call caches are paid once.
    for warm_up in (b"x,y\n1,2\n", b'{"instances": [[1]]}'):
        for content_type in ("text/csv", "application/json"):
            with contextlib.suppress(handler.RequestError):
                handler.transform(model, warm_up, content_type, None)
    address_space = _status_kib("VmSize") * 1024 + int(extra_memory)
    limits = (int(cpu_seconds), address_space)
    outcomes = []
    for number, request in enumerate(requests):
        body = (Path(work) / f"{number}.body").read_bytes()
        outcomes.append(_run_one(handler, model, request, body, limits))
    (Path(work) / "outcomes.json").write_text(json.dumps([asdict(Outcome(**o)) for o in outcomes]))


if __name__ == "__main__":
    _helper(sys.argv[1:])
