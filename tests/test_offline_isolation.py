"""Offline is offline: the plan, the demo and the test suite ignore the user's AWS setup.

Each runs as a separate process under an environment a real laptop might have: a profile
that does not exist here, keys that are not keys, a region that does not exist, and config
files that are not config files. None of them may read those, let alone need them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

MLOPS = str(Path(sys.executable).with_name("mlops"))


@pytest.fixture
def hostile_env(tmp_path: Path) -> dict[str, str]:
    garbage = tmp_path / "aws-config"
    garbage.write_text("[[[ this is not an ini file\nregion = \x00\n")
    env = {
        **os.environ,
        "AWS_PROFILE": "no-such-profile",
        "AWS_DEFAULT_PROFILE": "no-such-profile",
        "AWS_ACCESS_KEY_ID": "AKIAHOSTILEBOGUSKEY0",
        "AWS_SECRET_ACCESS_KEY": "bogus",
        "AWS_SESSION_TOKEN": "bogus",
        "AWS_REGION": "xx-nowhere-9",
        "AWS_DEFAULT_REGION": "xx-nowhere-9",
        "AWS_CONFIG_FILE": str(garbage),
        "AWS_SHARED_CREDENTIALS_FILE": str(garbage),
        # Anything that still reached for AWS would hang on this instead of failing fast.
        "AWS_ENDPOINT_URL": "http://192.0.2.1:9",
        "COLUMNS": "200",
    }
    env.pop("AWS_EC2_METADATA_DISABLED", None)
    return env


def _run(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False
    )


def test_the_plan_ignores_the_users_aws_setup(hostile_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    done = _run([MLOPS, "plan", "--stack", "prod", "--json", str(out)], hostile_env, REPO)
    assert done.returncode == 0, done.stderr
    plan = json.loads(out.read_text())
    # The stack's own region and the plan's pretend account, not the environment's.
    assert "xx-nowhere-9" not in out.read_text()
    assert plan["stack"] == "prod"


def test_the_demo_ignores_the_users_aws_setup(hostile_env: dict[str, str], tmp_path: Path) -> None:
    done = _run(
        [MLOPS, "demo", "--phase-rows", "150", "--runs", str(tmp_path / "runs")],
        hostile_env,
        REPO,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (summary,) = (tmp_path / "runs").glob("*/summary.json")
    assert json.loads(summary.read_text())["served"].startswith("version 2")


def test_the_suite_ignores_the_users_aws_setup(hostile_env: dict[str, str]) -> None:
    # The modules that talk to moto the most: in-process mocks, a moto server, the CLI.
    modules = ["tests/test_pipeline_runner.py", "tests/test_monitoring_moto.py"]
    done = _run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *modules],
        hostile_env,
        REPO,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout
