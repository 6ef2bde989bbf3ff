"""`mlops plan`: the offline plan a reviewer or CI reads instead of `pulumi preview`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from hostile_stack_files import HOSTILE, LONG_STACK, LONG_STACK_SAYS, HostileFile, expected
from typer.testing import CliRunner

import infra.plan.runner as runner
from mlops.cli import app

cli = CliRunner()


def _plan(*args: str, cwd: Path = REPO) -> tuple[int, str]:
    result = cli.invoke(app, ["plan", "--project-dir", str(cwd), *args])
    return result.exit_code, result.output


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the repo's Pulumi project files, safe to break."""
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    return tmp_path


def test_prints_the_resource_tree_and_counts_by_type() -> None:
    code, output = _plan("--stack", "dev")
    assert code == 0, output
    assert "mlopskit:storage:Storage storage" in output
    assert "bucket=churn-dev-data-123456789012-eu-west-1" in output
    assert "Resources by type" in output
    assert "aws:s3/bucket:Bucket" in output
    assert "total" in output


def test_json_lists_every_resource_with_type_name_parent_and_inputs(tmp_path: Path) -> None:
    target = tmp_path / "plan.json"
    code, output = _plan("--stack", "prod", "--quiet", "--json", str(target))
    assert code == 0, output

    document = json.loads(target.read_text())
    resources = document["resources"]
    assert document["resourceCount"] == len(resources) == sum(document["countsByType"].values())
    assert all({"type", "name", "parent", "inputs", "options"} <= set(r) for r in resources)
    bucket = next(r for r in resources if r["name"] == "storage-data" and r["custom"])
    assert bucket["parent"] == "mlopskit:storage:SecureBucket::storage-data"
    assert bucket["options"]["protect"] is True
    # Policies are expanded from JSON strings so reviewers can read them.
    policy = next(r for r in resources if r["type"] == "aws:s3/bucketPolicy:BucketPolicy")
    assert policy["inputs"]["policy"]["Version"] == "2012-10-17"


def test_two_runs_give_byte_identical_json(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    assert _plan("--stack", "staging", "-q", "--json", str(first))[0] == 0
    assert _plan("--stack", "staging", "-q", "--json", str(second))[0] == 0
    assert first.read_bytes() == second.read_bytes()


def test_unknown_stack_names_the_known_ones() -> None:
    code, output = _plan("--stack", "qa")
    assert code == 1
    assert "unknown stack 'qa'" in output
    assert "dev, prod, staging" in output
    assert "Traceback" not in output


def test_missing_project_file(tmp_path: Path) -> None:
    code, output = _plan("--stack", "dev", cwd=tmp_path)
    assert code == 1
    assert "no Pulumi.yaml found" in output


def test_malformed_stack_file(project: Path) -> None:
    (project / "Pulumi.dev.yaml").write_text("config:\n  mlops:environment: [dev\n")
    code, output = _plan("--stack", "dev", cwd=project)
    assert code == 1
    assert "Pulumi.dev.yaml is not valid YAML" in output


def test_config_key_of_the_wrong_type(project: Path) -> None:
    text = (project / "Pulumi.dev.yaml").read_text()
    (project / "Pulumi.dev.yaml").write_text(
        text.replace("dataCapturePercent: 0", "dataCapturePercent: lots")
    )
    code, output = _plan("--stack", "dev", cwd=project)
    assert code == 1
    assert "invalid config for stack 'dev'" in output
    assert "mlops:serving.dataCapturePercent: Input should be a valid integer" in output
    assert "Traceback" not in output


def test_secrets_are_never_read_or_printed(project: Path, tmp_path: Path) -> None:
    stack_file = project / "Pulumi.dev.yaml"
    stack_file.write_text(
        stack_file.read_text() + "  mlops-kit:apiToken:\n    secure: AAABAMcipherTEXT\n"
    )
    code, output = _plan("--stack", "dev", cwd=project)
    # Secrets in the project namespace are rejected by name, and their value never shown.
    assert code == 1
    assert "mlops-kit:apiToken" in output
    assert "AAABAMcipherTEXT" not in output


def test_program_failure_exits_non_zero_with_the_programs_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken_program() -> None:
        raise RuntimeError("bucket quota exhausted")

    monkeypatch.setattr(runner, "default_program", broken_program)
    code, output = _plan("--stack", "dev")
    assert code == 1
    assert "RuntimeError: bucket quota exhausted" in output
    assert "Traceback" not in output


def test_console_script_runs_outside_pytest() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "mlops.cli", "plan", "--stack", "nope"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 1
    assert "unknown stack 'nope'" in completed.stderr
    assert "Traceback" not in completed.stderr


# --- hostile stack files -------------------------------------------------------------------


@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda h: h.id)
def test_a_hostile_stack_file_gets_one_line_naming_the_cause(
    project: Path, hostile: HostileFile
) -> None:
    (project / "Pulumi.dev.yaml").write_bytes(hostile.content)
    result = cli.invoke(app, ["plan", "--project-dir", str(project), "--stack", "dev"])
    # exit 1 from fail(), never an exception escaping (CliRunner would swallow its traceback)
    # and never EXIT_IF_RUN, which a loader that runs tags would return.
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.output.startswith(f"error: {expected(hostile)}"), result.output
    assert result.output.count("\n") == 1, result.output
    assert "Traceback" not in result.output
    assert "the Pulumi program failed" not in result.output


def test_a_stack_name_too_long_for_aws_is_a_config_error(project: Path) -> None:
    result = cli.invoke(app, ["plan", "--project-dir", str(project), "--stack", LONG_STACK])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.output == (
        "error: invalid config for stack 'aaaaaaaaaaaaaaaaaaaaaaaa...' (300 characters):\n"
        f"  - {LONG_STACK_SAYS}\n"
    )


@pytest.mark.parametrize("case", ["lists-20000-deep", "long-stack-name"])
def test_hostile_input_prints_no_traceback_in_a_real_process(project: Path, case: str) -> None:
    stack = "dev"
    if case == "long-stack-name":
        stack = LONG_STACK
    else:
        (hostile,) = [h for h in HOSTILE if h.id == case]
        (project / "Pulumi.dev.yaml").write_bytes(hostile.content)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlops.cli",
            "plan",
            "--stack",
            stack,
            "--project-dir",
            str(project),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 1
    assert completed.stderr.startswith("error: ") and "Traceback" not in completed.stderr
    assert "the Pulumi program failed" not in completed.stderr
