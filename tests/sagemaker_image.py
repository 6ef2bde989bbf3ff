"""Run the kit inside SageMaker's scikit-learn 1.9-0 image, as closely as this machine allows.

What is real: the image's Python (3.12) and its exact packages (``make container-env`` builds
``.venv-container`` from the image's lock), its entry points (containers/sklearn/
image_entry.py makes the calls the image's own package makes), and its ``/opt/ml`` layout.
A private mount namespace binds a temporary folder over ``/opt``, so the absolute paths in
the stack's definitions (``/opt/ml/model/code``, ``/opt/ml/processing/...``) resolve
unchanged and nothing on the host is touched.

What differs: no Docker, so no Amazon Linux userland; no nginx in front of gunicorn (it
binds 127.0.0.1, so the test can reach it, which is also why the serving container keeps
the network and points pip's index at a closed local port instead: that fails the way an
isolated container does); jobs started with ``network=False`` get an empty network
namespace, as network isolation does. What a process writes into the image's virtualenv
goes to a copy-on-write layer of its own, as a container's writes do.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shlex
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
IMAGE_VENV = REPO / ".venv-container"
IMAGE_BIN = IMAGE_VENV / "bin"
IMAGE_PYTHON = IMAGE_BIN / "python"
ENTRY_DIR = REPO / "containers" / "sklearn"
# Nothing listens here: pip's requests are refused at once, as in a network-isolated job.
CLOSED_INDEX = "http://127.0.0.1:9/simple"


def require_image() -> Path:
    if not IMAGE_PYTHON.exists():
        pytest.fail(
            f"{IMAGE_PYTHON} is missing: run `make container-env` (make test does) to build the "
            "scikit-learn image's virtualenv"
        )
    return IMAGE_PYTHON


@dataclass(frozen=True)
class ImageFilesystem:
    """A temporary folder that processes started through ``command`` see as ``/opt``."""

    opt: Path

    @property
    def ml(self) -> Path:
        """Where the host sees what the image sees as /opt/ml."""
        return self.opt / "ml"

    @property
    def image_changes(self) -> Path:
        """What processes started with ``writable_image`` wrote into the image's virtualenv."""
        return self.opt.with_name("image-layer") / "upper"

    def command(
        self,
        argv: list[str],
        *,
        writable_image: bool = False,
        hosts: Sequence[str] = (),
        network: bool = True,
    ) -> list[str]:
        """``argv`` in its own mount table; the binds live and die with the process.

        ``writable_image``: the image's virtualenv becomes copy-on-write (an overlay whose
        upper layer is ``image_changes``), as a container's own layer is, so a job's
        ``pip install`` lands where the image's would without touching .venv-container.
        ``hosts``: names that resolve to 127.0.0.1, as ``algo-1`` does in a training job.
        ``network=False``: a network namespace with nothing in it, as network isolation is.
        """
        mounts = ['mount --bind "$0" /opt']
        if writable_image:
            upper, work = self.image_changes, self.image_changes.with_name("work")
            upper.mkdir(parents=True, exist_ok=True)
            work.mkdir(parents=True, exist_ok=True)
            layers = f"lowerdir={IMAGE_VENV},upperdir={upper},workdir={work}"
            mounts.append(f"mount -t overlay overlay -o {shlex.quote(layers)} {IMAGE_VENV}")
        if hosts:
            hosts_file = self.opt.with_name("hosts")
            names = "".join(f"127.0.0.1\t{name}\n" for name in hosts)
            hosts_file.write_text(Path("/etc/hosts").read_text() + names)
            mounts.append(f"mount --bind {shlex.quote(str(hosts_file))} /etc/hosts")
        script = " && ".join([*mounts, 'exec "$@"'])
        isolation = [] if network else ["--net"]
        # Without root, a user namespace (root only inside it) may mount all the same.
        user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
        return ["unshare", *user, "--mount", "--propagation", "private", *isolation, "sh", "-c",
                script, str(self.opt), *argv]  # fmt: skip

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """A clean environment: nothing of this machine's pip or AWS configuration leaks in."""
        home = self.opt / "home"
        home.mkdir(parents=True, exist_ok=True)
        return {
            "PATH": f"{IMAGE_BIN}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPATH": str(ENTRY_DIR),
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_INDEX_URL": CLOSED_INDEX,
            "PIP_RETRIES": "0",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            **(extra or {}),
        }


def image_filesystem(tmp_path: Path) -> ImageFilesystem:
    require_image()
    opt = tmp_path / "opt"
    (opt / "ml").mkdir(parents=True, exist_ok=True)
    return ImageFilesystem(opt)


@dataclass
class ServingContainer:
    url: str
    process: subprocess.Popen[str]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _wait_for_ping(container: ServingContainer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if container.process.poll() is not None:
            raise RuntimeError(
                f"the serving container exited with {container.process.returncode}:\n"
                f"{container.output()[-4000:]}"
            )
        try:
            with urllib.request.urlopen(f"{container.url}/ping", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"no /ping answer within {timeout:.0f} s:\n{container.output()[-4000:]}")


@contextlib.contextmanager
def serving_container(
    fs: ImageFilesystem,
    model_environment: Mapping[str, str],
    *,
    port: int,
    workers: int = 1,
    startup_timeout: float = 90,
) -> Iterator[ServingContainer]:
    """The image's single-model server for whatever is unpacked in ``fs.ml / "model"``.

    ``model_environment`` is the container environment the stack gives the model (the
    Model resource's, or the registered package's), applied as SageMaker applies it.
    """
    environment = fs.environment(
        {**model_environment, "SAGEMAKER_MODEL_SERVER_WORKERS": str(workers)}
    )
    serve = [str(IMAGE_PYTHON), str(ENTRY_DIR / "image_entry.py"), "serve", str(port)]
    log = fs.opt / "serving.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            # Copy-on-write image: the start-up's pip install of code/ lands in the image's
            # site-packages, as in the container, and leaves .venv-container as built.
            fs.command(serve, writable_image=True),
            cwd=fs.opt,
            env=environment,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    container = ServingContainer(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_for_ping(container, startup_timeout)
        yield container
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str | None
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class MultiModelServer:
    """The image's multi-model stack (handler service + Transformer) for one model."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process

    def invoke(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        assert self.process.stdin is not None and self.process.stdout is not None
        request = {"body": base64.b64encode(body).decode("ascii"), "headers": dict(headers)}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the multi-model server exited with {self.process.poll()}")
        reply = json.loads(line)
        return Reply(reply["status"], reply["content_type"], base64.b64decode(reply["body"]))


@contextlib.contextmanager
def multi_model_server(
    fs: ImageFilesystem, model_environment: Mapping[str, str]
) -> Iterator[MultiModelServer]:
    """The model unpacked in ``fs.ml / "model"``, loaded as a multi-model endpoint loads it."""
    log = fs.opt / "multi-model.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            fs.command([str(IMAGE_PYTHON), str(ENTRY_DIR / "multi_model.py"), "/opt/ml/model"]),
            cwd=fs.opt,
            env=fs.environment(model_environment),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=sink,
            text=True,
        )
    try:
        yield MultiModelServer(process)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
