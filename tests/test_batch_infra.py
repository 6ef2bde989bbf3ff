"""The batch pipeline per stack under Pulumi mocks (the offline plan): its model, roles,
schedule and definition; its policies against the IAM reference; its requests against
botocore; the guardrails on it; and `mlops batch --stack` against a scripted SageMaker."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import REPO, ROLE_POLICY, STACKS, PlannedStack
from typer.testing import CliRunner

from guardrails import check_plan as check_guardrails
from guardrails.runner import check_resources, resources_of
from infra.plan.aws_requests.plan_check import check_plan as check_requests
from infra.policies.analysis.checks import PolicyKind, check_document
from infra.policies.analysis.reference import ServiceReference
from infra.policies.batch import BatchScope, batch_pipeline_policies
from mlops.commands import batch_stack
from mlops.commands.batch_stack import BatchStackError, BatchTarget, check_uris

PIPELINE = "aws:sagemaker/pipeline:Pipeline"
MODEL = "aws:sagemaker/model:Model"
SCHEDULE = "aws:scheduler/schedule:Schedule"
ACCOUNT = "123456789012"
KEY_PREFIX = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/"


def _definition(stack: PlannedStack) -> dict[str, Any]:
    raw = stack.one(PIPELINE, "batch").inputs["pipelineDefinition"]
    return raw if isinstance(raw, dict) else json.loads(raw)


def _policies(stack: PlannedStack, role_name: str) -> dict[str, dict[str, Any]]:
    return {
        p.inputs["name"]: stack.document(p)
        for p in stack.all(ROLE_POLICY)
        if p.inputs["role"] == role_name
    }


# --- per stack -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", STACKS)
def test_each_stack_declares_the_batch_pipeline_and_its_isolated_model(
    name: str, plan_of: Callable[[str], PlannedStack]
) -> None:
    stack = plan_of(name)
    prefix = f"churn-{name}"
    model = stack.one(MODEL, f"{prefix}-batch-model")
    assert model.inputs["enableNetworkIsolation"] is True
    assert model.inputs["executionRoleArn"] == (
        f"arn:aws:iam::{ACCOUNT}:role/{prefix}-sagemaker-execution"
    )
    # The served version, as the endpoint names it (every stack file serves packageVersion 1).
    assert model.inputs["primaryContainer"] == {
        "modelPackageName": f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model-package/{prefix}-models/1"
    }
    pipeline = stack.one(PIPELINE, "batch")
    assert pipeline.inputs["pipelineName"] == f"{prefix}-batch"
    assert pipeline.inputs["roleArn"] == f"arn:aws:iam::{ACCOUNT}:role/{prefix}-batch-pipeline"
    assert stack.plan.outputs["batchPipelineName"] == f"{prefix}-batch"
    transform = _definition(stack)["Steps"][0]["Arguments"]
    assert transform["ModelName"].startswith(f"{prefix}-batch-model-")
    parameters = {p["Name"]: p["DefaultValue"] for p in _definition(stack)["Parameters"]}
    assert parameters == {
        "InputUri": f"s3://{prefix}-data-{ACCOUNT}-eu-west-1/batch/input/",
        "OutputUri": f"s3://{prefix}-artifacts-{ACCOUNT}-eu-west-1/batch/output",
    }


@pytest.mark.parametrize(
    ("name", "instance", "count", "bad_rows", "steps"),
    [
        ("dev", "ml.m5.large", 1, "errors", ["Transform", "SplitBatchOutput"]),
        ("staging", "ml.m5.large", 1, "errors", ["Transform", "SplitBatchOutput"]),
        ("prod", "ml.m5.xlarge", 2, "fail", ["Transform"]),
    ],
)
def test_the_stack_files_batch_settings_reach_the_transform(
    name: str,
    instance: str,
    count: int,
    bad_rows: str,
    steps: list[str],
    plan_of: Callable[[str], PlannedStack],
) -> None:
    definition = _definition(plan_of(name))
    assert [s["Name"] for s in definition["Steps"]] == steps
    transform = definition["Steps"][0]["Arguments"]
    assert transform["TransformResources"]["InstanceType"] == instance
    assert transform["TransformResources"]["InstanceCount"] == count
    assert transform["Environment"] == {"MLOPS_BAD_ROWS": bad_rows}
    assert transform["MaxPayloadInMB"] == 6
    assert transform["TransformResources"]["VolumeKmsKeyId"].startswith(KEY_PREFIX)
    assert transform["TransformOutput"]["KmsKeyId"].startswith(KEY_PREFIX)
    # capture defaults on: manifests beside the endpoint's capture, under the stack key
    assert transform["DataCaptureConfig"]["DestinationS3Uri"] == (
        f"s3://churn-{name}-capture-{ACCOUNT}-eu-west-1/batchcapture/churn-{name}-batch"
    )
    assert transform["DataCaptureConfig"]["KmsKeyId"].startswith(KEY_PREFIX)
    tags = {t["Key"]: t["Value"] for t in transform["Tags"]}
    assert tags["environment"] == name and tags["managed-by"] == "pulumi"


@pytest.mark.parametrize("name", STACKS)
def test_only_prod_runs_batch_on_a_schedule(
    name: str, plan_of: Callable[[str], PlannedStack]
) -> None:
    schedules = [
        s for s in plan_of(name).all(SCHEDULE) if s.inputs["name"] == f"churn-{name}-batch"
    ]
    if name != "prod":
        assert schedules == []
        return
    (schedule,) = schedules
    assert schedule.inputs["scheduleExpression"] == "cron(0 4 * * ? *)"
    assert schedule.inputs["state"] == "ENABLED"
    assert schedule.inputs["target"]["arn"] == (
        f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:pipeline/churn-prod-batch"
    )


# --- least privilege -------------------------------------------------------------------------


@pytest.mark.parametrize("name", STACKS)
def test_the_pipeline_role_starts_only_encrypted_transforms_of_the_batch_model(
    name: str, plan_of: Callable[[str], PlannedStack]
) -> None:
    stack = plan_of(name)
    prefix = f"churn-{name}"
    policies = _policies(stack, f"{prefix}-batch-pipeline")
    split = name != "prod"  # prod fails on a bad row: no split job, no role to pass
    assert set(policies) == ({"sagemaker", "pass-role"} if split else {"sagemaker"})
    by_sid = {s["Sid"]: s for s in policies["sagemaker"]["Statement"]}
    start = by_sid["StartEncryptedTransformOfTheBatchModel"]
    assert start["Action"] == "sagemaker:CreateTransformJob"
    assert start["Resource"] == (f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:transform-job/pipelines-*")
    model = stack.one(MODEL, f"{prefix}-batch-model")
    key = start["Condition"]["ArnEquals"]["sagemaker:VolumeKmsKey"]
    assert key.startswith(KEY_PREFIX)
    assert start["Condition"]["ArnEquals"] == {
        "sagemaker:VolumeKmsKey": key,
        "sagemaker:OutputKmsKey": key,
        "sagemaker:ModelArn": (
            f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model/{prefix}-batch-model-"
            + _definition(stack)["Steps"][0]["Arguments"]["ModelName"].rsplit("-", 1)[1]
        ),
    }
    assert model.name == f"{prefix}-batch-model"
    actions = {a for s in policies["sagemaker"]["Statement"] for a in _list(s["Action"])}
    expected = {
        "sagemaker:CreateTransformJob",
        "sagemaker:DescribeTransformJob",
        "sagemaker:StopTransformJob",
        "sagemaker:AddTags",
    }
    if split:
        expected |= {
            "sagemaker:CreateProcessingJob",
            "sagemaker:DescribeProcessingJob",
            "sagemaker:StopProcessingJob",
        }
        (passing,) = policies["pass-role"]["Statement"]
        assert passing["Resource"] == f"arn:aws:iam::{ACCOUNT}:role/{prefix}-sagemaker-execution"
        isolated = by_sid["StartIsolatedSplitJobs"]["Condition"]["Bool"]
        assert isolated["sagemaker:NetworkIsolation"] == "true"
    # No CreateModel, no S3 or KMS: the model is declared, the jobs touch data as their role.
    assert actions == expected


@pytest.mark.parametrize("name", STACKS)
def test_the_execution_role_writes_only_batch_outputs_and_capture(
    name: str, plan_of: Callable[[str], PlannedStack]
) -> None:
    prefix = f"churn-{name}"
    policy = _policies(plan_of(name), f"{prefix}-sagemaker-execution")["batch-outputs"]
    (statement,) = policy["Statement"]
    assert statement["Action"] == ["s3:PutObject", "s3:AbortMultipartUpload"]
    assert statement["Resource"] == [
        f"arn:aws:s3:::{prefix}-artifacts-{ACCOUNT}-eu-west-1/batch/output/*",
        f"arn:aws:s3:::{prefix}-capture-{ACCOUNT}-eu-west-1/batchcapture/{prefix}-batch/*",
    ]


def test_every_batch_action_and_condition_key_is_in_the_iam_reference() -> None:
    reference = ServiceReference.bundled()
    scope = BatchScope(
        partition="aws",
        region="eu-west-1",
        account_id=ACCOUNT,
        kms_key_arn=f"{KEY_PREFIX}1111",
        execution_role_arn=f"arn:aws:iam::{ACCOUNT}:role/churn-dev-sagemaker-execution",
        model_arn=f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model/churn-dev-batch-model-1",
        instance_type="ml.m5.large",
        split_instance_type="ml.t3.medium",
        artifacts_bucket_arn="arn:aws:s3:::artifacts",
        capture_bucket_arn="arn:aws:s3:::capture",
        pipeline_name="churn-dev-batch",
    )
    checked = 0
    for document in batch_pipeline_policies(scope, split=True).values():
        findings = check_document(document, policy="batch", kind=PolicyKind.IDENTITY).findings
        assert not findings, findings
        for statement in document["Statement"]:
            for action in _list(statement["Action"]):
                (found,) = reference.actions(action)
                for keys in statement.get("Condition", {}).values():
                    for key in keys:
                        if key.startswith("sagemaker:"):
                            assert found.condition_key(key), f"{action} has no {key}"
                            checked += 1
    # ModelArn, InstanceTypes and the key pair on the transform; isolation, in-transit, the
    # key pair and InstanceTypes on the split job
    assert checked == 4 + 5


def test_a_condition_key_the_action_lacks_is_caught() -> None:
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Wrong",
                "Effect": "Allow",
                "Action": "sagemaker:CreateTransformJob",
                "Resource": f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:transform-job/pipelines-*",
                # CreateModel's key, not CreateTransformJob's
                "Condition": {"Bool": {"sagemaker:NetworkIsolation": "true"}},
            }
        ],
    }
    findings = check_document(document, policy="batch", kind=PolicyKind.IDENTITY).findings
    assert any("sagemaker:NetworkIsolation" in str(f) for f in findings), findings


# --- requests and guardrails -----------------------------------------------------------------


@pytest.mark.parametrize("name", STACKS)
def test_the_batch_resources_plan_requests_botocore_accepts(
    name: str, plan_of: Callable[[str], PlannedStack]
) -> None:
    checked = check_requests(plan_of(name).plan)
    batch = [
        c for c in checked.checks if c.resource.name.startswith(("batch", f"churn-{name}-batch"))
    ]
    assert {c.resource.type for c in batch} >= {PIPELINE, MODEL, "aws:iam/role:Role"}
    assert not [p for c in batch for p in c.problems]
    steps = [s for c in batch for s in c.steps]
    assert ("Transform", "CreateTransformJob") in {(s.step, s.operation) for s in steps}


@pytest.mark.parametrize("name", STACKS)
def test_the_guardrails_pass_the_batch_pipeline(
    name: str, plan_of: Callable[[str], PlannedStack]
) -> None:
    found = [v for v in check_guardrails(plan_of(name).plan) if "batch" in v.message]
    assert found == []


def _with_batch(plan_of: Callable[[str], PlannedStack], edit: Callable[[Any], None]) -> list[str]:
    """Guardrail messages for dev with the batch pipeline's definition edited."""
    resources = resources_of(plan_of("dev").plan)
    changed = []
    for resource in resources:
        if resource.type == PIPELINE and resource.name == "batch":
            definition = json.loads(json.dumps(resource.props["pipelineDefinition"]))
            if isinstance(definition, str):
                definition = json.loads(definition)
            edit(definition)
            resource = replace(resource, props={**resource.props, "pipelineDefinition": definition})
        changed.append(resource)
    return [v.message for v in check_resources(changed)]


