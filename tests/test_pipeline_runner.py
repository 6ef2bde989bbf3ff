"""Starting and following the deployed pipeline: moto for the API, a fake where moto stops.

moto creates pipelines and starts executions (which it reports as Succeeded at once), but
has no ListPipelineExecutionSteps; step-by-step following is tested against a scripted fake
client that returns what SageMaker documents for that call.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from conftest import REPO, PlannedStack
from moto import mock_aws
from moto.server import ThreadedMotoServer

from pipelines.runner import PipelineRunError, PipelineRunner, parse_parameters

REGION = "eu-west-1"
ROLE = "arn:aws:iam::123456789012:role/churn-dev-training-pipeline"
MLOPS = str(REPO / ".venv" / "bin" / "mlops")


def _definition(stack: PlannedStack) -> str:
    raw = stack.one("aws:sagemaker/pipeline:Pipeline", "training").inputs["pipelineDefinition"]
    return raw if isinstance(raw, str) else json.dumps(raw)


@pytest.fixture
def sagemaker(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("sagemaker", region_name=REGION)


def _deploy(client: Any, plan_of: Any) -> None:
    client.create_model_package_group(ModelPackageGroupName="churn-dev-models")
    client.create_pipeline(
        PipelineName="churn-dev-training",
        PipelineDefinition=_definition(plan_of("dev")),
        RoleArn=ROLE,
    )


def test_the_planned_definition_creates_and_starts_in_moto(sagemaker: Any, plan_of: Any) -> None:
    _deploy(sagemaker, plan_of)
    runner = PipelineRunner(sagemaker, "churn-dev-training", poll_seconds=0, sleep=lambda _: None)

    assert set(runner.declared_parameters()) == {
        "InputDataUri",
        "ProcessingInstanceType",
        "TrainingInstanceType",
        "MetricThreshold",
        "ModelApprovalStatus",
    }
    arn = runner.start({"MetricThreshold": "0.9"}, display_name="manual-check")
    assert arn.startswith(f"arn:aws:sagemaker:{REGION}:123456789012:pipeline/churn-dev-training/")
    sent = sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)
    assert sent["PipelineParameters"] == [{"Name": "MetricThreshold", "Value": "0.9"}]

    events: list[str] = []
    result = runner.follow(arn, on_event=events.append)
    assert result.succeeded
    # moto lacks the step listing; the runner says so and still reports the outcome.
    assert result.steps_available is False
    assert len(events) == 1 and "following the execution only" in events[0]


def test_unknown_parameters_are_refused_before_anything_starts(
    sagemaker: Any, plan_of: Any
) -> None:
    _deploy(sagemaker, plan_of)
    runner = PipelineRunner(sagemaker, "churn-dev-training")
    with pytest.raises(
        PipelineRunError, match="has no parameter Threshold; it takes: InputDataUri"
    ):
        runner.start({"Threshold": "0.9"})
    executions = sagemaker.list_pipeline_executions(PipelineName="churn-dev-training")
    assert executions["PipelineExecutionSummaries"] == []


def test_a_pipeline_that_is_not_deployed_is_a_clear_error(sagemaker: Any) -> None:
    with pytest.raises(PipelineRunError, match="does not exist here; deploy the stack first"):
        PipelineRunner(sagemaker, "churn-dev-training").start({})


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["MetricThreshold"], "expected Name=value"),
        (["=0.9"], "expected Name=value"),
        (["A=1", "A=2"], "given twice"),
    ],
)
def test_malformed_parameters_are_refused(pairs: list[str], message: str) -> None:
    with pytest.raises(PipelineRunError, match=message):
        parse_parameters(pairs)


def test_values_may_contain_equals_signs() -> None:
    assert parse_parameters(["InputDataUri=s3://b/raw/?v=1"]) == {"InputDataUri": "s3://b/raw/?v=1"}


class ScriptedSageMaker:
    """Answers DescribePipelineExecution and ListPipelineExecutionSteps from a script."""

    def __init__(self, script: list[tuple[str, list[dict[str, str]]]]) -> None:
        self.script = script
        self.polls = 0

    def describe_pipeline_execution(self, PipelineExecutionArn: str) -> dict[str, Any]:  # noqa: N803
        status, _ = self.script[min(self.polls, len(self.script) - 1)]
        failure = "Step failure: One or more steps failed." if status == "Failed" else ""
        return {"PipelineExecutionStatus": status, "FailureReason": failure}

    def list_pipeline_execution_steps(self, **request: Any) -> dict[str, Any]:
        _, steps = self.script[min(self.polls, len(self.script) - 1)]
        self.polls += 1
        assert request["SortOrder"] == "Descending"
        return {"PipelineExecutionSteps": list(reversed(steps))}


def _step(name: str, status: str, reason: str = "") -> dict[str, str]:
    step = {"StepName": name, "StepStatus": status}
    if reason:
        step["FailureReason"] = reason
    return step


def test_each_step_change_is_reported_once_in_the_order_steps_ran() -> None:
    fake = ScriptedSageMaker(
        [
            ("Executing", [_step("ValidateAndSplit", "Executing")]),
            ("Executing", [_step("ValidateAndSplit", "Executing")]),
            ("Executing", [_step("ValidateAndSplit", "Succeeded"), _step("Train", "Executing")]),
            (
                "Succeeded",
                [
                    _step("ValidateAndSplit", "Succeeded"),
                    _step("Train", "Succeeded"),
                    _step("Evaluate", "Succeeded"),
                    _step("CheckMetric", "Succeeded"),
                    _step("RegisterModel", "Succeeded"),
                ],
            ),
        ]
    )
    sleeps: list[float] = []
    events: list[str] = []
    result = PipelineRunner(fake, "p", poll_seconds=7, sleep=sleeps.append).follow(
        "arn", on_event=events.append
    )

    assert result.succeeded
    assert events == [
        "ValidateAndSplit: Executing",
        "ValidateAndSplit: Succeeded",
        "Train: Executing",
        "Train: Succeeded",
        "Evaluate: Succeeded",
        "CheckMetric: Succeeded",
        "RegisterModel: Succeeded",
    ]
    assert sleeps == [7, 7, 7]


def test_a_failed_gate_ends_the_run_with_the_steps_reason() -> None:
    reason = "roc_auc on the test split is 0.71 - below the threshold 0.85 - so the model was not registered."
    fake = ScriptedSageMaker(
        [
            (
                "Failed",
                [
                    _step("Evaluate", "Succeeded"),
                    _step("CheckMetric", "Succeeded"),
                    _step("MetricBelowThreshold", "Failed", reason),
                ],
            )
        ]
    )
    events: list[str] = []
    result = PipelineRunner(fake, "p", sleep=lambda _: None).follow("arn", events.append)
    assert not result.succeeded
    assert result.status == "Failed"
    assert events[-1] == f"MetricBelowThreshold: Failed: {reason}"
    assert result.steps["MetricBelowThreshold"].failure_reason == reason


# --- the console command, against moto as a real HTTP endpoint ------------------------------


@pytest.fixture
def moto_server(plan_of: Any) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        # moto's state is per process, not per server: start every test from nothing.
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"))
        client = boto3.client(
            "sagemaker", region_name=REGION, endpoint_url=url,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip
        _deploy(client, plan_of)
        yield url
    finally:
        server.stop()


def _mlops(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    env.pop("AWS_PROFILE", None)
    return subprocess.run(
        [MLOPS, *args], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )


def test_mlops_pipeline_run_starts_and_follows_the_stacks_pipeline(moto_server: str) -> None:
    result = _mlops(
        "pipeline", "run", "--stack", "dev", "--wait", "--poll-seconds", "0.1",
        "--param", "MetricThreshold=0.9", "--endpoint-url", moto_server,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "started churn-dev-training: arn:aws:sagemaker:eu-west-1:" in result.stdout
    assert "following the execution only" in result.stdout
    assert "churn-dev-training succeeded" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--stack", "dev", "--param", "Nope=1"), "has no parameter Nope"),
        (("--stack", "dev", "--param", "oops"), "expected Name=value"),
        (("--stack", "qa"), "unknown stack 'qa'"),
    ],
)
def test_mlops_pipeline_run_refuses_bad_input_with_one_clear_line(
    moto_server: str, args: tuple[str, ...], message: str
) -> None:
    result = _mlops("pipeline", "run", *args, "--endpoint-url", moto_server)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
