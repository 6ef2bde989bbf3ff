"""The model.tar.gz the kit builds: deterministic, with the handler under code/.

The handler inside the image's real serving stacks is tested in test_serving_image.py.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from inference.packaging import HANDLER_ARCNAME, build_model_archive


def test_model_archive_is_deterministic_with_handler_under_code(
    model_dir: Path, tmp_path: Path
) -> None:
    first = build_model_archive(model_dir, tmp_path / "a.tar.gz")
    second = build_model_archive(model_dir, tmp_path / "b.tar.gz")
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.members == ("baseline.json", HANDLER_ARCNAME, "manifest.json", "model.joblib")
    with tarfile.open(first.path, "r:gz") as tar:
        assert {m.mtime for m in tar.getmembers()} == {315532800}


def test_model_archive_requires_a_trained_model(tmp_path: Path) -> None:
    with pytest.raises(
        FileNotFoundError, match=r"lacks model\.joblib, manifest\.json, baseline\.json"
    ):
        build_model_archive(tmp_path, tmp_path / "model.tar.gz")
