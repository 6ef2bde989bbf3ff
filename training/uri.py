"""Read and write files at a local path or an ``s3://bucket/key`` URI with one API."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def join(base: str, *parts: str) -> str:
    if is_s3(base):
        return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])
    return str(Path(base, *parts))


class UriError(ValueError):
    """An s3:// URI without a bucket."""


def split(uri: str) -> tuple[str, str]:
    """(bucket, key) of an s3:// URI; the key may be empty (a whole bucket)."""
    parsed = urlparse(uri)
    if not parsed.netloc:
        raise UriError(f"{uri!r} has no bucket; expected s3://bucket/key")
    return parsed.netloc, parsed.path.lstrip("/")


def _s3() -> Any:
    import boto3

    return boto3.client("s3")


def write_bytes(uri: str, data: bytes, *, s3: Any | None = None) -> None:
    """``s3``: a boto3 S3 client to use (for a region or endpoint); default: a plain one."""
    if is_s3(uri):
        bucket, key = split(uri)
        # No explicit SSE header: the bucket's default (the stack's KMS key) applies, and
        # the bucket policy rejects any other encryption header.
        (s3 or _s3()).put_object(Bucket=bucket, Key=key, Body=data)
        return
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def read_bytes(uri: str, *, s3: Any | None = None) -> bytes:
    if is_s3(uri):
        bucket, key = split(uri)
        body: bytes = (s3 or _s3()).get_object(Bucket=bucket, Key=key)["Body"].read()
        return body
    return Path(uri).read_bytes()


def exists(uri: str) -> bool:
    if is_s3(uri):
        from botocore.exceptions import ClientError

        bucket, key = split(uri)
        try:
            _s3().head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise
        return True
    return Path(uri).exists()
