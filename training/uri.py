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


def _split(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if not parsed.netloc:
        raise ValueError(f"{uri!r} has no bucket; expected s3://bucket/key")
    return parsed.netloc, parsed.path.lstrip("/")


def _s3() -> Any:
    import boto3

    return boto3.client("s3")


def write_bytes(uri: str, data: bytes) -> None:
    if is_s3(uri):
        bucket, key = _split(uri)
        # No explicit SSE header: the bucket's default (the stack's KMS key) applies, and
        # the bucket policy rejects any other encryption header.
        _s3().put_object(Bucket=bucket, Key=key, Body=data)
        return
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def read_bytes(uri: str) -> bytes:
    if is_s3(uri):
        bucket, key = _split(uri)
        body: bytes = _s3().get_object(Bucket=bucket, Key=key)["Body"].read()
        return body
    return Path(uri).read_bytes()


def exists(uri: str) -> bool:
    if is_s3(uri):
        from botocore.exceptions import ClientError

        bucket, key = _split(uri)
        try:
            _s3().head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise
        return True
    return Path(uri).exists()
