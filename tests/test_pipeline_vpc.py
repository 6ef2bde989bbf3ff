"""Private networking (issue 20): every job the four pipelines start runs in the spec's VPC.

Each pipeline shape is built twice, with and without a VpcSpec; definitions only, no jobs.
"""

from __future__ import annotations

import ast
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from pipeline_specs import batch_spec, drift_spec, pipeline_spec, quality_spec
from pipeline_steps import _isolated

from inference.batch_contract import BadRows
from infra.plan.aws_requests.pipeline_steps import check_definition
from pipelines import batch_pipeline, drift_pipeline, quality_pipeline, training_pipeline
from pipelines.spec import TuningSpec, VpcSpec
from training.search_space import DEFAULT_RANGES

VPC = VpcSpec(
    subnets=("subnet-0123456789abcdef0", "subnet-0fedcba9876543210"),
    security_group_ids=("sg-0a1b2c3d4e5f60718",),
)
# What CreateProcessingJob/CreateTrainingJob/CreateHyperParameterTuningJob should carry.
EXPECTED_VPC = {
    "Subnets": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
    "SecurityGroupIds": ["sg-0a1b2c3d4e5f60718"],
}
SEARCH = TuningSpec(max_jobs=4, max_parallel_jobs=2, early_stopping="Auto", ranges=DEFAULT_RANGES)
JOB_STEPS = ("Processing", "Training", "Tuning")


@dataclass(frozen=True)
class Shape:
    """One pipeline shape: how to build it with a given VPC, and its job steps by name."""

    build: Callable[[VpcSpec | None], str]
    # Job-starting step -> whether it is network-isolated (as the vpc=None build has it).
    isolated: dict[str, bool]


SHAPES = {
    "training": Shape(
        lambda vpc: training_pipeline.build_definition(pipeline_spec(None, vpc)),
        {"ValidateAndSplit": True, "Train": True, "Evaluate": True, "PublishModelCard": False},
    ),
    "training-tuned": Shape(
        lambda vpc: training_pipeline.build_definition(pipeline_spec(SEARCH, vpc)),
        {"ValidateAndSplit": True, "Tune": True, "Evaluate": True, "PublishModelCard": False},
    ),
    "drift": Shape(
        lambda vpc: drift_pipeline.build_definition(drift_spec(1, vpc)),
        {"DetectDrift": False, "DetectAttributionDrift": False},
    ),
    "drift-sharded": Shape(
        lambda vpc: drift_pipeline.build_definition(drift_spec(3, vpc)),
        {
            "ListDriftWindow": False,
            "SummariseDrift": True,
            "DetectDrift": False,
            "DetectAttributionDrift": False,
        },
    ),
    "quality": Shape(
        lambda vpc: quality_pipeline.build_definition(quality_spec(1, vpc)),
        {"MeasureQuality": False},
    ),
    "quality-sharded": Shape(
        lambda vpc: quality_pipeline.build_definition(quality_spec(3, vpc)),
        {"ListQualityWindow": False, "SummariseQuality": True, "MeasureQuality": False},
    ),
    "batch-errors": Shape(
        lambda vpc: batch_pipeline.build_definition(batch_spec(BadRows.ERRORS, vpc)),
        {"SplitBatchOutput": True},
    ),
    "batch-fail": Shape(
        lambda vpc: batch_pipeline.build_definition(batch_spec(BadRows.FAIL, vpc)), {}
    ),
}


@functools.cache
def built(shape: str, with_vpc: bool) -> str:
    """Each definition built once per session (a build takes about a second)."""
    return SHAPES[shape].build(VPC if with_vpc else None)


def all_steps(definition: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}

    def visit(steps: list[dict[str, Any]]) -> None:
        for step in steps:
            found[step["Name"]] = step
            visit(step.get("Arguments", {}).get("IfSteps", []))
            visit(step.get("Arguments", {}).get("ElseSteps", []))

    visit(json.loads(definition)["Steps"])
    return found


def network(step: dict[str, Any]) -> dict[str, Any]:
    """Where a job request keeps its VpcConfig and the network flags, per step type."""
    arguments: dict[str, Any] = step["Arguments"]
    if step["Type"] == "Processing":
        return arguments["NetworkConfig"]  # type: ignore[no-any-return]
    if step["Type"] == "Tuning":
        return arguments["TrainingJobDefinition"]  # type: ignore[no-any-return]
    return arguments


def job_steps(definition: str) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in all_steps(definition).items() if s["Type"] in JOB_STEPS}


def without_vpc(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_vpc(v) for k, v in value.items() if k != "VpcConfig"}
    if isinstance(value, list):
        return [without_vpc(v) for v in value]
    return value


@pytest.mark.parametrize("shape", SHAPES)
def test_every_job_runs_in_the_vpc_with_encrypted_traffic(shape: str) -> None:
    jobs = job_steps(built(shape, True))
    assert set(jobs) == set(SHAPES[shape].isolated)
    for name, step in jobs.items():
        assert network(step)["VpcConfig"] == EXPECTED_VPC, name
        assert network(step)["EnableInterContainerTrafficEncryption"] is True, name