def test_a_transform_without_the_key_is_refused(plan_of: Callable[[str], PlannedStack]) -> None:
    def strip_keys(definition: dict[str, Any]) -> None:
        arguments = definition["Steps"][0]["Arguments"]
        del arguments["TransformResources"]["VolumeKmsKeyId"]
        del arguments["TransformOutput"]["KmsKeyId"]
        del arguments["DataCaptureConfig"]["KmsKeyId"]

    found = [m for m in _with_batch(plan_of, strip_keys) if "step Transform" in m]
    assert sorted(found) == sorted(
        f"aws:sagemaker/pipeline:Pipeline 'batch': step Transform: {what} must be KMS-encrypted "
        f"({path} is not set)"
        for what, path in (
            ("transform volumes", "TransformResources.VolumeKmsKeyId"),
            ("transform output", "TransformOutput.KmsKeyId"),
            ("batch capture", "DataCaptureConfig.KmsKeyId"),
        )
    )


def test_a_transform_with_a_model_that_is_not_isolated_is_refused(
    plan_of: Callable[[str], PlannedStack],
) -> None:
    resources = resources_of(plan_of("dev").plan)
    open_model = [
        replace(r, props={**r.props, "enableNetworkIsolation": False})
        if r.type == MODEL and r.name == "churn-dev-batch-model"
        else r
        for r in resources
    ]
    found = [v.message for v in check_resources(open_model) if "step Transform" in v.message]
    assert found == [
        "aws:sagemaker/pipeline:Pipeline 'batch': step Transform: its model churn-dev-batch-model "
        "must set enableNetworkIsolation true (a transform job runs the model's container on "
        "the batch data)"
    ]


