"""Where each entry point reads and writes: SageMaker's locations, or local defaults.

SageMaker sets SM_* variables in training jobs and mounts processing inputs under
/opt/ml/processing. With neither present (a laptop), everything lives under
``runs/local`` in the working directory, laid out the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

LOCAL_ROOT = Path("runs") / "local"
PROCESSING_ROOT = Path("/opt/ml/processing")
# What a model directory holds (training.manifest writes them). Named here, where nothing
# heavy is imported, so readers such as `mlops promote` need not import scikit-learn.
MODEL_FILE = "model.joblib"
MANIFEST_FILE = "manifest.json"
BASELINE_FILE = "baseline.json"
# The commit of the code a job runs: jobs have no .git, so the stack sets it on every job
# (infra.source_commit) and the model manifest records it.
GIT_SHA_ENV = "MLOPS_GIT_SHA"


def from_env(variable: str, local_default: Path) -> Path:
    value = os.environ.get(variable)
    return Path(value) if value else local_default


def processing_or_local(container_path: str, local_default: Path) -> Path:
    """A processing job's mount point when running in one, else the local default."""
    return PROCESSING_ROOT / container_path if PROCESSING_ROOT.is_dir() else local_default


def local_processed(split: str) -> Path:
    return LOCAL_ROOT / "processed" / split
