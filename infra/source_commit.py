"""The commit of the code the stack's jobs run, so each model's manifest names it.

SageMaker jobs have no ``.git``; the stack passes the commit to every job instead (as
``MLOPS_GIT_SHA``). It is the last commit that changed the bundled code, not HEAD: a
commit that touches only infrastructure or docs then leaves the pipeline definitions and
the baseline training job as they were, instead of re-training on every commit. Uncommitted
changes to that code are marked ``-dirty``, since no commit holds what the job runs.

Only git's read commands run here (with optional locks off), so a preview stays free of
side effects and gives the same answer every time for the same checkout. In a shallow
clone the answer can only be as old as the clone's history: the deploy workflows fetch all
of it. Outside a git checkout, ``MLOPS_GIT_SHA`` may name the commit; otherwise there is
none and manifests say ``null``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from training.paths import GIT_SHA_ENV

DIRTY_SUFFIX = "-dirty"
_GIT_TIMEOUT_SECONDS = 10


def _git(root: Path, *args: str) -> str | None:
    try:
        completed = subprocess.run(
            ["git", "--no-optional-locks", "-C", str(root), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=_GIT_TIMEOUT_SECONDS,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip()


def code_commit(root: Path, sources: Sequence[Path]) -> str | None:
    """The last commit that changed ``sources`` (paths under ``root``), or None."""
    if override := os.environ.get(GIT_SHA_ENV):
        return override
    relative = [str(path.resolve().relative_to(root.resolve())) for path in sources]
    commit = _git(root, "log", "-1", "--format=%H", "--", *relative)
    if not commit:
        return None
    changes = _git(root, "status", "--porcelain", "--untracked-files=normal", "--", *relative)
    return commit + DIRTY_SUFFIX if changes else commit