def test_a_transform_of_a_model_the_stack_does_not_declare_is_refused(
    plan_of: Callable[[str], PlannedStack],
) -> None:
    def elsewhere(definition: dict[str, Any]) -> None:
        definition["Steps"][0]["Arguments"]["ModelName"] = "someone-elses-model"

    resources = resources_of(plan_of("dev").plan)
    # Without the recorded dependency on the batch model, names alone must match: every
    # model's is known here (as after apply).
    unlinked = [
        replace(r, dependencies=())
        if r.type == PIPELINE and r.name == "batch"
        else replace(r, props={**r.props, "name": f"{r.name}-0a1b2c3"})
        if r.type == MODEL
        else r
        for r in resources
    ]
    edited = []
    for resource in unlinked:
        if resource.type == PIPELINE and resource.name == "batch":
            definition = json.loads(json.dumps(resource.props["pipelineDefinition"]))
            definition = json.loads(definition) if isinstance(definition, str) else definition
            elsewhere(definition)
            resource = replace(resource, props={**resource.props, "pipelineDefinition": definition})
        edited.append(resource)
    found = [v.message for v in check_resources(edited) if "step Transform" in v.message]
    assert found == [
        "aws:sagemaker/pipeline:Pipeline 'batch': step Transform: transforms with model "
        "'someone-elses-model', which the stack does not declare, so its network isolation "
        "cannot be checked"
    ]
    # Before apply an auto-named model's name is unknown: it may be the one, so no finding
    # (every model's own isolation is still checked, by validate_models).
    unnamed = [
        replace(r, props={k: v for k, v in r.props.items() if k != "name"})
        if r.type == MODEL
        else r
        for r in edited
    ]
    assert not [v for v in check_resources(unnamed) if "step Transform" in v.message]


