"""Shared fixtures: plan any stack of this repo under Pulumi's mocks, once per session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.aws_session import USER_AWS_VARIABLES, offline_environment

# The suite reads nothing of the user's AWS setup, whatever the shell exports: no profile,
# no keys, no region, no config files. Tests that need a region or credentials set them.
for _name in USER_AWS_VARIABLES:
    os.environ.pop(_name, None)
os.environ |= offline_environment()

from infra.plan.mocks import (  # noqa: E402  (after the scrub, as the SDK reads it)
    RecordedResource,
    mock_ec2_id,
)
from infra.plan.project import load_stack_config  # noqa: E402
from infra.plan.runner import Plan, plan_config  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
STACKS = ("dev", "staging", "prod")

BUCKET = "aws:s3/bucket:Bucket"
KMS_KEY = "aws:kms/key:Key"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
PROVIDER = "pulumi:providers:aws"


def planned_vpc_config(plan: Plan) -> dict[str, list[str]] | None:
    """The VpcConfig the plan's jobs and models should carry: its network's subnets and the
    jobs' security group, by the IDs the plan gives them; None for a stack with no VPC."""
    subnets = plan.of_type("aws:ec2/subnet:Subnet")
    if not subnets:
        return None
    (jobs,) = [
        g for g in plan.of_type("aws:ec2/securityGroup:SecurityGroup") if g.name.endswith("jobs")
    ]
    return {
        "Subnets": [mock_ec2_id("subnet", s.name) for s in subnets],
        "SecurityGroupIds": [mock_ec2_id("sg", jobs.name)],
    }


def planned_vpc_conditions(plan: Plan) -> dict[str, dict[str, Any]]:
    """What a pipeline role's Create*Job statement adds in a VPC stack: the job's subnets and
    groups within the stack's, and present at all (ForAllValues passes an absent key)."""
    vpc = planned_vpc_config(plan)
    if vpc is None:
        return {}
    return {
        "ForAllValues:StringEquals": {
            "sagemaker:VpcSubnets": vpc["Subnets"],
            "sagemaker:VpcSecurityGroupIds": vpc["SecurityGroupIds"],
        },
        "Null": {"sagemaker:VpcSubnets": "false", "sagemaker:VpcSecurityGroupIds": "false"},
    }


class PlannedStack:
    """A plan plus helpers to find resources by type and name and read their JSON inputs."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def __getattr__(self, name: str) -> Any:
        return getattr(self.plan, name)

    def one(self, type_token: str, name: str) -> RecordedResource:
        return self.plan.get(type_token, name)

    def all(self, type_token: str) -> list[RecordedResource]:
        found = self.plan.of_type(type_token)
        assert found, f"the {self.plan.stack} plan declares no {type_token}"
        return found

    def sibling(self, resource: RecordedResource, type_token: str) -> RecordedResource:
        """The resource of ``type_token`` declared next to ``resource`` in the same component."""
        matches = [r for r in self.plan.children_of(resource.parent) if r.type == type_token]
        assert len(matches) == 1, f"{resource.name}: expected one {type_token}, got {matches}"
        return matches[0]

    @staticmethod
    def document(resource: RecordedResource, field: str = "policy") -> dict[str, Any]:
        raw = resource.inputs[field]
        return raw if isinstance(raw, dict) else json.loads(raw)


@pytest.fixture(scope="session")
def plan_of() -> Callable[[str], PlannedStack]:
    cache: dict[str, PlannedStack] = {}

    def get(stack: str) -> PlannedStack:
        if stack not in cache:
            cache[stack] = PlannedStack(plan_config(load_stack_config(REPO, stack)))
        return cache[stack]

    return get


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest, plan_of: Callable[[str], PlannedStack]) -> PlannedStack:
    """Each test using this runs once per stack file in the repo."""
    return plan_of(request.param)


@pytest.fixture
def raw_config() -> Callable[[str], dict[str, str]]:
    """A stack file's config exactly as the engine would pass it to the program."""
    return lambda stack: dict(load_stack_config(REPO, stack).values)


# --- training: a simulated SageMaker /opt/ml tree ------------------------------------------


@pytest.fixture(scope="session")
def opt_ml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """/opt/ml as a job sees it: the code bundle extracted into code/, as SageMaker does."""
    import tarfile

    from training.packaging import build_sourcedir

    root = tmp_path_factory.mktemp("opt") / "ml"
    bundle = build_sourcedir(root / "bundle" / "sourcedir.tar.gz")
    with tarfile.open(bundle.path, "r:gz") as tar:
        tar.extractall(root / "code", filter="data")
    return root


@pytest.fixture(scope="session")
def raw_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.ingest import ingest

    return Path(ingest(str(tmp_path_factory.mktemp("lake"))).uri)


@pytest.fixture(scope="session")
def processed(opt_ml: Path, raw_csv: Path) -> Path:
    """Train/validation/test splits written by the processing entry point."""
    from training import process

    output = opt_ml / "processing" / "output"
    assert process.main(["--input", str(raw_csv), "--output-dir", str(output)]) == 0
    return output


def run_job(
    opt_ml: Path,
    script: str,
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run an entry point the way the container does: `python <script>` from the code dir."""
    return subprocess.run(
        [sys.executable, str(opt_ml / "code" / script), *args],
        cwd=cwd or opt_ml / "code",
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="session")
def model_dir(processed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small trained model (model.joblib, manifest.json, baseline.json)."""
    from training.features import Hyperparameters
    from training.train import TrainingPaths, train

    root = tmp_path_factory.mktemp("trained")
    where = TrainingPaths(
        root / "model", processed / "train", processed / "validation", root / "out"
    )
    train(Hyperparameters(max_iter=60), where)
    return where.model_dir


@pytest.fixture(scope="session")
def serving_model(model_dir: Path) -> Any:
    """The small model, loaded as the handler's model_fn loads it."""
    from inference import handler

    return handler.model_fn(str(model_dir))


@pytest.fixture(scope="session")
def rows(test_rows: Any) -> Any:
    """25 feature rows of the test split: what the payload tests send."""
    return test_rows.iloc[:25].reset_index(drop=True)


@pytest.fixture(scope="session")
def test_rows(processed: Path) -> Any:
    """Feature rows from the test split, in the model's column order."""
    import pandas as pd

    from training import dataset as ds

    return pd.read_csv(processed / "test" / "test.csv").loc[:, list(ds.FEATURES)]
