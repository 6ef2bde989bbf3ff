"""The commit the stack hands its jobs: the last one that changed the bundled code."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from infra.source_commit import DIRTY_SUFFIX, code_commit
from training.paths import GIT_SHA_ENV


def _git(root: Path, *args: str) -> str:
    completed = subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout.strip()


def _commit(root: Path, path: str, text: str) -> str:
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text(text)
    _git(root, "add", path)
    _git(root, "commit", "-q", "-m", f"change {path}")
    return _git(root, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(GIT_SHA_ENV, raising=False)
    _git(tmp_path, "init", "-q")
    return tmp_path


def test_it_is_the_last_commit_that_touched_the_code_not_head(repo: Path) -> None:
    first = _commit(repo, "training/train.py", "v1")
    _commit(repo, "README.md", "docs")
    sources = [repo / "training", repo / "inference" / "handler.py"]
    assert code_commit(repo, sources) == first
    second = _commit(repo, "inference/handler.py", "v2")
    assert code_commit(repo, sources) == second


def test_uncommitted_changes_to_the_code_are_marked_dirty(repo: Path) -> None:
    commit = _commit(repo, "training/train.py", "v1")
    (repo / "README.md").write_text("not code")
    assert code_commit(repo, [repo / "training"]) == commit
    (repo / "training" / "train.py").write_text("v2")
    assert code_commit(repo, [repo / "training"]) == commit + DIRTY_SUFFIX
    _git(repo, "checkout", "-q", "--", "training/train.py")
    (repo / "training" / "new.py").write_text("untracked, but bundled")
    assert code_commit(repo, [repo / "training"]) == commit + DIRTY_SUFFIX


def test_outside_git_there_is_no_commit_unless_the_environment_names_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "training").mkdir()
    monkeypatch.delenv(GIT_SHA_ENV, raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert code_commit(tmp_path, [tmp_path / "training"]) is None
    monkeypatch.setenv(GIT_SHA_ENV, "0123abc")
    assert code_commit(tmp_path, [tmp_path / "training"]) == "0123abc"


def test_asking_changes_nothing_in_the_checkout(repo: Path) -> None:
    _commit(repo, "training/train.py", "v1")
    (repo / "training" / "train.py").write_text("v2")
    index = (repo / ".git" / "index").read_bytes()
    code_commit(repo, [repo / "training"])
    assert (repo / ".git" / "index").read_bytes() == index