# --- mlops batch --stack ---------------------------------------------------------------------

DATA = f"churn-dev-data-{ACCOUNT}-eu-west-1"
ARTIFACTS = f"churn-dev-artifacts-{ACCOUNT}-eu-west-1"
TARGET = BatchTarget("churn-dev-batch", DATA, ARTIFACTS)
EXECUTION = f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:pipeline/churn-dev-batch/execution/k3x9q2w8e7r1"
DEFINITION = json.dumps(
    {
        "Parameters": [
            {"Name": "InputUri", "Type": "String", "DefaultValue": f"s3://{DATA}/batch/input/"},
            {"Name": "OutputUri", "Type": "String", "DefaultValue": f"s3://{ARTIFACTS}/out"},
        ]
    }
)


class FakeSageMaker:
    """What SageMaker answers for the calls the runner makes, scripted per poll (moto's
    ListPipelineExecutionSteps answers 500, so the follow loop is tested here)."""

    def __init__(self, polls: list[tuple[str, list[dict[str, str]], str]]) -> None:
        self.polls = polls
        self.started: list[dict[str, Any]] = []
        self.at = -1

    def describe_pipeline(self, PipelineName: str) -> dict[str, Any]:  # noqa: N803
        assert PipelineName == "churn-dev-batch"
        return {"PipelineDefinition": DEFINITION}

    def start_pipeline_execution(self, **request: Any) -> dict[str, str]:
        self.started.append(request)
        return {"PipelineExecutionArn": EXECUTION}

    def describe_pipeline_execution(self, PipelineExecutionArn: str) -> dict[str, str]:  # noqa: N803
        self.at += 1
        status, _, reason = self.polls[self.at]
        return {"PipelineExecutionStatus": status, **({"FailureReason": reason} if reason else {})}

    def list_pipeline_execution_steps(self, **_: Any) -> dict[str, Any]:
        return {"PipelineExecutionSteps": self.polls[self.at][1]}


