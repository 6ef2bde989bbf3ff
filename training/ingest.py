"""Ingest: write the shipped dataset as versioned raw CSV, addressed by its content hash.

Layout, identical for a folder and an S3 prefix::

    <dest>/raw/mlc_churn/<sha256[:16]>/churn.csv
    <dest>/raw/mlc_churn/<sha256[:16]>/manifest.json
    <dest>/raw/mlc_churn/latest.json      -> points at the newest version

A version is immutable: ingesting the same content again writes nothing new.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import pandas as pd

from training import dataset as ds
from training import uri
from training.hashing import sha256_bytes

DATASET_NAME = "mlc_churn"
FILE_NAME = "churn.csv"


@dataclass(frozen=True)
class RawVersion:
    uri: str
    sha256: str
    rows: int
    source: str
    created: bool


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    # Fixed line endings and float formatting, so equal data always hashes equally.
    text: str = frame.to_csv(index=False, lineterminator="\n")
    return text.encode("utf-8")


def ingest(dest: str, frame: pd.DataFrame | None = None, source: str = ds.SOURCE) -> RawVersion:
    frame = ds.load_shipped() if frame is None else frame
    data = to_csv_bytes(frame)
    digest = sha256_bytes(data)
    version_dir = uri.join(dest, version_key(data))
    data_uri = uri.join(version_dir, FILE_NAME)

    created = not uri.exists(data_uri)
    if created:
        uri.write_bytes(data_uri, data)
        uri.write_bytes(uri.join(version_dir, "manifest.json"), manifest_json(data, frame, source))
    version = RawVersion(data_uri, digest, len(frame), source, created)
    uri.write_bytes(uri.join(dest, "raw", DATASET_NAME, "latest.json"), _json(asdict(version)))
    return version


def version_key(data: bytes) -> str:
    """Where a raw version lives, relative to the destination: one place for the layout."""
    return f"raw/{DATASET_NAME}/{sha256_bytes(data)[:16]}"


def manifest_json(data: bytes, frame: pd.DataFrame, source: str) -> bytes:
    """What a raw version's manifest.json holds; the stack uploads the same bytes."""
    manifest = {
        "dataset": DATASET_NAME,
        "source": source,
        "sha256": sha256_bytes(data),
        "rows": len(frame),
        "columns": list(frame.columns),
        "format": "csv",
    }
    return _json(manifest)


def latest(dest: str) -> RawVersion:
    pointer = json.loads(uri.read_bytes(uri.join(dest, "raw", DATASET_NAME, "latest.json")))
    return RawVersion(**pointer)


def _json(document: object) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")
