"""Model archives and evaluation reports in S3: read, verify and copy them."""

from __future__ import annotations

import hashlib
import json
import tarfile
import tempfile
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from training.paths import MANIFEST_FILE

CHUNK = 1 << 20


class ArtifactError(Exception):
    """An artifact is missing, unreadable, or not what its record says."""


@dataclass(frozen=True)
class S3Uri:
    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> S3Uri:
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
            raise ArtifactError(f"{uri!r} is not an s3://bucket/key URI")
        return cls(parsed.netloc, parsed.path.lstrip("/"))

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class VerifiedArchive:
    sha256: str
    model_sha256: str
    size_bytes: int


def read_json(s3: Any, uri: str) -> Any:
    location = S3Uri.parse(uri)
    try:
        body = s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read()
    except s3.exceptions.ClientError as exc:
        raise ArtifactError(f"cannot read {uri}: {_reason(exc)}") from None
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ArtifactError(f"{uri} is not JSON: {exc}") from None


def verify_archive(s3: Any, uri: str) -> VerifiedArchive:
    """Hash a model.tar.gz and check the model file inside against the manifest inside it.

    Streams the archive to a temporary file (archives can be large); reads members without
    extracting them, so a hostile archive cannot write anywhere.
    """
    location = S3Uri.parse(uri)
    digest = hashlib.sha256()
    with tempfile.TemporaryFile() as scratch:
        try:
            body = s3.get_object(Bucket=location.bucket, Key=location.key)["Body"]
        except s3.exceptions.ClientError as exc:
            raise ArtifactError(f"cannot read {uri}: {_reason(exc)}") from None
        size = 0
        while chunk := body.read(CHUNK):
            digest.update(chunk)
            scratch.write(chunk)
            size += len(chunk)
        scratch.seek(0)
        model_sha256 = _check_manifest(scratch, uri)
    return VerifiedArchive(sha256=digest.hexdigest(), model_sha256=model_sha256, size_bytes=size)


def _check_manifest(archive: Any, uri: str) -> str:
    try:
        with tarfile.open(fileobj=archive, mode="r:gz") as tar:
            manifest = json.loads(_member(tar, MANIFEST_FILE, uri))
            model_file = manifest["model"]["file"]
            expected = manifest["model"]["sha256"]
            actual = hashlib.sha256(_member(tar, model_file, uri)).hexdigest()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArtifactError(f"{uri} is not a readable model archive: {exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{uri} has no usable {MANIFEST_FILE}: {exc!r}") from None
    if actual != expected:
        raise ArtifactError(
            f"{model_file} in {uri} has SHA-256 {actual}, but its manifest says {expected}"
        )
    return actual


def _member(tar: tarfile.TarFile, name: str, uri: str) -> bytes:
    for candidate in (name, f"./{name}"):
        try:
            member = tar.getmember(candidate)
        except KeyError:
            continue
        handle = tar.extractfile(member)
        if handle is not None:
            return handle.read()
    raise ArtifactError(f"{uri} has no {name}")


def copy(s3: Any, source: str, destination: S3Uri) -> None:
    """Server-side copy; the destination bucket's default encryption (its stack key) applies."""
    origin = S3Uri.parse(source)
    try:
        s3.copy({"Bucket": origin.bucket, "Key": origin.key}, destination.bucket, destination.key)
    except s3.exceptions.ClientError as exc:
        raise ArtifactError(f"cannot copy {source} to {destination}: {_reason(exc)}") from None


def _reason(exc: Any) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
