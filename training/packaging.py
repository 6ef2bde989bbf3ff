"""Build the code bundle (``sourcedir.tar.gz``) SageMaker jobs run, deterministically.

The archive holds the ``training`` and ``monitoring`` packages plus one tiny launcher per
entry point at its root (``train.py``, ``process.py``, ``evaluate.py``, ``publish_card.py``,
``drift.py``, ``attribution.py``, ``quality.py``), which is where SageMaker's script mode
expects them. Entries are sorted and carry fixed metadata,
and gzip's header has no timestamp, so the archive's hash changes exactly when the code
does: the infrastructure can put that hash in the S3 key and get a stable,
content-addressed URI.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from training.archive import deterministic_tar_gz
from training.hashing import sha256_file

PACKAGE_DIR = Path(__file__).resolve().parent
# The serving handler travels with the training code: train.py copies it into the model
# directory as code/inference.py, so the model.tar.gz a training job writes is servable.
HANDLER_SOURCE = PACKAGE_DIR.parent / "inference" / "handler.py"
HANDLER_MEMBER = "inference/handler.py"
# The monitoring jobs run from the same bundle (bundle_runner.py drift.py ...).
MONITORING_DIR = PACKAGE_DIR.parent / "monitoring"
# The batch split job (bundle_runner.py batch_split.py ...) and the contract it shares with
# monitoring/batch_capture.py.
BATCH_SOURCES = tuple(
    HANDLER_SOURCE.parent / name for name in ("batch_contract.py", "batch_split.py")
)
# SageMaker's scikit-learn container image tag, and the scikit-learn inside it. Models are
# trained with exactly this scikit-learn (pinned in pyproject) so they load in the image.
FRAMEWORK_VERSION = "1.9-0"
CONTAINER_SKLEARN = "1.9.0"
CONTAINER_PYTHON = "3.12"
CONTAINER_REQUIREMENTS = PACKAGE_DIR / "container-requirements.txt"
ENTRY_POINTS = {
    "process.py": "training.process",
    "train.py": "training.train",
    "evaluate.py": "training.evaluate",
    "publish_card.py": "training.publish_card",
    "drift.py": "monitoring.drift",
    "attribution.py": "monitoring.attribution",
    "quality.py": "monitoring.quality",
    "batch_split.py": "inference.batch_split",
}

LAUNCHER = '''"""SageMaker entry point: runs {module} with the arguments SageMaker passes."""

import runpy

from training.bootstrap import ensure_container_packages

# The bundle's wheels (pandera, smclarify, shap) first: modules import them lazily.
ensure_container_packages()
runpy.run_module("{module}", run_name="__main__", alter_sys=True)
'''


def bundle_sources() -> tuple[Path, ...]:
    """The files and folders whose content the bundle carries (wheels aside)."""
    return (PACKAGE_DIR, MONITORING_DIR, HANDLER_SOURCE, HANDLER_SOURCE.parent / "__init__.py",
            *BATCH_SOURCES)  # fmt: skip


class FrameworkMismatchError(RuntimeError):
    """The scikit-learn installed here is not the one the container runs."""


def framework_version() -> str:
    """The container tag to use, after checking models trained here will load there."""
    installed = metadata.version("scikit-learn")
    if installed != CONTAINER_SKLEARN:
        raise FrameworkMismatchError(
            f"scikit-learn {installed} is installed, but the {FRAMEWORK_VERSION} container "
            f"runs {CONTAINER_SKLEARN}; install the pinned version (make) before packaging"
        )
    return FRAMEWORK_VERSION


@dataclass(frozen=True)
class Bundle:
    path: Path
    sha256: str
    entries: tuple[str, ...]


def bundle_entries(wheelhouse: Path | None = None) -> dict[str, bytes]:
    """Archive member name -> content, for everything the bundle contains."""
    entries: dict[str, bytes] = {
        name: LAUNCHER.format(module=module).encode() for name, module in ENTRY_POINTS.items()
    }
    for path in PACKAGE_DIR.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in {".py", ".txt"}:
            entries[f"training/{path.relative_to(PACKAGE_DIR).as_posix()}"] = path.read_bytes()
    for path in MONITORING_DIR.rglob("*.py"):
        if path.is_file() and "__pycache__" not in path.parts:
            entries[f"monitoring/{path.relative_to(MONITORING_DIR).as_posix()}"] = path.read_bytes()
    entries[HANDLER_MEMBER] = HANDLER_SOURCE.read_bytes()
    entries["inference/__init__.py"] = (HANDLER_SOURCE.parent / "__init__.py").read_bytes()
    for path in BATCH_SOURCES:
        entries[f"inference/{path.name}"] = path.read_bytes()
    if wheelhouse is not None:
        wheels = sorted(wheelhouse.glob("*.whl"))
        if not wheels:
            raise FileNotFoundError(f"no wheels in {wheelhouse}; run `make wheelhouse` first")
        for wheel in wheels:
            entries[f"wheels/{wheel.name}"] = wheel.read_bytes()
        # SageMaker's training toolkit also installs requirements.txt; these options keep
        # pip offline, which network-isolated jobs require.
        entries["requirements.txt"] = (
            b"--no-index\n--find-links wheels\n" + CONTAINER_REQUIREMENTS.read_bytes()
        )
    return entries


def build_sourcedir(dest: Path, wheelhouse: Path | None = None) -> Bundle:
    entries = bundle_entries(wheelhouse)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(deterministic_tar_gz(entries))
    return Bundle(dest, sha256_file(dest), tuple(sorted(entries)))
