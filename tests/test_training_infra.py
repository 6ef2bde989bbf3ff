"""The training component under Pulumi mocks: registry, uploads, roles, pipeline, schedule."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    REPO,
    ROLE,
    ROLE_POLICY,
    PlannedStack,
    planned_vpc_conditions,
    planned_vpc_config,
)

from infra.plan.project import load_stack_config
from infra.plan.runner import PlanError, plan_config
from infra.stack_files import BUILD_DIR_ENV, build_code, build_dataset
from training.paths import GIT_SHA_ENV

ACCOUNT = "123456789012"
PIPELINE = "aws:sagemaker/pipeline:Pipeline"
SCHEDULE = "aws:scheduler/schedule:Schedule"
GROUP = "aws:sagemaker/modelPackageGroup:ModelPackageGroup"
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
TRAINING_JOB = "aws:sagemaker/trainingJob:TrainingJob"


def _role(stack: PlannedStack, suffix: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/churn-{stack.stack}-{suffix}"


def _policies(stack: PlannedStack, role_suffix: str) -> dict[str, dict[str, Any]]:
    role = f"churn-{stack.stack}-{role_suffix}"
    return {
        p.inputs["name"]: stack.document(p)
        for p in stack.all(ROLE_POLICY)
        if p.inputs["role"] == role
    }


def _statement(document: dict[str, Any], sid: str) -> dict[str, Any]:
    (found,) = [s for s in document["Statement"] if s["Sid"] == sid]
    return found


def _plan_with(stack: str, training: dict[str, Any]) -> PlannedStack:
    config = load_stack_config(REPO, stack)
    merged = {**json.loads(config.values["mlops:training"]), **training}
    values = {**config.values, "mlops:training": json.dumps(merged)}
    return PlannedStack(plan_config(replace(config, values=values)))


def test_registry_pipeline_and_schedule_are_named_for_the_stack(stack: PlannedStack) -> None:
    prefix = f"churn-{stack.stack}"
    group = stack.one(GROUP, "training")
    assert group.inputs["modelPackageGroupName"] == f"{prefix}-models"
    # Prod's model history outlives the stack, like its data.
    assert group.protect is group.retain_on_delete is (stack.stack == "prod")
    pipeline = stack.one(PIPELINE, "training")
    assert pipeline.inputs["pipelineName"] == f"{prefix}-training"
    assert pipeline.inputs["roleArn"] == _role(stack, "training-pipeline")
    assert stack.outputs["trainingPipelineName"] == f"{prefix}-training"
    assert stack.outputs["modelPackageGroupName"] == f"{prefix}-models"


def test_code_and_data_are_uploaded_under_their_hash_with_the_stack_key(
    stack: PlannedStack,
) -> None:
    code, dataset = build_code(), build_dataset()
    objects = {o.inputs["key"]: o for o in stack.all(OBJECT)}
    expected = {
        code.sourcedir.key: stack.outputs["artifactsBucket"],
        code.runner.key: stack.outputs["artifactsBucket"],
        dataset.csv.key: stack.outputs["dataBucket"],
        dataset.manifest.key: stack.outputs["dataBucket"],
    }
    assert set(objects) == set(expected)
    for key, bucket in expected.items():
        uploaded = objects[key]
        assert uploaded.inputs["bucket"] == bucket
        assert uploaded.inputs["serverSideEncryption"] == "aws:kms"
        assert uploaded.inputs["kmsKeyId"] == stack.outputs["kmsKeyArn"]
        # The asset is the very file whose hash is in the key.
        path = REPO / uploaded.inputs["source"]["path"]
        assert path.is_file()
        assert uploaded.retain_on_delete is (stack.stack == "prod")
    assert dataset.csv.key.startswith("raw/mlc_churn/")


def test_the_pipeline_waits_for_its_code_data_and_permissions(stack: PlannedStack) -> None:
    depends = set(stack.one(PIPELINE, "training").depends_on)
    needed = [o.urn for o in stack.all(OBJECT)]
    pipeline_role = f"churn-{stack.stack}-training-pipeline"
    needed += [p.urn for p in stack.all(ROLE_POLICY) if p.inputs["role"] == pipeline_role]
    assert len(needed) == 4 + 3
    assert set(needed) <= depends


def test_the_schedule_starts_the_pipeline_and_is_off_in_dev(
    stack: PlannedStack, raw_config: Any
) -> None:
    schedule = stack.one(SCHEDULE, "training")
    training = json.loads(raw_config(stack.stack)["mlops:training"])
    inputs = schedule.inputs
    assert inputs["name"] == f"churn-{stack.stack}-retraining"
    assert inputs["scheduleExpression"] == training.get("schedule", "rate(7 days)")
    assert inputs["state"] == ("DISABLED" if stack.stack == "dev" else "ENABLED")
    assert inputs["kmsKeyArn"] == stack.outputs["kmsKeyArn"]
    assert inputs["flexibleTimeWindow"] == {"mode": "OFF"}
    assert inputs["target"]["arn"] == stack.outputs["trainingPipelineArn"]
    assert inputs["target"]["roleArn"] == _role(stack, "training-schedule")


def test_dev_can_switch_its_schedule_on_and_prod_off_explicitly() -> None:
    assert (
        _plan_with("dev", {"scheduleEnabled": True}).one(SCHEDULE, "training").inputs["state"]
        == "ENABLED"
    )
    assert (
        _plan_with("prod", {"scheduleEnabled": False}).one(SCHEDULE, "training").inputs["state"]
        == "DISABLED"
    )


def test_the_scheduler_role_can_start_only_this_pipeline(stack: PlannedStack) -> None:
    role = stack.one(ROLE, "training-scheduler")
    (trust,) = stack.document(role, "assumeRolePolicy")["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {
        "aws:SourceAccount": ACCOUNT,
        "aws:SourceArn": f"arn:aws:scheduler:eu-west-1:{ACCOUNT}:schedule-group/default",
    }
    policies = _policies(stack, "training-schedule")
    start = _statement(policies["start-pipeline"], "StartThisPipeline")
    assert start["Action"] == "sagemaker:StartPipelineExecution"
    assert start["Resource"] == stack.outputs["trainingPipelineArn"]
    decrypt = _statement(policies["kms"], "DecryptThisSchedule")
    assert decrypt["Action"] == "kms:Decrypt"
    assert decrypt["Condition"]["StringEquals"] == {
        "kms:EncryptionContext:aws:scheduler:schedule:arn": (
            f"arn:aws:scheduler:eu-west-1:{ACCOUNT}:schedule/default/churn-{stack.stack}-retraining"
        )
    }


def test_the_pipeline_role_starts_only_isolated_encrypted_jobs_as_the_job_roles(
    stack: PlannedStack,
) -> None:
    policies = _policies(stack, "training-pipeline")
    start = _statement(policies["sagemaker"], "StartSecureJobs")
    assert set(start["Action"]) == {"sagemaker:CreateProcessingJob", "sagemaker:CreateTrainingJob"}
    assert all(
        ":processing-job/pipelines-*" in r or ":training-job/pipelines-*" in r
        for r in start["Resource"]
    )
    key = stack.outputs["kmsKeyArn"]
    assert start["Condition"] == {
        "Bool": {
            "sagemaker:NetworkIsolation": "true",
            "sagemaker:InterContainerTrafficEncryption": "true",
        },
        "ArnEquals": {"sagemaker:VolumeKmsKey": key, "sagemaker:OutputKmsKey": key},
        **planned_vpc_conditions(stack.plan),
    }
    passing = _statement(policies["pass-roles"], "PassJobRoles")
    assert sorted(passing["Resource"]) == [
        _role(stack, "model-card-job"),
        _role(stack, "processing-job"),
        _role(stack, "training-job"),
    ]
    assert passing["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    register = _statement(policies["sagemaker"], "RegisterModelVersions")
    group = f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model-package-group/churn-{stack.stack}-models"
    assert group in register["Resource"]


def test_only_the_model_card_job_may_start_with_network(stack: PlannedStack) -> None:
    statements = _policies(stack, "training-pipeline")["sagemaker"]["Statement"]
    creates = [s for s in statements if "sagemaker:CreateProcessingJob" in s["Action"]]
    assert sorted(s["Sid"] for s in creates) == ["StartModelCardJobs", "StartSecureJobs"]
    card = _statement(_policies(stack, "training-pipeline")["sagemaker"], "StartModelCardJobs")
    # Pipelines names a step's jobs pipelines-<execution>-<step, lower case>-<token>.
    assert card["Resource"] == (
        f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:processing-job/pipelines-*-publishmodelcard-*"
    )
    assert card["Condition"] == {
        "Bool": {"sagemaker:InterContainerTrafficEncryption": "true"},
        "ArnEquals": {"sagemaker:VolumeKmsKey": stack.outputs["kmsKeyArn"]},
        **planned_vpc_conditions(stack.plan),
    }


def test_the_model_card_role_touches_only_evaluation_reports_and_this_registrys_cards(
    stack: PlannedStack,
) -> None:
    policies = _policies(stack, "model-card-job")
    # In a VPC stack, also the network interfaces SageMaker places the job with.
    network = {"network"} if planned_vpc_config(stack.plan) else set()
    assert set(policies) == {"s3", "kms", "logs", "ecr", "model-cards", *network}
    artifacts = f"arn:aws:s3:::{stack.outputs['artifactsBucket']}"
    reads = set(_statement(policies["s3"], "ReadInputs")["Resource"])
    assert reads == {f"{artifacts}/code/*", f"{artifacts}/evaluation/*"}
    assert _writes(stack, "model-card-job") == {f"{artifacts}/evaluation/*"}
    (cards,) = policies["model-cards"]["Statement"]
    assert cards["Action"] == ["sagemaker:CreateModelCard", "sagemaker:UpdateModelCard"]
    assert cards["Resource"] == (
        f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model-card/churn-{stack.stack}-models-*"
    )
    kms = {s["Sid"]: s for s in policies["kms"]["Statement"]}
    assert {s["Resource"] for s in kms.values()} == {stack.outputs["kmsKeyArn"]}


def _writes(stack: PlannedStack, role_suffix: str) -> set[str]:
    s3 = _policies(stack, role_suffix)["s3"]
    return set(_statement(s3, "WriteJobOutputs")["Resource"])


def test_each_job_role_writes_only_its_steps_outputs(stack: PlannedStack) -> None:
    data = f"arn:aws:s3:::{stack.outputs['dataBucket']}"
    artifacts = f"arn:aws:s3:::{stack.outputs['artifactsBucket']}"
    assert _writes(stack, "processing-job") == {f"{data}/processed/*", f"{artifacts}/evaluation/*"}
    assert _writes(stack, "training-job") == {f"{artifacts}/models/*"}
    # Nobody but Pulumi writes code or raw data.
    for role in ("processing-job", "training-job"):
        assert not any("/code/" in r or "/raw/" in r for r in _writes(stack, role))


def test_no_baseline_training_job_unless_the_stack_asks(stack: PlannedStack) -> None:
    assert stack.of_type(TRAINING_JOB) == []
    assert "baselineTrainingJobName" not in stack.outputs


def test_a_baseline_job_trains_with_the_pipelines_image_code_and_data() -> None:
    # Tuning off, so the pipeline's Train step is the job to compare with.
    planned = _plan_with("staging", {"baselineJob": True, "tuning": {"enabled": False}})
    (job,) = planned.all(TRAINING_JOB)
    inputs = job.inputs
    code, dataset = build_code(), build_dataset()
    assert inputs["trainingJobName"].startswith("churn-staging-baseline-")
    assert len(inputs["trainingJobName"]) <= 63
    assert inputs["roleArn"] == _role(planned, "training-job")
    assert inputs["enableNetworkIsolation"] is True
    assert inputs["enableInterContainerTrafficEncryption"] is True
    key = planned.outputs["kmsKeyArn"]
    assert inputs["resourceConfig"]["volumeKmsKeyId"] == key
    assert inputs["outputDataConfig"]["kmsKeyId"] == key
    channels = {
        c["channelName"]: c["dataSource"]["s3DataSource"]["s3Uri"]
        for c in inputs["inputDataConfigs"]
    }
    assert channels == {
        "code": f"s3://{planned.outputs['artifactsBucket']}/{code.sourcedir.key}",
        "raw": f"s3://{planned.outputs['dataBucket']}/{dataset.prefix}",
    }
    definition = json.loads(planned.one(PIPELINE, "training").inputs["pipelineDefinition"])
    (pipeline_train,) = [s["Arguments"] for s in definition["Steps"] if s["Name"] == "Train"]
    assert (
        inputs["algorithmSpecification"]["trainingImage"]
        == (pipeline_train["AlgorithmSpecification"]["TrainingImage"])
    )
    hyperparameters = inputs["hyperParameters"]
    assert hyperparameters["sagemaker_program"] == "train.py"
    assert pipeline_train["HyperParameters"] == hyperparameters
    # The commit of the bundled code, not HEAD: a docs-only commit does not re-train.
    assert inputs["environment"] == pipeline_train["Environment"]
    assert inputs["environment"] == {GIT_SHA_ENV: code.commit, "PIP_NO_DEPS": "1"}
    assert planned.outputs["baselineTrainingJobName"] == inputs["trainingJobName"]


def test_without_the_container_wheels_the_plan_says_how_to_get_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BUILD_DIR_ENV, str(tmp_path))
    with pytest.raises(PlanError, match="Run `make wheelhouse`"):
        plan_config(load_stack_config(REPO, "dev"))
