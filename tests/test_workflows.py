"""The GitHub Actions workflows: zizmor lints them, and their YAML keeps CI/CD's promises."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))
STACKS = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml"))
PULUMI_ACTION = "pulumi/actions@"
AWS_ACTION = "aws-actions/configure-aws-credentials@"

# zizmor's default policy wants every action pinned to a commit hash; this kit pins major
# versions (tags) instead, and keeps every other audit at its default.
ZIZMOR_CONFIG = 'rules:\n  unpinned-uses:\n    config:\n      policies:\n        "*": ref-pin\n'

Job = dict[str, Any]
Step = dict[str, Any]


def _zizmor() -> str:
    beside_python = Path(sys.executable).with_name("zizmor")
    found = str(beside_python) if beside_python.exists() else shutil.which("zizmor")
    if found is None:
        pytest.fail("zizmor is missing: it is a dev dependency, `make` installs it into .venv")
    return found


def _lint(path: Path, config_dir: Path) -> subprocess.CompletedProcess[str]:
    config = config_dir / "zizmor.yml"
    config.write_text(ZIZMOR_CONFIG)
    command = [_zizmor(), "--offline", "--strict-collection", "--no-progress", "--color=never"]
    return subprocess.run(
        [*command, "--config", str(config), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _load(name: str) -> dict[str, Any]:
    raw: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the bare key `on` as the boolean true.
    return {"on" if key is True else str(key): value for key, value in raw.items()}


def _all_jobs() -> list[tuple[str, str, Job]]:
    return [
        (path.name, job_id, job)
        for path in WORKFLOW_FILES
        for job_id, job in _load(path.name)["jobs"].items()
    ]


def _index(steps: list[Step], matches: Callable[[Step], bool]) -> int:
    found = [i for i, step in enumerate(steps) if matches(step)]
    assert len(found) == 1, f"expected one matching step, found {len(found)}"
    return found[0]


def _uses(prefix: str) -> Callable[[Step], bool]:
    return lambda step: str(step.get("uses", "")).startswith(prefix)


def _runs(text: str) -> Callable[[Step], bool]:
    return lambda step: text in str(step.get("run", ""))


def _needs(job: Job) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


def test_the_four_workflows_exist() -> None:
    names = {path.name for path in WORKFLOW_FILES}
    assert names == {"pull-request.yml", "main.yml", "promote.yml", "rollback.yml"}


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_zizmor_finds_nothing(path: Path, tmp_path: Path) -> None:
    result = _lint(path, tmp_path)
    assert result.returncode == 0, f"zizmor failed on {path.name}:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize(
    "broken",
    [
        # `stepz` is no job key: the schema check must reject the file.
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    stepz:\n      - run: echo hi\n",
        # A PR title spliced into a shell script is an injection.
        "on: pull_request\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        '    steps:\n      - run: echo "${{ github.event.pull_request.title }}"\n',
    ],
    ids=["schema", "injection"],
)
def test_zizmor_rejects_a_broken_workflow(broken: str, tmp_path: Path) -> None:
    workflow = tmp_path / ".github" / "workflows" / "broken.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text(broken)
    assert _lint(workflow, tmp_path).returncode != 0


def test_pull_requests_are_tested_then_preview_every_stack() -> None:
    workflow = _load("pull-request.yml")
    assert "pull_request" in workflow["on"]
    test, preview = workflow["jobs"]["test"], workflow["jobs"]["preview"]
    _index(test["steps"], _runs("make test"))
    assert _needs(preview) == ["test"]
    assert STACKS and sorted(preview["strategy"]["matrix"]["stack"]) == STACKS
    assert preview["permissions"] == {
        "contents": "read",
        "id-token": "write",
        "pull-requests": "write",
    }
    steps = preview["steps"]
    pulumi = _index(steps, _uses(PULUMI_ACTION))
    assert steps[pulumi]["with"] == {
        "command": "preview",
        "stack-name": "${{ matrix.stack }}",
        "comment-on-pr": True,
    }
    # Wheels and the offline plan come first; credentials only right before Pulumi needs them.
    wheels, plan = _index(steps, _runs("make wheelhouse")), _index(steps, _runs("make plan"))
    assert wheels < plan < _index(steps, _uses(AWS_ACTION)) < pulumi
    assert "${{ github.event.pull_request.number }}" in workflow["concurrency"]["group"]


def test_main_tests_then_deploys_only_dev_and_verifies_it() -> None:
    workflow = _load("main.yml")
    assert workflow["on"] == {"push": {"branches": ["main"]}}
    jobs = workflow["jobs"]
    _index(jobs["test"]["steps"], _runs("make test"))
    pulumi_steps = [s for job in jobs.values() for s in job["steps"] if _uses(PULUMI_ACTION)(s)]
    assert [step["with"] for step in pulumi_steps] == [{"command": "up", "stack-name": "dev"}]
    deploy = jobs["deploy-dev"]
    assert _needs(deploy) == ["test"]
    assert deploy["environment"] == "dev"
    steps = deploy["steps"]
    up = _index(steps, _uses(PULUMI_ACTION))
    verify = _index(steps, _runs("mlops verify-endpoint --stack dev"))
    assert _index(steps, _runs("make wheelhouse")) < up < verify
    assert steps[up]["id"] == "up"
    assert steps[verify]["env"]["EXPECTED_CONFIG"] == "${{ steps.up.outputs.endpointConfigName }}"


def test_promotion_runs_dev_to_staging_to_prod_each_in_its_environment() -> None:
    workflow = _load("promote.yml")
    inputs = workflow["on"]["workflow_dispatch"]["inputs"]
    assert inputs["reason"]["required"] is True and inputs["reason"]["type"] == "string"
    assert inputs["dry-run"]["type"] == "boolean"
    edges = []
    for job_id, job in workflow["jobs"].items():
        steps = job["steps"]
        promote = _index(steps, _runs("mlops promote"))
        match = re.search(r"--from (\w+) --to (\w+)", steps[promote]["run"])
        assert match, steps[promote]["run"]
        source, target = match.groups()
        edges.append((source, target))
        assert job_id == target and job["environment"] == target
        up = _index(steps, _uses(PULUMI_ACTION))
        assert steps[up]["with"]["stack-name"] == target
        verify = _index(steps, _runs(f"mlops verify-endpoint --stack {target}"))
        commit = _index(steps, _runs(f'git commit -m "Promote {source} to {target}"'))
        assert promote < up < verify < commit
        assert f"-- Pulumi.{target}.yaml" in steps[commit]["run"]
        # A dry run must reach the gates as --dry-run, or it would record a decision.
        assert "--dry-run" in steps[promote]["run"]
        assert steps[promote]["env"]["DRY_RUN"] == "${{ inputs.dry-run }}"
    assert edges == [("dev", "staging"), ("staging", "prod")]
    assert _needs(workflow["jobs"]["prod"]) == ["staging"]


def test_rollback_deploys_the_chosen_stack_in_its_environment() -> None:
    workflow = _load("rollback.yml")
    inputs = workflow["on"]["workflow_dispatch"]["inputs"]
    assert sorted(inputs["stack"]["options"]) == STACKS
    assert inputs["reason"]["required"] is True
    (job,) = workflow["jobs"].values()
    assert job["environment"] == "${{ inputs.stack }}"
    steps = job["steps"]
    rollback = _index(steps, _runs('mlops rollback --stack "$STACK"'))
    up = _index(steps, _uses(PULUMI_ACTION))
    verify = _index(steps, _runs('mlops verify-endpoint --stack "$STACK"'))
    commit = _index(steps, _runs("git commit"))
    assert rollback < up < verify < commit
    assert steps[up]["with"] == {"command": "up", "stack-name": "${{ inputs.stack }}"}


def test_deploy_jobs_use_their_stacks_environment_and_never_overlap() -> None:
    deploys = 0
    for name, job_id, job in _all_jobs():
        for step in job["steps"]:
            if not _uses(PULUMI_ACTION)(step) or step["with"]["command"] == "preview":
                continue
            deploys += 1
            stack = step["with"]["stack-name"]
            assert job["environment"] == stack, f"{name}:{job_id}"
            # The same group in every workflow, and a running `pulumi up` is never cancelled.
            assert job["concurrency"] == {"group": f"deploy-{stack}", "cancel-in-progress": False}
            aws = job["steps"][_index(job["steps"], _uses(AWS_ACTION))]
            assert aws["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    assert deploys == 4  # dev from main, staging and prod from promote, any from rollback


def test_actions_are_pinned_to_a_major_and_pulumi_to_one_major() -> None:
    uses = {step["uses"] for _, _, job in _all_jobs() for step in job["steps"] if "uses" in step}
    assert all(re.fullmatch(r"[\w-]+/[\w-]+@v\d+", ref) for ref in uses), uses
    assert len({ref for ref in uses if ref.startswith(PULUMI_ACTION)}) == 1, uses


def test_credentials_are_for_the_region_the_stacks_pin() -> None:
    regions = {
        yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]["aws:region"]
        for stack in STACKS
    }
    for path in WORKFLOW_FILES:
        workflow = _load(path.name)
        for job in workflow["jobs"].values():
            for step in filter(_uses(AWS_ACTION), job["steps"]):
                assert step["with"]["aws-region"] == "${{ env.AWS_REGION }}", path.name
                assert {workflow["env"]["AWS_REGION"]} == regions, path.name


def test_every_job_has_a_timeout() -> None:
    for name, job_id, job in _all_jobs():
        assert isinstance(job.get("timeout-minutes"), int), f"{name}:{job_id}"


def test_no_expression_is_spliced_into_a_shell_script() -> None:
    # Inputs, event fields and step outputs reach scripts through `env:`, so no value can
    # inject shell code; the stricter rule (no `${{` at all) is also the simpler one.
    for name, job_id, job in _all_jobs():
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), f"{name}:{job_id}: {step['run']}"
