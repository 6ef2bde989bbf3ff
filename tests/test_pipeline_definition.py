"""The retraining pipeline's definition: step graph, parameters, images, URIs, encryption.

Most tests read the definition exactly as each stack's plan hands it to
aws.sagemaker.Pipeline; the determinism and offline tests build it in fresh processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, PlannedStack, planned_vpc_config

from infra.config.settings import ExplainabilitySettings
from infra.plan.project import load_stack_config
from infra.plan.runner import plan_config
from infra.source_commit import DIRTY_SUFFIX
from infra.stack_files import build_code, build_dataset
from training.paths import GIT_SHA_ENV

PIPELINE = "aws:sagemaker/pipeline:Pipeline"
ACCOUNT = "123456789012"
SKLEARN_IMAGE_ACCOUNTS = {
    # AWS's published registry of the managed scikit-learn image, per region.
    "eu-west-1": "141502667606.dkr.ecr.eu-west-1.amazonaws.com",
    "us-east-1": "683313688378.dkr.ecr.us-east-1.amazonaws.com",
    "ap-southeast-2": "783357654285.dkr.ecr.ap-southeast-2.amazonaws.com",
}


def definition_of(stack: PlannedStack) -> dict[str, Any]:
    raw = stack.one(PIPELINE, "training").inputs["pipelineDefinition"]
    return raw if isinstance(raw, dict) else json.loads(raw)


def steps_of(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every step by name, including those nested in the condition's branches."""
    found: dict[str, dict[str, Any]] = {}

    def visit(steps: list[dict[str, Any]]) -> None:
        for step in steps:
            found[step["Name"]] = step
            arguments = step.get("Arguments", {})
            visit(arguments.get("IfSteps", []))
            visit(arguments.get("ElseSteps", []))

    visit(definition["Steps"])
    return found


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def gets_in(value: Any) -> set[str]:
    """The pipeline references ({"Get": ...}) a step's arguments use."""
    found: set[str] = set()
    if isinstance(value, dict):
        if set(value) == {"Get"}:
            found.add(value["Get"])
        for item in value.values():
            found |= gets_in(item)
    elif isinstance(value, list):
        for item in value:
            found |= gets_in(item)
    return found


def tunes(stack: PlannedStack) -> bool:
    """Staging and prod tune (mlops:training.tuning): a Tune step's jobs take Train's place."""
    return bool(stack.stack != "dev")


