"""The batch pipeline's definition, built offline: the transform request SageMaker will get,
the split step only where bad rows are set aside, and every step valid against botocore."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from inference.batch_contract import BadRows
from infra.plan.aws_requests.pipeline_steps import check_definition
from pipelines.batch_pipeline import (
    SPLIT_STEP,
    TRANSFORM_STEP,
    BatchPipelineSpec,
    TransformSpec,
    build_definition,
)
from pipelines.spec import CodeLocation

KEY = "arn:aws:kms:eu-west-1:123456789012:key/1111"
ROLE = "arn:aws:iam::123456789012:role/churn-dev-sagemaker-execution"
OUTPUT_PATH = {
    "Std:Join": {
        "On": "/",
        "Values": [
            {"Get": "Parameters.OutputUri"},
            {"Get": "Execution.PipelineExecutionId"},
            "transform",
        ],
    }
}


def _spec(**transform: Any) -> BatchPipelineSpec:
    settings = {
        "instance_type": "ml.m5.xlarge",
        "instance_count": 2,
        "max_payload_mb": 6,
        "max_concurrent_transforms": 4,
        "content_type": "text/csv",
        "bad_rows": BadRows.ERRORS,
        **transform,
    }
    return BatchPipelineSpec(
        region="eu-west-1",
        pipeline_name="churn-dev-batch",
        role_arn=ROLE,
        kms_key_arn=KEY,
        artifacts_bucket="artifacts",
        model_name="batch-model-abc",
        input_uri="s3://data/batch/input/",
        output_uri="s3://artifacts/batch/output/",
        transform=TransformSpec(**settings),
        code=CodeLocation("s3://artifacts/code/src-1.tar.gz", "s3://artifacts/code/run-1.py"),
        image_uri="141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.4-2",
        split_instance_type="ml.t3.medium",
        volume_size_gb=30,
        max_runtime_seconds=4 * 3600,
        capture_uri="s3://capture/batchcapture/churn-dev-batch",
        tags=(("environment", "dev"), ("team", "ml")),
    )


@pytest.fixture(scope="module")
def built() -> Callable[[BatchPipelineSpec], dict[str, Any]]:
    cache: dict[BatchPipelineSpec, dict[str, Any]] = {}

    def build(spec: BatchPipelineSpec) -> dict[str, Any]:
        if spec not in cache:
            cache[spec] = json.loads(build_definition(spec))
        return cache[spec]

    return build


def _steps(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["Name"]: step for step in definition["Steps"]}


def test_the_transform_request_is_the_contract_and_the_settings(
    built: Callable[[BatchPipelineSpec], dict[str, Any]],
) -> None:
    definition = built(_spec())
    assert definition["Parameters"] == [
        {"Name": "InputUri", "Type": "String", "DefaultValue": "s3://data/batch/input/"},
        # No trailing slash: each run joins /<execution id>/<folder> onto it.
        {"Name": "OutputUri", "Type": "String", "DefaultValue": "s3://artifacts/batch/output"},
    ]
    transform = _steps(definition)[TRANSFORM_STEP]
    assert transform["Type"] == "Transform"
    assert transform["Arguments"] == {
        "ModelName": "batch-model-abc",
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": 6,
        "MaxConcurrentTransforms": 4,
        "Environment": {"MLOPS_BAD_ROWS": "errors"},
        "DataProcessing": {
            "InputFilter": "$[1:]",
            "JoinSource": "Input",
            "OutputFilter": "$[0,-5,-4,-3,-2,-1]",
        },
        "TransformInput": {
            "ContentType": "text/csv",
            "SplitType": "Line",
            "DataSource": {
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": {"Get": "Parameters.InputUri"}}
            },
        },
        "TransformOutput": {
            "Accept": "text/csv",
            "AssembleWith": "Line",
            "KmsKeyId": KEY,
            "S3OutputPath": OUTPUT_PATH,
        },
        "TransformResources": {
            "InstanceCount": 2,
            "InstanceType": "ml.m5.xlarge",
            "VolumeKmsKeyId": KEY,
        },
        # GenerateInferenceId stays off (SageMaker's default, left out): the records carry
        # their own ids (batch_contract.GENERATE_INFERENCE_ID).
        "DataCaptureConfig": {
            "DestinationS3Uri": "s3://capture/batchcapture/churn-dev-batch",
            "KmsKeyId": KEY,
        },
        "Tags": [{"Key": "environment", "Value": "dev"}, {"Key": "team", "Value": "ml"}],
    }


def test_json_lines_filter_on_the_id_and_features_objects(
    built: Callable[[BatchPipelineSpec], dict[str, Any]],
) -> None:
    spec = _spec(content_type="application/jsonlines", bad_rows=BadRows.FAIL)
    arguments = _steps(built(spec))[TRANSFORM_STEP]["Arguments"]
    assert arguments["DataProcessing"] == {
        "InputFilter": "$.features",
        "JoinSource": "Input",
        "OutputFilter": "$['id','SageMakerOutput']",
    }
    assert arguments["TransformOutput"]["Accept"] == "application/jsonlines"
    assert arguments["Environment"] == {"MLOPS_BAD_ROWS": "fail"}


def test_the_split_step_parts_the_transform_output_in_errors_mode(
    built: Callable[[BatchPipelineSpec], dict[str, Any]],
) -> None:
    split = _steps(built(_spec()))[SPLIT_STEP]
    arguments = split["Arguments"]
    assert split["Type"] == "Processing" and split["DependsOn"] == [TRANSFORM_STEP]
    assert arguments["AppSpecification"]["ContainerArguments"] == [
        "batch_split.py",
        *("--input", "/opt/ml/processing/input/transform"),
        *("--predictions", "/opt/ml/processing/output/predictions"),
        *("--errors", "/opt/ml/processing/output/errors"),
        *("--content-type", "text/csv"),
    ]
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in arguments["ProcessingInputs"]}
    assert inputs["transform"] == OUTPUT_PATH  # exactly where the transform wrote
    outputs = {
        o["OutputName"]: o["S3Output"]["S3Uri"]["Std:Join"]["Values"][-1]
        for o in arguments["ProcessingOutputConfig"]["Outputs"]
    }
    assert outputs == {"predictions": "predictions", "errors": "errors"}
    assert arguments["NetworkConfig"] == {
        "EnableNetworkIsolation": True,
        "EnableInterContainerTrafficEncryption": True,
    }
    assert arguments["ProcessingOutputConfig"]["KmsKeyId"] == KEY
    assert arguments["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == KEY
    assert arguments["StoppingCondition"] == {"MaxRuntimeInSeconds": 14400}
    assert arguments["RoleArn"] == ROLE


def test_fail_mode_has_no_split_step_and_no_capture_without_it(
    built: Callable[[BatchPipelineSpec], dict[str, Any]],
) -> None:
    spec = replace(_spec(bad_rows=BadRows.FAIL, max_concurrent_transforms=0), capture_uri=None)
    definition = built(spec)
    assert [s["Name"] for s in definition["Steps"]] == [TRANSFORM_STEP]
    arguments = definition["Steps"][0]["Arguments"]
    assert "DataCaptureConfig" not in arguments
    # 0: SageMaker chooses, so the member is left out.
    assert "MaxConcurrentTransforms" not in arguments


def test_every_step_is_a_valid_request_for_its_job_api(
    built: Callable[[BatchPipelineSpec], dict[str, Any]],
) -> None:
    checks = check_definition(built(_spec()))
    assert [(c.step, c.operation) for c in checks] == [
        (TRANSFORM_STEP, "CreateTransformJob"),
        (SPLIT_STEP, "CreateProcessingJob"),
    ]
    assert all(not c.outcome.violations for c in checks), [c.outcome for c in checks]


def test_a_transform_request_botocore_refuses_is_caught(
    built: Callable[[BatchPipelineSpec], dict[str, Any]],
) -> None:
    definition = json.loads(json.dumps(built(_spec())))
    arguments = definition["Steps"][0]["Arguments"]
    arguments["BatchStrategy"] = "Everything"
    del arguments["TransformResources"]
    (transform, _) = check_definition(definition)
    problems = " ".join(str(v) for v in transform.outcome.violations)
    assert "BatchStrategy" in problems and "TransformResources" in problems


@pytest.mark.parametrize(
    ("payload", "concurrent", "message"),
    [
        (101, 0, "outside 0-100"),
        (6, 20, r"6 MB x 20 concurrent transforms = 120 MB"),
    ],
)
def test_payloads_sagemaker_refuses_are_refused(
    payload: int, concurrent: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        TransformSpec("ml.m5.large", 1, payload, concurrent, "text/csv", BadRows.ERRORS)


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="text/plain"):
        TransformSpec("ml.m5.large", 1, 6, 0, "text/plain", BadRows.ERRORS)