@pytest.mark.parametrize("shape", SHAPES)
def test_isolation_is_what_it_was_without_a_vpc(shape: str) -> None:
    with_vpc, without = job_steps(built(shape, True)), job_steps(built(shape, False))
    expected = SHAPES[shape].isolated
    assert {n: network(s)["EnableNetworkIsolation"] for n, s in without.items()} == expected
    assert {n: network(s)["EnableNetworkIsolation"] for n, s in with_vpc.items()} == expected
    # The local runner reads isolation as SageMaker does; a VpcConfig changes nothing there.
    assert {n: _isolated(network(s)) for n, s in with_vpc.items()} == expected


@pytest.mark.parametrize("shape", SHAPES)
def test_without_a_vpc_the_definition_is_unchanged(shape: str) -> None:
    plain = built(shape, False)
    assert "VpcConfig" not in plain
    stripped = without_vpc(json.loads(built(shape, True)))
    assert training_pipeline.canonical_json(json.dumps(stripped)) == plain


@pytest.mark.parametrize("shape", SHAPES)
def test_the_vpc_requests_match_botocores_shapes(shape: str) -> None:
    problems = [
        f"{check.label}: {v}"
        for check in check_definition(built(shape, True))
        for v in check.outcome.violations
    ]
    assert not problems


@pytest.mark.parametrize(
    ("vpc", "rule"),
    [
        # VpcConfig: Subnets 1-16, SecurityGroupIds 1-5, each [-0-9a-zA-Z]+ up to 32 chars.
        ({"Subnets": [f"subnet-{i}" for i in range(17)], "SecurityGroupIds": ["sg-1"]}, "max"),
        ({"Subnets": [], "SecurityGroupIds": ["sg-1"]}, "min"),
        ({"Subnets": ["subnet-1"], "SecurityGroupIds": [f"sg-{i}" for i in range(6)]}, "max"),
        ({"Subnets": ["subnet_1"], "SecurityGroupIds": ["sg-1"]}, "pattern"),
        ({"Subnets": ["subnet-1"], "SecurityGroupIds": ["sg-" + "0" * 30]}, "max"),
        ({"Subnets": ["subnet-1"]}, "required"),
    ],
)
@pytest.mark.parametrize("shape", ["training-tuned", "batch-errors"])
def test_the_shape_check_refuses_a_bad_vpc_config(
    shape: str, vpc: dict[str, Any], rule: str
) -> None:
    broken = json.loads(built(shape, True))
    for step in _steps_in_place(broken["Steps"]):
        if step["Type"] in JOB_STEPS:
            network(step)["VpcConfig"] = vpc
    checks = [c for c in check_definition(broken) if c.step_type in JOB_STEPS]
    assert checks
    for check in checks:
        found = [v for v in check.outcome.violations if "VpcConfig" in v.path]
        assert found, check.label
        assert all(rule in v.rule for v in found), [str(v) for v in found]


def _steps_in_place(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for step in steps:
        found.append(step)
        found += _steps_in_place(step.get("Arguments", {}).get("IfSteps", []))
        found += _steps_in_place(step.get("Arguments", {}).get("ElseSteps", []))
    return found


def test_each_tuning_job_runs_where_trains_job_does() -> None:
    train = job_steps(built("training", True))["Train"]["Arguments"]
    job = job_steps(built("training-tuned", True))["Tune"]["Arguments"]["TrainingJobDefinition"]
    for field in (
        "RoleArn",
        "OutputDataConfig",
        "ResourceConfig",
        "StoppingCondition",
        "Environment",
        "EnableNetworkIsolation",
        "EnableInterContainerTrafficEncryption",
        "VpcConfig",
    ):
        assert job[field] == train[field], field


def test_the_transform_job_takes_its_models_vpc() -> None:
    transform = all_steps(built("batch-errors", True))["Transform"]
    assert "VpcConfig" not in json.dumps(transform)
    # Why: the API has nowhere to put one; the job runs in the model's VPC (CreateModel).
    model = botocore.session.get_session().get_service_model("sagemaker")
    assert "VpcConfig" not in model.operation_model("CreateTransformJob").input_shape.members
    assert "VpcConfig" in model.operation_model("CreateModel").input_shape.members


def test_the_pipeline_builders_import_no_higher_layer() -> None:
    higher = {"infra", "mlops", "promotion", "demo"}
    root = Path(__file__).resolve().parents[1] / "pipelines"
    for name in (
        "processing.py",
        "shard_steps.py",
        "training_pipeline.py",
        "drift_pipeline.py",
        "quality_pipeline.py",
        "batch_pipeline.py",
    ):
        tree = ast.parse((root / name).read_text())
        for node in ast.walk(tree):
            modules = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not {m.split(".")[0] for m in modules} & higher, (name, modules)