class FakeS3:
    def __init__(self, objects: dict[tuple[str, str], bytes]) -> None:
        self.objects = objects
        self.read: list[tuple[str, str]] = []

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803
        self.read.append((Bucket, Key))
        if (Bucket, Key) not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "none"}}, "GetObject")
        return {"Body": io.BytesIO(self.objects[(Bucket, Key)])}


def _step(name: str, status: str, reason: str = "") -> dict[str, str]:
    return {"StepName": name, "StepStatus": status, **({"FailureReason": reason} if reason else {})}


SUMMARY = {
    "files": 2,
    "rows": 300,
    "scored": 297,
    "errors": 3,
    "errors_by_reason": {"not_a_number": 2, "wrong_column_count": 1},
}
SUCCESS = [
    ("Executing", [_step("Transform", "Executing")], ""),
    ("Executing", [_step("SplitBatchOutput", "Executing"), _step("Transform", "Succeeded")], ""),
    ("Succeeded", [_step("SplitBatchOutput", "Succeeded"), _step("Transform", "Succeeded")], ""),
]


def test_a_run_starts_with_the_uris_follows_each_step_and_reads_the_summary() -> None:
    sagemaker = FakeSageMaker(SUCCESS)
    s3 = FakeS3(
        {
            (ARTIFACTS, "batch/output/nightly/k3x9q2w8e7r1/errors/summary.json"): json.dumps(
                SUMMARY
            ).encode()
        }
    )
    events: list[str] = []
    result = batch_stack.run(
        sagemaker,
        s3,
        TARGET,
        f"s3://{DATA}/batch/input/2026-11-30",
        f"s3://{ARTIFACTS}/batch/output/nightly/",
        poll_seconds=0,
        sleep=lambda _: None,
        on_event=events.append,
    )
    assert sagemaker.started == [
        {
            "PipelineName": "churn-dev-batch",
            "PipelineParameters": [
                # A prefix, so 2026-11-30 does not also match 2026-11-30-old/.
                {"Name": "InputUri", "Value": f"s3://{DATA}/batch/input/2026-11-30/"},
                {"Name": "OutputUri", "Value": f"s3://{ARTIFACTS}/batch/output/nightly"},
            ],
        }
    ]
    assert events == [
        f"started churn-dev-batch: {EXECUTION}",
        "Transform: Executing",
        "Transform: Succeeded",
        "SplitBatchOutput: Executing",
        "SplitBatchOutput: Succeeded",
    ]
    assert result.succeeded
    assert result.run_uri == f"s3://{ARTIFACTS}/batch/output/nightly/k3x9q2w8e7r1"
    assert result.summary == batch_stack.BatchSummary(
        2, 300, 297, 3, (("not_a_number", 2), ("wrong_column_count", 1))
    )


def test_a_failed_run_keeps_its_reason_and_reads_no_summary() -> None:
    reason = "Transform job failed: line 3 of the mini-batch: not_a_number"
    sagemaker = FakeSageMaker(
        [
            ("Executing", [_step("Transform", "Executing")], ""),
            ("Failed", [_step("Transform", "Failed", reason)], f"Step failure: {reason}"),
        ]
    )
    s3 = FakeS3({})
    events: list[str] = []
    result = batch_stack.run(
        sagemaker,
        s3,
        TARGET,
        f"s3://{DATA}/batch/input/",
        f"s3://{ARTIFACTS}/batch/output",
        poll_seconds=0,
        sleep=lambda _: None,
        on_event=events.append,
    )
    assert not result.succeeded and result.status == "Failed"
    assert result.failure_reason == f"Step failure: {reason}"
    assert events[-1] == f"Transform: Failed: {reason}"
    assert result.summary is None and s3.read == []


def test_a_run_without_a_split_step_has_no_summary() -> None:
    sagemaker = FakeSageMaker([("Succeeded", [_step("Transform", "Succeeded")], "")])
    result = batch_stack.run(
        sagemaker,
        FakeS3({}),
        TARGET,
        f"s3://{DATA}/batch/input/",
        f"s3://{ARTIFACTS}/batch/output",
        poll_seconds=0,
        sleep=lambda _: None,
        on_event=lambda _: None,
    )
    assert result.succeeded and result.summary is None
    assert result.folder("transform") == (f"s3://{ARTIFACTS}/batch/output/k3x9q2w8e7r1/transform/")


