"""Build ``model.tar.gz`` for SageMaker hosting, deterministically.

Layout, as the scikit-learn serving container expects it when the model carries its own
code: the model, manifest and baseline at the root, and the handler as
``code/inference.py`` (SAGEMAKER_PROGRAM=inference.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from inference import handler
from training.archive import deterministic_tar_gz, extract_tar_gz

MODEL_FILES = ("model.joblib", "manifest.json", "baseline.json")
HANDLER_ARCNAME = "code/inference.py"


@dataclass(frozen=True)
class ModelArchive:
    path: Path
    sha256: str
    members: tuple[str, ...]


def archive_members(model_dir: Path) -> dict[str, bytes]:
    missing = [name for name in MODEL_FILES if not (model_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{model_dir} lacks {', '.join(missing)}; train a model first")
    members = {name: (model_dir / name).read_bytes() for name in MODEL_FILES}
    members[HANDLER_ARCNAME] = Path(handler.__file__).read_bytes()
    return members


def build_model_archive(model_dir: Path, dest: Path) -> ModelArchive:
    members = archive_members(model_dir)
    data = deterministic_tar_gz(members)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    return ModelArchive(dest, hashlib.sha256(data).hexdigest(), tuple(sorted(members)))


def extract_model_archive(archive: Path, dest: Path) -> Path:
    """Unpack like SageMaker does into /opt/ml/model."""
    return extract_tar_gz(archive, dest)