def training_job(stack: PlannedStack, steps: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The training job's request: Train's arguments, or Tune's definition of its jobs."""
    if tunes(stack):
        job: dict[str, Any] = steps["Tune"]["Arguments"]["TrainingJobDefinition"]
    else:
        job = steps["Train"]["Arguments"]
    return job


def training_hyperparameters(job: dict[str, Any]) -> dict[str, str]:
    hyperparameters: dict[str, str] = job.get("HyperParameters") or job["StaticHyperParameters"]
    return hyperparameters


def model_artifact(stack: PlannedStack) -> Any:
    """The model Evaluate and RegisterModel take: Train's, or the best of Tune's jobs."""
    if not tunes(stack):
        return {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    best_job = {"Get": "Steps.Tune.TrainingJobSummaries[0].TrainingJobName"}
    bucket = stack.outputs["artifactsBucket"]
    values = ["s3:/", bucket, "models", best_job, "output/model.tar.gz"]
    return {"Std:Join": {"On": "/", "Values": values}}


@pytest.fixture
def definition(stack: PlannedStack) -> dict[str, Any]:
    return definition_of(stack)


def test_steps_run_process_train_evaluate_then_the_gate(
    stack: PlannedStack, definition: dict[str, Any]
) -> None:
    model_step = ("Tune", "Tuning") if tunes(stack) else ("Train", "Training")
    top = [(s["Name"], s["Type"]) for s in definition["Steps"]]
    assert top == [
        ("ValidateAndSplit", "Processing"),
        model_step,
        ("Evaluate", "Processing"),
        ("CheckMetric", "Condition"),
    ]
    steps = steps_of(definition)
    training = steps[model_step[0]]["Arguments"]
    # Dependencies are data dependencies: each step reads the outputs of the one before.
    assert gets_in(training) >= {
        "Steps.ValidateAndSplit.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri",
        "Steps.ValidateAndSplit.ProcessingOutputConfig.Outputs['validation'].S3Output.S3Uri",
    }
    assert gets_in(steps["Evaluate"]["Arguments"]) >= {
        *gets_in(model_artifact(stack)),
        "Steps.ValidateAndSplit.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri",
    }
    # The test split never reaches training.
    assert not any("Outputs['test']" in g for g in gets_in(training))


def test_the_gate_compares_the_configured_metric_with_the_threshold_parameter(
    stack: PlannedStack, definition: dict[str, Any]
) -> None:
    check = steps_of(definition)["CheckMetric"]["Arguments"]
    (condition,) = check["Conditions"]
    assert condition["Type"] == "GreaterThanOrEqualTo"
    assert condition["LeftValue"] == {
        "Std:JsonGet": {
            "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
            # roc_auc in config is "auc" in Model Monitor's model-quality layout.
            "Path": "binary_classification_metrics.auc.value",
        }
    }
    assert condition["RightValue"] == {"Get": "Parameters.MetricThreshold"}
    assert [s["Name"] for s in check["IfSteps"]] == ["CheckBias"]
    assert [s["Name"] for s in check["ElseSteps"]] == ["MetricBelowThreshold"]

    evaluate = steps_of(definition)["Evaluate"]
    assert evaluate["PropertyFiles"] == [
        {
            "PropertyFileName": "EvaluationReport",
            "OutputName": "evaluation",
            "FilePath": "evaluation.json",
        },
        {"PropertyFileName": "GateReport", "OutputName": "evaluation", "FilePath": "gates.json"},
    ]


def test_only_a_model_within_its_bias_limits_is_registered(definition: dict[str, Any]) -> None:
    check = steps_of(definition)["CheckBias"]
    assert check["Type"] == "Condition"
    (condition,) = check["Arguments"]["Conditions"]
    violations = {
        "Std:JsonGet": {
            "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.GateReport"},
            "Path": "bias_violations",
        }
    }
    assert condition == {"Type": "Equals", "LeftValue": violations, "RightValue": 0}
    # Registration, then its card; a model over a limit fails with its own message.
    assert [s["Name"] for s in check["Arguments"]["IfSteps"]] == [
        "RegisterModel",
        "PublishModelCard",
    ]
    (fail,) = check["Arguments"]["ElseSteps"]
    assert fail["Name"] == "BiasLimitExceeded" and fail["Type"] == "Fail"
    message = fail["Arguments"]["ErrorMessage"]["Std:Join"]["Values"]
    assert message[0].startswith("bias on the test split exceeds")
    assert message[1] == violations
    assert message[-1]["Std:Join"]["Values"][-1] == "bias/analysis.json"
    # The metric gate's message names the metric, never bias: each cause its own step.
    metric_fail = steps_of(definition)["MetricBelowThreshold"]["Arguments"]["ErrorMessage"]
    assert "bias" not in json.dumps(metric_fail)


def test_evaluate_computes_bias_and_attributions_as_the_stack_asks(
    stack: PlannedStack, definition: dict[str, Any], raw_config: Callable[[str], dict[str, str]]
) -> None:
    arguments = steps_of(definition)["Evaluate"]["Arguments"]["AppSpecification"][
        "ContainerArguments"
    ]
    assert arguments[0] == "evaluate.py"
    bias = json.loads(raw_config(stack.stack).get("mlops:bias", "{}"))
    facets = bias.get("facets", [{"name": "international_plan", "sensitiveValues": ["yes"]}])
    given = [arguments[i + 1] for i, a in enumerate(arguments) if a == "--facet"]
    assert given == [f"{f['name']}={','.join(f['sensitiveValues'])}" for f in facets]
    limits = [arguments[i + 1] for i, a in enumerate(arguments) if a == "--bias-limit"]
    assert limits == [f"{m}={v!r}" for m, v in sorted(bias.get("limits", {}).items())]
    # The gate is the condition step's: the job records a violation instead of failing.
    assert "--no-fail-on-bias" in arguments
    explain = ExplainabilitySettings.model_validate(
        json.loads(raw_config(stack.stack).get("mlops:explainability", "{}"))
    )
    option = {
        a: arguments[i + 1]
        for i, a in enumerate(arguments[:-1])
        if str(a).startswith("--") and not str(arguments[i + 1]).startswith("--")
    }
    assert option["--explain-rows"] == str(explain.explain_rows)
    assert option["--background-rows"] == str(explain.background_rows)
    # The card's lineage, from what the pipeline knows: data, split, code, image, model.
    assert option["--training-data"] == {"Get": "Parameters.InputDataUri"}
    assert option["--test-data"] == {
        "Get": "Steps.ValidateAndSplit.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri"
    }
    assert option["--model-artifact"] == model_artifact(stack)
    assert option["--sourcedir"].startswith(f"s3://{stack.outputs['artifactsBucket']}/code/")
    assert option["--image"].endswith("/sagemaker-scikit-learn:1.9-0-cpu-py3")


def _evaluation(name: str) -> dict[str, Any]:
    output = "Steps.Evaluate.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri"
    return {"Std:Join": {"On": "/", "Values": [{"Get": output}, name]}}


def test_registration_attaches_quality_bias_and_explainability_and_the_card(
    definition: dict[str, Any],
) -> None:
    arguments = steps_of(definition)["RegisterModel"]["Arguments"]
    metrics = arguments["ModelMetrics"]
    # Model Monitor's statistics and Clarify's two analysis files, each where
    # CreateModelPackage's ModelMetrics keeps that kind of report.
    assert metrics == {
        "ModelQuality": {
            "Statistics": {
                "ContentType": "application/json",
                "S3Uri": _evaluation("evaluation.json"),
            }
        },
        "Bias": {
            "Report": {
                "ContentType": "application/json",
                "S3Uri": _evaluation("bias/analysis.json"),
            }
        },
        "Explainability": {
            "Report": {
                "ContentType": "application/json",
                "S3Uri": _evaluation("explainability/analysis.json"),
            }
        },
    }
    # The card sits beside the reports; promotion finds it through the package.
    metadata = arguments["CustomerMetadataProperties"]
    assert metadata["mlops:model-card"] == _evaluation("model_card.json")


def test_the_card_is_published_after_registration_with_network_and_the_stack_key(
    stack: PlannedStack, definition: dict[str, Any]
) -> None:
    step = steps_of(definition)["PublishModelCard"]
    assert step["Type"] == "Processing"
    arguments = step["Arguments"]
    container = arguments["AppSpecification"]["ContainerArguments"]
    assert container[0] == "publish_card.py"
    option = {container[i]: container[i + 1] for i in range(1, len(container), 2)}
    assert option == {
        "--card": _evaluation("model_card.json"),
        # A data dependency: the card waits for the version it names.
        "--model-package-arn": {"Get": "Steps.RegisterModel.ModelPackageArn"},
        "--card-name": {
            "Std:Join": {
                "On": "",
                "Values": [
                    f"churn-{stack.stack}-models-",
                    {"Get": "Execution.PipelineExecutionId"},
                ],
            }
        },
        "--kms-key-id": stack.outputs["kmsKeyArn"],
        "--region": "eu-west-1",
    }
    assert arguments["RoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/churn-{stack.stack}-model-card-job"
    # CreateModelCard is an API call: the one training job with network, still encrypted
    # (in a VPC stack, with network only to the VPC's endpoints).
    network = dict(arguments["NetworkConfig"])
    assert network.pop("VpcConfig", None) == planned_vpc_config(stack.plan)
    assert network == {
        "EnableNetworkIsolation": False,
        "EnableInterContainerTrafficEncryption": True,
    }
    assert (
        arguments["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"]
        == (stack.outputs["kmsKeyArn"])
    )
    # It writes the card back through S3 (the bucket's default key), not as a job output.
    assert "ProcessingOutputConfig" not in arguments


def test_the_files_the_definition_reads_are_the_ones_evaluate_writes() -> None:
    from pipelines import spec
    from training import evaluate, model_card

    assert spec.EVALUATION_FILE == evaluate.EVALUATION_FILE
    assert spec.BIAS_REPORT_FILE == evaluate.BIAS_FILE
    assert spec.EXPLAINABILITY_REPORT_FILE == evaluate.EXPLAINABILITY_FILE
    assert spec.GATES_FILE == evaluate.GATES_FILE
    assert spec.MODEL_CARD_FILE == model_card.CARD_FILE
    from pipelines.training_pipeline import BIAS_VIOLATIONS_PATH

    assert BIAS_VIOLATIONS_PATH == evaluate.BIAS_VIOLATIONS_KEY


def test_a_failed_gate_quotes_the_metric_and_the_threshold(definition: dict[str, Any]) -> None:
    fail = steps_of(definition)["MetricBelowThreshold"]
    assert fail["Type"] == "Fail"
    message = fail["Arguments"]["ErrorMessage"]["Std:Join"]["Values"]
    assert message[0] == "roc_auc on the test split is"
    assert message[1]["Std:JsonGet"]["Path"] == "binary_classification_metrics.auc.value"
    assert {"Get": "Parameters.MetricThreshold"} in message


def test_registration_names_the_group_model_and_the_approval_the_stack_asks_for(
    stack: PlannedStack, definition: dict[str, Any]
) -> None:
    register = steps_of(definition)["RegisterModel"]
    assert register["Type"] == "RegisterModel"
    arguments = register["Arguments"]
    assert arguments["ModelPackageGroupName"] == f"churn-{stack.stack}-models"
    assert arguments["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    (container,) = arguments["InferenceSpecification"]["Containers"]
    assert container["ModelDataUrl"] == model_artifact(stack)
    # The model archive carries its handler (training.train writes code/inference.py).
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"

    approval = {p["Name"]: p for p in definition["Parameters"]}["ModelApprovalStatus"]
    # Only dev's config relaxes the manual approval.
    expected = "Approved" if stack.stack == "dev" else "PendingManualApproval"
    assert approval["DefaultValue"] == expected


def test_parameters_default_to_the_stacks_config(
    stack: PlannedStack, definition: dict[str, Any], raw_config: Callable[[str], dict[str, str]]
) -> None:
    training = json.loads(raw_config(stack.stack)["mlops:training"])
    parameters = {p["Name"]: (p["Type"], p["DefaultValue"]) for p in definition["Parameters"]}
    dataset = build_dataset()
    assert parameters == {
        "InputDataUri": ("String", f"s3://{stack.outputs['dataBucket']}/{dataset.prefix}"),
        "ProcessingInstanceType": ("String", training["processingInstanceType"]),
        "TrainingInstanceType": ("String", training["instanceType"]),
        "MetricThreshold": ("Float", training["metricThreshold"]),
        "ModelApprovalStatus": ("String", parameters["ModelApprovalStatus"][1]),
    }
    steps = steps_of(definition)
    assert steps["ValidateAndSplit"]["Arguments"]["ProcessingResources"]["ClusterConfig"][
        "InstanceType"
    ] == {"Get": "Parameters.ProcessingInstanceType"}
    assert training_job(stack, steps)["ResourceConfig"]["InstanceType"] == {
        "Get": "Parameters.TrainingInstanceType"
    }
    raw_input = steps["ValidateAndSplit"]["Arguments"]["ProcessingInputs"][0]
    assert raw_input["S3Input"]["S3Uri"] == {"Get": "Parameters.InputDataUri"}


def test_every_s3_uri_is_in_this_stacks_buckets(
    stack: PlannedStack, definition: dict[str, Any]
) -> None:
    ours = (f"s3://{stack.outputs['dataBucket']}/", f"s3://{stack.outputs['artifactsBucket']}/")
    uris = [s for s in strings_in(definition) if s.startswith("s3://")]
    assert uris
    for uri in uris:
        assert uri.startswith(ours), uri


def test_code_uris_are_the_content_hashed_objects_pulumi_uploads(
    stack: PlannedStack, definition: dict[str, Any]
) -> None:
    code = build_code()
    artifacts = f"s3://{stack.outputs['artifactsBucket']}"
    sourcedir = f"{artifacts}/{code.sourcedir.key}"
    assert code.sourcedir.sha256[:16] in code.sourcedir.key
    assert code.runner.sha256[:16] in code.runner.key
    steps = steps_of(definition)
    for name in ("ValidateAndSplit", "Evaluate"):
        inputs = {
            i["InputName"]: i["S3Input"] for i in steps[name]["Arguments"]["ProcessingInputs"]
        }
        assert inputs["bundle"]["S3Uri"] == sourcedir
        assert inputs["code"]["S3Uri"] == f"{artifacts}/{code.runner.key}"
        entry = steps[name]["Arguments"]["AppSpecification"]["ContainerEntrypoint"]
        assert entry == ["python3", "/opt/ml/processing/input/code/bundle_runner.py"]
    train = training_job(stack, steps)
    channels = {c["ChannelName"]: c for c in train["InputDataConfig"]}
    assert channels["code"]["DataSource"]["S3DataSource"]["S3Uri"] == sourcedir
    assert training_hyperparameters(train)["sagemaker_submit_directory"] == (
        "/opt/ml/input/data/code/sourcedir.tar.gz"
    )
    assert training_hyperparameters(train)["sagemaker_program"] == "train.py"
    uploaded = {r.inputs["key"] for r in stack.all("aws:s3/bucketObjectv2:BucketObjectv2")}
    assert {code.sourcedir.key, code.runner.key} <= uploaded


def test_jobs_run_as_their_own_roles_on_the_regions_sklearn_image(
    stack: PlannedStack, definition: dict[str, Any]
) -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/churn-{stack.stack}"
    image = f"{SKLEARN_IMAGE_ACCOUNTS['eu-west-1']}/sagemaker-scikit-learn:1.9-0-cpu-py3"
    steps = steps_of(definition)
    for name in ("ValidateAndSplit", "Evaluate"):
        assert steps[name]["Arguments"]["RoleArn"] == f"{role}-processing-job"
        assert steps[name]["Arguments"]["AppSpecification"]["ImageUri"] == image
    assert training_job(stack, steps)["RoleArn"] == f"{role}-training-job"
    assert training_job(stack, steps)["AlgorithmSpecification"]["TrainingImage"] == image
    registered = steps["RegisterModel"]["Arguments"]["InferenceSpecification"]["Containers"][0]
    assert registered["Image"] == image


@pytest.mark.parametrize("region", sorted(SKLEARN_IMAGE_ACCOUNTS))
def test_the_image_follows_the_stacks_region(region: str) -> None:
    config = load_stack_config(REPO, "dev")
    in_region = replace(config, values={**config.values, "aws:region": region})
    definition = definition_of(PlannedStack(plan_config(in_region)))
    expected = f"{SKLEARN_IMAGE_ACCOUNTS[region]}/sagemaker-scikit-learn:1.9-0-cpu-py3"
    images = {s for s in strings_in(definition) if ".dkr.ecr." in s}
    assert images == {expected}
    assert all(
        uri.split("/")[2].endswith(f"-{region}")
        for uri in strings_in(definition)
        if uri.startswith("s3://")
    )


def test_every_job_but_the_card_is_isolated_and_encrypted_with_the_stack_key(
    stack: PlannedStack, definition: dict[str, Any]
) -> None:
    key = stack.outputs["kmsKeyArn"]
    steps = steps_of(definition)
    for name in ("ValidateAndSplit", "Evaluate"):
        arguments = steps[name]["Arguments"]
        network = dict(arguments["NetworkConfig"])
        assert network.pop("VpcConfig", None) == planned_vpc_config(stack.plan)
        assert network == {
            "EnableNetworkIsolation": True,
            "EnableInterContainerTrafficEncryption": True,
        }
        assert arguments["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == key
        assert arguments["ProcessingOutputConfig"]["KmsKeyId"] == key
    train = training_job(stack, steps)
    assert train["EnableNetworkIsolation"] is True
    assert train["EnableInterContainerTrafficEncryption"] is True
    assert train["ResourceConfig"]["VolumeKmsKeyId"] == key
    assert train["OutputDataConfig"]["KmsKeyId"] == key
    assert train["OutputDataConfig"]["S3OutputPath"] == (
        f"s3://{stack.outputs['artifactsBucket']}/models"
    )


def test_every_job_learns_the_commit_of_the_code_it_runs(
    stack: PlannedStack, definition: dict[str, Any]
) -> None:
    commit = build_code().commit
    assert commit is not None and len(commit.removesuffix(DIRTY_SUFFIX)) == 40
    steps = steps_of(definition)
    for name in ("ValidateAndSplit", "Evaluate", "PublishModelCard"):
        assert steps[name]["Arguments"]["Environment"] == {GIT_SHA_ENV: commit}, name
    # Training jobs also install the bundled wheels exactly, as processing jobs do.
    assert training_job(stack, steps)["Environment"] == {GIT_SHA_ENV: commit, "PIP_NO_DEPS": "1"}
    registered = steps["RegisterModel"]["Arguments"]
    assert registered["CustomerMetadataProperties"]["code_commit"] == commit
    drift = stack.plan.of_type(PIPELINE)
    for pipeline in drift:
        raw = pipeline.inputs["pipelineDefinition"]
        document = raw if isinstance(raw, dict) else json.loads(raw)
        for step in steps_of(document).values():
            if step["Type"] in ("Processing", "Training"):
                assert step["Arguments"]["Environment"][GIT_SHA_ENV] == commit, step["Name"]


def test_outputs_are_written_per_execution_so_runs_never_overwrite_each_other(
    definition: dict[str, Any],
) -> None:
    steps = steps_of(definition)
    outputs = [
        o["S3Output"]["S3Uri"]["Std:Join"]["Values"]
        for name in ("ValidateAndSplit", "Evaluate")
        for o in steps[name]["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    ]
    assert len(outputs) == 5  # train, validation, test, report, evaluation
    for values in outputs:
        assert {"Get": "Execution.PipelineExecutionId"} in values


# --- determinism and side effects -----------------------------------------------------------

_BUILD_IN_A_FRESH_PROCESS = """
import socket, sys
attempts = []
def refuse(self, address):
    attempts.append(address)
    raise OSError(f"network is off in this test: {address}")
socket.socket.connect = refuse
socket.create_connection = lambda address, *a, **k: refuse(None, address)

from infra.plan.project import load_stack_config
from infra.plan.runner import plan_config
plan = plan_config(load_stack_config(__import__("pathlib").Path(sys.argv[1]), sys.argv[2]))
import json
definitions = {
    r.inputs["pipelineName"]: r.inputs["pipelineDefinition"]
    for r in plan.resources if r.type == "aws:sagemaker/pipeline:Pipeline"
}
assert not attempts, attempts
sys.stdout.write(json.dumps(definitions, sort_keys=True))
"""


def _definition_in_fresh_process(stack: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", _BUILD_IN_A_FRESH_PROCESS, str(REPO), stack],
        capture_output=True, text=True, check=False, env=env, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_two_builds_are_byte_identical_and_touch_no_network(tmp_path: Path) -> None:
    # No credentials and no region anywhere: the build must not need either.
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }
    first = _definition_in_fresh_process("prod", env)
    second = _definition_in_fresh_process("prod", env)
    assert first == second
    definitions = json.loads(first)
    # The retraining, drift, quality and batch pipelines, all built offline and stable.
    assert set(definitions) == {
        "churn-prod-training",
        "churn-prod-drift",
        "churn-prod-quality",
        "churn-prod-batch",
    }
    assert all(json.loads(d)["Steps"] for d in definitions.values())
    assert not (tmp_path / ".sagemaker").exists()


def test_the_adapter_refuses_any_aws_call_the_sdk_would_make() -> None:
    from pipelines import sdk

    session = sdk.offline_session("eu-west-1", default_bucket="some-bucket")
    with pytest.raises(sdk.OfflineSdkError, match="tried to call AWS"):
        session.boto_session.client("s3").list_buckets()
    # It is the stack's bucket, never a generated sagemaker-<region>-<account> one.
    assert session.default_bucket() == "some-bucket"


def test_the_adapter_leaves_the_process_environment_as_it_found_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    from pipelines import sdk

    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "false")
    with sdk.sdk_environment():
        assert os.environ["AWS_DEFAULT_REGION"] == sdk.IMPORT_REGION
        assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"
    assert "AWS_DEFAULT_REGION" not in os.environ
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "false"


def test_config_validation_is_skipped_only_for_a_config_that_already_passed() -> None:
    import jsonschema
    from sagemaker.core.config.config_manager import SageMakerConfig

    from pipelines import sdk

    good = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {}}}}
    bad = {"SchemaVersion": "1.0", "SageMaker": {"NotAKey": True}}
    original = SageMakerConfig.__dict__["validate_sagemaker_config"]
    with sdk.config_validated_once():
        SageMakerConfig.validate_sagemaker_config(good)
        SageMakerConfig.validate_sagemaker_config(good)
        with pytest.raises(jsonschema.ValidationError):
            SageMakerConfig.validate_sagemaker_config(bad)
        # Refused once, refused again: only a passing config is remembered.
        with pytest.raises(jsonschema.ValidationError):
            SageMakerConfig.validate_sagemaker_config(bad)
    assert SageMakerConfig.__dict__["validate_sagemaker_config"] is original
