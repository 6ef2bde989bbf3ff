"""Reproducible .tar.gz archives: same members in, same bytes out."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Mapping
from pathlib import Path

# 1980-01-01: the earliest time zip (and so wheels) can represent; any fixed value works.
FIXED_MTIME = 315532800


def deterministic_tar_gz(members: Mapping[str, bytes]) -> bytes:
    """Entries sorted, fixed owner, mode and mtime, and no name or time in the gzip header."""
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", filename="", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name in sorted(members):
            info = tarfile.TarInfo(name)
            info.size = len(members[name])
            info.mtime = FIXED_MTIME
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(members[name]))
    return buffer.getvalue()


def extract_tar_gz(archive: Path, dest: Path) -> Path:
    """Unpack as SageMaker does into /opt/ml/...; the "data" filter refuses links and
    absolute or escaping paths, so a crafted archive cannot write outside ``dest``."""
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(dest, filter="data")
    return dest
