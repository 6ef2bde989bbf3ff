"""The model manifest: everything needed to say what a model is and how it was made."""

from __future__ import annotations

import io
import json
import os
import platform
import subprocess
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib

from training import dataset as ds
from training import paths
from training.features import Hyperparameters
from training.hashing import sha256_bytes, sha256_file, sha256_files
from training.paths import BASELINE_FILE, MANIFEST_FILE

LIBRARIES = ("scikit-learn", "pandas", "numpy", "scipy", "joblib")
PACKAGE_DIR = Path(__file__).resolve().parent


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def code_version() -> dict[str, str | None]:
    """The training package's own hash (works everywhere) and the git commit (where known)."""
    sources = [p for p in PACKAGE_DIR.rglob("*.py") if "__pycache__" not in p.parts]
    return {
        "package_sha256": sha256_files(sources, PACKAGE_DIR),
        # In a SageMaker job there is no .git; the pipeline passes the commit instead.
        "git_sha": os.environ.get(paths.GIT_SHA_ENV) or _git_head(),
    }


def _git_head() -> str | None:
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PACKAGE_DIR,
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip() or None


def build(
    *,
    model_path: Path,
    hyperparameters: Hyperparameters,
    data: dict[str, Any],
    validation_metrics: dict[str, float],
) -> dict[str, Any]:
    return {
        "manifest_version": 1,
        "model": {"file": model_path.name, "sha256": sha256_file(model_path), "format": "joblib"},
        "data": data,
        "code": code_version(),
        "libraries": library_versions(),
        "hyperparameters": asdict(hyperparameters),
        "seed": hyperparameters.seed,
        "features": {
            "categorical": list(ds.CATEGORICAL_FEATURES),
            "numeric": list(ds.NUMERIC_FEATURES),
        },
        "target": {"name": ds.TARGET, "positive": ds.POSITIVE_LABEL, "negative": ds.NEGATIVE_LABEL},
        "validation_metrics": validation_metrics,
        "baseline": BASELINE_FILE,
    }


def write_json(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read(model_dir: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((model_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    return loaded


class ModelIntegrityError(Exception):
    """The model file is not the one the manifest describes; it must not be unpickled."""


def load_verified_model(model_dir: Path) -> Any:
    """Unpickle the model only if its bytes hash to what the manifest records.

    Unpickling runs code, so the check comes first, on the very bytes that get loaded.
    """
    manifest = read(model_dir)
    model_path = model_dir / manifest["model"]["file"]
    data = model_path.read_bytes()
    actual = sha256_bytes(data)
    if actual != manifest["model"]["sha256"]:
        raise ModelIntegrityError(
            f"{model_path} has SHA-256 {actual}, but the manifest says "
            f"{manifest['model']['sha256']}; refusing to load it"
        )
    return joblib.load(io.BytesIO(data))
