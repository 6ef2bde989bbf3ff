"""bundle_runner.py: how processing jobs run an entry point of sourcedir.tar.gz."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from training import bundle_runner
from training.packaging import build_sourcedir

RUNNER = Path(bundle_runner.__file__)


def _run(bundle: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # An isolated interpreter in an empty folder, as in the container; the runner puts the
    # unpacked bundle first on sys.path.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env[bundle_runner.BUNDLE_ENV] = str(bundle)
    return subprocess.run(
        [sys.executable, "-I", str(RUNNER), *args],
        cwd=cwd, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_sourcedir(tmp_path_factory.mktemp("code") / "sourcedir.tar.gz").path


def test_runs_the_processing_entry_point_from_the_unpacked_bundle(
    bundle: Path, raw_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    job = _run(
        bundle, "process.py", "--input", str(raw_csv), "--output-dir", str(out), cwd=tmp_path
    )

    assert job.returncode == 0, job.stderr
    assert (out / "train" / "train.csv").is_file()
    report = json.loads((out / "report" / "validation_report.json").read_text())
    assert report["ok"] is True


def test_passes_the_entry_points_exit_code_through(bundle: Path, tmp_path: Path) -> None:
    bad = tmp_path / "raw.csv"
    bad.write_text("not,a,churn,file\n1,2,3,4\n")
    job = _run(
        bundle, "process.py", "--input", str(bad), "--output-dir", str(tmp_path / "o"), cwd=tmp_path
    )
    assert job.returncode == 2
    assert "data contract violated" in job.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "usage: bundle_runner.py ENTRY_POINT.py"),
        (("../escape.py",), "is not an entry point"),
        (("missing.py",), "is not an entry point"),
        (("train",), "usage: bundle_runner.py ENTRY_POINT.py"),
    ],
)
def test_refuses_what_is_not_an_entry_point(
    bundle: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    job = _run(bundle, *args, cwd=tmp_path)
    assert job.returncode == bundle_runner.EXIT_USAGE
    assert message in job.stderr


def test_a_missing_bundle_is_a_clear_error(tmp_path: Path) -> None:
    job = _run(tmp_path / "nowhere.tar.gz", "process.py", cwd=tmp_path)
    assert job.returncode == bundle_runner.EXIT_USAGE
    assert "no code bundle at" in job.stderr
