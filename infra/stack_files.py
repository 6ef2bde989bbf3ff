"""Files the stack uploads to S3: the code bundle, its processing launcher and the dataset.

Each is built reproducibly into the build folder under its content hash, and its S3 key
carries that hash. So the pipeline definition names URIs that change exactly when code or
data do, a preview of unchanged code shows no diff, and objects are never overwritten.
Building them writes local files only; nothing here talks to AWS.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from infra.source_commit import code_commit
from pipelines.spec import RUNNER_NAME, SOURCEDIR_NAME, CodeLocation
from training import bundle_runner
from training.archive import deterministic_tar_gz
from training.hashing import sha256_bytes
from training.packaging import bundle_entries, bundle_sources

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR_ENV = "MLOPS_BUILD_DIR"
# Hash characters in keys and folder names: as in training.ingest, plenty to be unique.
HASH_CHARS = 16


class StackFilesError(Exception):
    """A file the stack uploads cannot be built; the message says how to fix it."""


@dataclass(frozen=True)
class StackFile:
    path: Path
    key: str
    sha256: str
    content_type: str


@dataclass(frozen=True)
class CodeFiles:
    sourcedir: StackFile
    runner: StackFile
    # The last commit that changed the bundled code (infra.source_commit); None outside git.
    commit: str | None = None

    def location(self, artifacts_bucket: str) -> CodeLocation:
        """Where the uploaded objects are, as the pipeline definitions name them."""
        return CodeLocation(
            sourcedir_uri=f"s3://{artifacts_bucket}/{self.sourcedir.key}",
            runner_uri=f"s3://{artifacts_bucket}/{self.runner.key}",
            commit=self.commit,
        )


@dataclass(frozen=True)
class DatasetFiles:
    csv: StackFile
    manifest: StackFile

    @property
    def prefix(self) -> str:
        """The raw-data folder the pipeline's InputDataUri points at."""
        return self.csv.key.rsplit("/", 1)[0] + "/"


def build_dir() -> Path:
    return Path(os.environ.get(BUILD_DIR_ENV, REPO_ROOT / "build"))


def wheelhouse_dir() -> Path:
    return build_dir() / "wheelhouse"


def _write(data: bytes, key_dir: str, name: str, content_type: str) -> StackFile:
    """Written under ``<key_dir>/<sha[:16]>/<name>``."""
    return _write_at(data, f"{key_dir}/{sha256_bytes(data)[:HASH_CHARS]}", name, content_type)


def _write_at(data: bytes, key_dir: str, name: str, content_type: str) -> StackFile:
    key = f"{key_dir}/{name}"
    path = build_dir() / "stack-files" / key
    digest = sha256_bytes(data)
    # Rewritten only when missing or different, so a preview leaves the folder as it was.
    if not path.is_file() or sha256_bytes(path.read_bytes()) != digest:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return StackFile(path, key, digest, content_type)


def build_code() -> CodeFiles:
    """sourcedir.tar.gz with the container wheels, and the launcher next to it."""
    wheelhouse = wheelhouse_dir()
    if not any(wheelhouse.glob("*.whl")):
        raise StackFilesError(
            f"no container wheels in {wheelhouse}: network-isolated processing jobs install "
            "pandera from the code bundle. Run `make wheelhouse` (or set "
            f"{BUILD_DIR_ENV} to a folder whose wheelhouse/ holds them)"
        )
    bundle = deterministic_tar_gz(bundle_entries(wheelhouse))
    runner = Path(bundle_runner.__file__).read_bytes()
    return CodeFiles(
        sourcedir=_write(bundle, "code/sourcedir", SOURCEDIR_NAME, "application/gzip"),
        runner=_write(runner, "code/runner", RUNNER_NAME, "text/x-python"),
        commit=code_commit(REPO_ROOT, bundle_sources()),
    )


def build_dataset() -> DatasetFiles:
    """The shipped dataset in exactly the layout training.ingest writes."""
    from training import dataset, ingest

    frame = dataset.load_shipped()
    data = ingest.to_csv_bytes(frame)
    version_dir = ingest.version_key(data)
    manifest = ingest.manifest_json(data, frame, dataset.SOURCE)
    csv = _write_at(data, version_dir, ingest.FILE_NAME, "text/csv")
    return DatasetFiles(
        csv=csv, manifest=_write_at(manifest, version_dir, "manifest.json", "application/json")
    )