@pytest.mark.parametrize(
    ("input_uri", "output_uri", "message"),
    [
        ("/tmp/in", f"s3://{ARTIFACTS}/batch/output", "--input '/tmp/in' is not an s3:// URI"),
        ("s3:///batch/input", f"s3://{ARTIFACTS}/batch/output", "has no bucket"),
        (
            "s3://someone-else/batch/input/",
            f"s3://{ARTIFACTS}/batch/output",
            f"is not a prefix of the stack's data bucket: the batch model's role reads s3://{DATA}/",
        ),
        (f"s3://{DATA}", f"s3://{ARTIFACTS}/batch/output", "not a prefix of the stack's data"),
        (f"s3://{DATA}/batch/input/", "runs/out", "--output 'runs/out' is not an s3:// URI"),
        (
            f"s3://{DATA}/batch/input/",
            f"s3://{ARTIFACTS}/models/",
            f"is not under s3://{ARTIFACTS}/batch/output/: the only prefix the batch jobs may",
        ),
        # A sibling that merely starts with the same characters is not under the prefix.
        (f"s3://{DATA}/batch/input/", f"s3://{ARTIFACTS}/batch/outputs", "is not under"),
    ],
)
def test_uris_the_jobs_cannot_use_are_refused_before_anything_starts(
    input_uri: str, output_uri: str, message: str
) -> None:
    with pytest.raises(BatchStackError, match=_literal(message)):
        check_uris(input_uri, output_uri, TARGET)


class FakeSession:
    def __init__(self, clients: dict[str, Any]) -> None:
        self.clients = clients

    def client(self, service: str, **_: Any) -> Any:
        return self.clients[service]


class FakeSts:
    def get_caller_identity(self) -> dict[str, str]:
        return {"Account": ACCOUNT}


def _cli(monkeypatch: pytest.MonkeyPatch, sagemaker: FakeSageMaker, s3: FakeS3, *args: str) -> Any:
    import time

    import infra.aws_session

    session = FakeSession({"sagemaker": sagemaker, "s3": s3, "sts": FakeSts()})
    monkeypatch.setattr(infra.aws_session, "stack_session", lambda _: session)
    monkeypatch.setattr(time, "sleep", lambda _: None)
    from mlops.cli import app

    return CliRunner().invoke(app, ["batch", "--stack", "dev", *args, "--project-dir", str(REPO)])


def test_the_cli_prints_the_summary_of_a_run(monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = FakeS3(
        {(ARTIFACTS, "batch/output/k3x9q2w8e7r1/errors/summary.json"): json.dumps(SUMMARY).encode()}
    )
    result = _cli(
        monkeypatch,
        FakeSageMaker(SUCCESS),
        s3,
        *("--input", f"s3://{DATA}/batch/input/"),
        *("--output", f"s3://{ARTIFACTS}/batch/output/"),
    )
    assert result.exit_code == 0, result.output
    assert "2 file(s), 300 row(s): 297 scored, 3 error(s)" in result.output
    assert "not_a_number: 2" in result.output
    assert f"predictions: s3://{ARTIFACTS}/batch/output/k3x9q2w8e7r1/predictions/" in (
        result.output
    )


def test_the_cli_exits_1_with_the_failure_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    sagemaker = FakeSageMaker(
        [("Failed", [_step("Transform", "Failed", "ClientError: bad row")], "Step failure")]
    )
    result = _cli(
        monkeypatch,
        sagemaker,
        FakeS3({}),
        *("--input", f"s3://{DATA}/batch/input/"),
        *("--output", f"s3://{ARTIFACTS}/batch/output/"),
    )
    assert result.exit_code == 1
    assert "churn-dev-batch failed: Step failure" in result.output
    assert "Transform: Failed: ClientError: bad row" in result.output


def test_the_cli_refuses_a_bad_uri_in_one_line_without_starting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sagemaker = FakeSageMaker(SUCCESS)
    result = _cli(
        monkeypatch,
        sagemaker,
        FakeS3({}),
        *("--input", "s3://elsewhere/in/"),
        *("--output", f"s3://{ARTIFACTS}/batch/output/"),
    )
    assert result.exit_code == 1
    assert "error: --input 's3://elsewhere/in/' is not a prefix of the stack's data bucket" in (
        result.output
    )
    assert "Traceback" not in result.output and sagemaker.started == []


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _literal(text: str) -> str:
    import re

    return re.escape(text)
