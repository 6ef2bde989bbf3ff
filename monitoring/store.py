"""Find the capture files of a time window in a local folder or an S3 prefix.

SageMaker writes capture as ``<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl``. Above
the year level the tree is small (endpoints, variants) and is walked with delimiter
listings; below it, only the hour folders that overlap the window are listed, so a job over
a day never scans months of capture.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from training import uri

YEAR = re.compile(r"^\d{4}$")
# endpoint / variant: two levels at most above the dated folders
MAX_DEPTH = 3


class CaptureNotFoundError(Exception):
    """The capture location does not exist or is not a capture tree; a caller error."""


class Store(Protocol):
    def children(self, prefix: str) -> list[str]:
        """Names of the immediate sub-folders of ``prefix``."""

    def files(self, prefix: str) -> list[str]:
        """Every file below ``prefix`` (a dated hour folder, so a small listing)."""

    def lines(self, name: str) -> Iterator[bytes]:
        """The file's lines, streamed."""

    def join(self, prefix: str, child: str) -> str: ...


@dataclass
class LocalStore:
    def children(self, prefix: str) -> list[str]:
        path = Path(prefix)
        return sorted(p.name for p in path.iterdir() if p.is_dir()) if path.is_dir() else []

    def files(self, prefix: str) -> list[str]:
        path = Path(prefix)
        if not path.is_dir():
            return []
        return sorted(str(p) for p in path.rglob("*.jsonl") if p.is_file())

    def lines(self, name: str) -> Iterator[bytes]:
        with open(name, "rb") as handle:
            yield from handle

    def join(self, prefix: str, child: str) -> str:
        return str(Path(prefix, child))


@dataclass
class S3Store:
    client: Any
    listed: list[str] = field(default_factory=list)  # every prefix listed, for the log

    def children(self, prefix: str) -> list[str]:
        bucket, key = uri.split(prefix.rstrip("/") + "/")
        self.listed.append(f"s3://{bucket}/{key}")
        names = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=key, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                names.append(common["Prefix"][len(key) :].strip("/"))
        return sorted(names)

    def files(self, prefix: str) -> list[str]:
        bucket, key = uri.split(prefix.rstrip("/") + "/")
        self.listed.append(f"s3://{bucket}/{key}")
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=key):
            keys.extend(o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".jsonl"))
        return sorted(f"s3://{bucket}/{k}" for k in keys)

    def lines(self, name: str) -> Iterator[bytes]:
        bucket, key = uri.split(name)
        body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            # Streams the object in chunks; a capture file is never held whole.
            yield from body.iter_lines(chunk_size=1 << 20, keepends=True)
        finally:
            body.close()

    def join(self, prefix: str, child: str) -> str:
        return uri.join(prefix, child)


@dataclass(frozen=True)
class CaptureSource:
    """The dated folders (``.../<endpoint>/<variant>``) found under the capture location."""

    roots: tuple[str, ...]
    endpoints: tuple[str, ...]


def find_roots(store: Store, base: str, endpoint: str | None) -> CaptureSource:
    roots: list[str] = []
    endpoints: set[str] = set()

    def walk(prefix: str, path: tuple[str, ...]) -> None:
        children = store.children(prefix)
        if children and all(YEAR.match(c) for c in children):
            roots.append(prefix)
            # <endpoint>/<variant>/yyyy: the endpoint is two levels above the years.
            if len(path) >= 2:
                endpoints.add(path[-2])
            return
        if len(path) >= MAX_DEPTH - 1:
            return
        for child in children:
            if YEAR.match(child):
                continue
            if not path and endpoint is not None and endpoint in children and child != endpoint:
                continue  # the capture prefix holds several endpoints: read only this one
            walk(store.join(prefix, child), (*path, child))

    walk(base, ())
    return CaptureSource(tuple(roots), tuple(sorted(endpoints)))


def window_hours(start: datetime, end: datetime) -> list[datetime]:
    """Every UTC hour that overlaps [start, end)."""
    hour = start.replace(minute=0, second=0, microsecond=0)
    hours = []
    while hour < end:
        hours.append(hour)
        hour += timedelta(hours=1)
    return hours


def window_files(store: Store, roots: tuple[str, ...], start: datetime, end: datetime) -> list[str]:
    files = []
    for root in roots:
        for hour in window_hours(start, end):
            files.extend(store.files(store.join(root, hour.strftime("%Y/%m/%d/%H"))))
    return files


def s3_client(region: str | None, endpoint_url: str | None) -> Any:
    """The jobs' S3 client: --region and --endpoint-url apply to it as to every client."""
    import boto3

    return boto3.client("s3", region_name=region, endpoint_url=endpoint_url)


def write_files(
    files: Iterable[tuple[str, bytes]],
    output: str,
    region: str | None = None,
    endpoint_url: str | None = None,
) -> list[str]:
    """Write a job's report files into ``output`` (a folder or s3:// prefix); their paths."""
    s3 = s3_client(region, endpoint_url) if uri.is_s3(output) else None
    written = []
    for name, data in files:
        target = uri.join(output, name)
        uri.write_bytes(target, data, s3=s3)
        written.append(target)
    return written
