"""sourcedir.tar.gz is reproducible, complete, and pinned to the matching container."""

from __future__ import annotations

import io
import re
import shutil
import tarfile
from importlib import metadata
from pathlib import Path

import pytest

from training import bootstrap, packaging
from training.archive import FIXED_MTIME


def _members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}


def test_two_builds_are_byte_identical(tmp_path: Path) -> None:
    first = packaging.build_sourcedir(tmp_path / "a" / "sourcedir.tar.gz")
    second = packaging.build_sourcedir(tmp_path / "b" / "sourcedir.tar.gz")
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.sha256 == second.sha256


def test_the_hash_changes_when_the_code_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "training"
    shutil.copytree(packaging.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(packaging, "PACKAGE_DIR", copy)
    before = packaging.build_sourcedir(tmp_path / "before.tar.gz").sha256
    (copy / "features.py").write_text((copy / "features.py").read_text() + "\n# changed\n")
    after = packaging.build_sourcedir(tmp_path / "after.tar.gz").sha256
    assert before != after


def test_bundle_has_launchers_and_code_but_no_caches(tmp_path: Path) -> None:
    bundle = packaging.build_sourcedir(tmp_path / "sourcedir.tar.gz")
    members = _members(bundle.path)
    assert {"train.py", "process.py", "evaluate.py", "drift.py"} <= set(members)
    assert {"training/train.py", "monitoring/drift.py", "monitoring/statistics.py"} <= set(members)
    assert not [n for n in members if "__pycache__" in n or n.endswith(".pyc")]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.mode) for m in members.values()} == {
        (FIXED_MTIME, 0, 0, "", 0o644)
    }
    header = bundle.path.read_bytes()[:10]
    assert header[4:8] == b"\0\0\0\0"  # no timestamp in the gzip header


def test_wheelhouse_makes_the_bundle_installable_offline(tmp_path: Path) -> None:
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    (wheelhouse / "pandera-0.35.0-py3-none-any.whl").write_bytes(b"PK fake wheel")
    bundle = packaging.build_sourcedir(tmp_path / "sourcedir.tar.gz", wheelhouse=wheelhouse)
    members = _members(bundle.path)
    assert "wheels/pandera-0.35.0-py3-none-any.whl" in members
    with tarfile.open(bundle.path, "r:gz") as tar:
        requirements = tar.extractfile("requirements.txt").read().decode()  # type: ignore[union-attr]
    assert requirements.startswith("--no-index\n--find-links wheels\n")
    assert "pandera==0.35.0" in requirements


def test_empty_wheelhouse_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="make wheelhouse"):
        packaging.build_sourcedir(tmp_path / "x.tar.gz", wheelhouse=tmp_path)


def test_framework_version_matches_the_installed_scikit_learn() -> None:
    assert metadata.version("scikit-learn") == packaging.CONTAINER_SKLEARN
    assert packaging.framework_version() == "1.9-0"


def test_mismatched_scikit_learn_refuses_to_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packaging, "CONTAINER_SKLEARN", "1.4.2")
    with pytest.raises(packaging.FrameworkMismatchError, match=r"runs 1\.4\.2"):
        packaging.framework_version()


def test_container_requirements_pin_what_runs_here() -> None:
    pins = [
        line.split("==")
        for line in packaging.CONTAINER_REQUIREMENTS.read_text().splitlines()
        if line and not line.startswith("#")
    ]
    for name, version in pins:
        assert metadata.version(name) == version, name


def test_container_requirements_add_only_what_the_image_lacks() -> None:
    """pip would replace the image's own copy of anything listed (packaging 26.2 was)."""

    def names(path: Path) -> set[str]:
        lines = [line.split("==")[0] for line in path.read_text().splitlines()]
        return {re.sub(r"[-_.]+", "-", n).lower() for n in lines if n and not n.startswith("#")}

    image = Path(__file__).parent.parent / "containers" / "sklearn" / "requirements.txt"
    assert names(packaging.CONTAINER_REQUIREMENTS) & names(image) == set()
    assert "pandera" in names(packaging.CONTAINER_REQUIREMENTS)


def test_bootstrap_explains_missing_packages_without_wheels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bootstrap, "missing_modules", lambda: ["pandera"])
    with pytest.raises(ModuleNotFoundError, match="no bundled wheels"):
        bootstrap.ensure_container_packages(tmp_path)


def test_bootstrap_is_a_no_op_where_packages_exist(tmp_path: Path) -> None:
    bootstrap.ensure_container_packages(tmp_path)  # pandera is installed here
    assert bootstrap.missing_modules() == []


def test_launcher_runs_its_module_as_main() -> None:
    text = packaging.LAUNCHER.format(module="training.train")
    compile(text, "train.py", "exec")
    assert 'runpy.run_module("training.train", run_name="__main__"' in text
    assert io.StringIO(text).readline().startswith('"""SageMaker entry point')
