"""Editing stack files the way people wrote them: round-trip YAML and atomic writes.

`mlops promote` and `mlops stack init` both write `Pulumi.<stack>.yaml`; they share this
so the files look alike and a crash never leaves half a file behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ruamel.yaml import YAML


def round_trip_yaml() -> YAML:
    """Keeps comments, key order and quoting; never folds long lines."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def write_atomically(
    path: Path, text: str, *, mode: int | None = None, replace: bool = True
) -> None:
    """Write via a temporary file in the same folder. Without ``replace``, an existing
    ``path`` raises FileExistsError, even one that appeared a moment ago."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        if mode is not None:
            os.chmod(temporary, mode)
        if replace:
            os.replace(temporary, path)
        else:
            # link() fails if the path exists: no race can overwrite it.
            os.link(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
