"""Load the served model itself from its directory or ``model.tar.gz`` (local or ``s3://``).

The archive is unpacked with training.archive's "data" filter and the model unpickled only
after its bytes hash to what its manifest records (training.manifest), as the evaluation
job does. The baseline statistics and feature order come from the same directory.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitoring import baseline as baselines
from training import manifest, uri
from training.archive import extract_tar_gz
from training.paths import BASELINE_FILE, MANIFEST_FILE


class ArchiveError(Exception):
    """The model cannot be fetched, unpacked or trusted; a caller error (exit code 2)."""


@dataclass(frozen=True)
class LoadedModel:
    source: str
    model: Any  # the fitted scikit-learn Pipeline
    baseline: baselines.Baseline  # feature order and types, for the capture parser


def load(
    model_data: str, *, region: str | None = None, endpoint_url: str | None = None
) -> LoadedModel:
    """The model at ``model_data``: a model directory or a ``model.tar.gz``, local or S3."""
    with tempfile.TemporaryDirectory(prefix="served-model-") as scratch:
        directory = _directory(model_data, Path(scratch), region, endpoint_url)
        try:
            model = manifest.load_verified_model(directory)
            document = json.loads((directory / BASELINE_FILE).read_text(encoding="utf-8"))
            manifest_document = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
        except manifest.ModelIntegrityError as exc:
            raise ArchiveError(str(exc)) from None
        except FileNotFoundError as exc:
            raise ArchiveError(
                f"{model_data}: the model holds no {Path(exc.filename).name}"
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ArchiveError(f"{model_data}: cannot load the model ({exc})") from None
    try:
        baseline = baselines.parse(document, manifest_document, model_data)
    except baselines.BaselineError as exc:
        raise ArchiveError(str(exc)) from None
    return LoadedModel(model_data, model, baseline)


def _directory(source: str, scratch: Path, region: str | None, endpoint_url: str | None) -> Path:
    if uri.is_s3(source):
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        client = boto3.client("s3", region_name=region, endpoint_url=endpoint_url)
        try:
            data = uri.read_bytes(source, s3=client)
        except (ClientError, BotoCoreError, uri.UriError) as exc:
            raise ArchiveError(f"{source}: cannot read it: {exc}") from None
        archive = scratch / "model.tar.gz"
        archive.write_bytes(data)
        return _unpack(archive, scratch / "model", source)
    path = Path(source)
    if path.is_dir():
        nested = path / "model.tar.gz"
        return _unpack(nested, scratch / "model", source) if nested.is_file() else path
    if path.is_file():
        return _unpack(path, scratch / "model", source)
    raise ArchiveError(f"{source}: no such model directory or archive")


def _unpack(archive: Path, dest: Path, source: str) -> Path:
    import tarfile

    try:
        return extract_tar_gz(archive, dest)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ArchiveError(f"{source}: not a readable model.tar.gz ({exc})") from None
