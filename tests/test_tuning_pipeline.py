"""The Tune step: a Bayesian search in Train's place, as secure as Train, feeding the best
model to Evaluate and RegisterModel; the stacks that tune; the pipeline role's permissions;
the planned request's shape; and the guardrails' reading of it."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import Any

import pytest
from conftest import REPO
from pipeline_specs import ARTIFACTS, KEY, pipeline_spec

from guardrails import Resource, check_resources
from guardrails.config import parse_policy_config
from infra.components.training_pipeline import tuning_spec
from infra.config.loader import settings_from_config
from infra.plan.aws_requests.pipeline_steps import check_definition
from infra.plan.project import load_stack_config
from infra.policies.analysis.checks import PolicyKind, check_document
from infra.policies.training import TrainingScope, pipeline_policies
from pipelines.spec import TuningSpec
from pipelines.training_pipeline import build_definition
from training.search_space import DEFAULT_RANGES, Range, Scale

PIPELINE = "aws:sagemaker/pipeline:Pipeline"
SEARCH = TuningSpec(max_jobs=8, max_parallel_jobs=2, early_stopping="Auto", ranges=DEFAULT_RANGES)


def _steps(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}

    def visit(steps: list[dict[str, Any]]) -> None:
        for step in steps:
            found[step["Name"]] = step
            visit(step.get("Arguments", {}).get("IfSteps", []))
            visit(step.get("Arguments", {}).get("ElseSteps", []))

    visit(definition["Steps"])
    return found


@pytest.fixture(scope="module")
def untuned() -> dict[str, Any]:
    definition: dict[str, Any] = json.loads(build_definition(pipeline_spec(None)))
    return definition


@pytest.fixture(scope="module")
def tuned() -> dict[str, Any]:
    definition: dict[str, Any] = json.loads(build_definition(pipeline_spec(SEARCH)))
    return definition


def test_tuning_puts_a_tune_step_in_trains_place(
    untuned: dict[str, Any], tuned: dict[str, Any]
) -> None:
    assert [(s["Name"], s["Type"]) for s in untuned["Steps"]] == [
        ("ValidateAndSplit", "Processing"),
        ("Train", "Training"),
        ("Evaluate", "Processing"),
        ("CheckMetric", "Condition"),
    ]
    assert [(s["Name"], s["Type"]) for s in tuned["Steps"]] == [
        ("ValidateAndSplit", "Processing"),
        ("Tune", "Tuning"),
        ("Evaluate", "Processing"),
        ("CheckMetric", "Condition"),
    ]
    # Nothing else changes: same steps after it, same parameters.
    assert set(_steps(tuned)) - {"Tune"} == set(_steps(untuned)) - {"Train"}
    assert tuned["Parameters"] == untuned["Parameters"]


def test_the_search_maximises_the_stacks_metric_over_its_ranges(tuned: dict[str, Any]) -> None:
    config = _steps(tuned)["Tune"]["Arguments"]["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Bayesian"
    assert config["HyperParameterTuningJobObjective"] == {
        "MetricName": "validation:f1",
        "Type": "Maximize",
    }
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 8, "MaxParallelTrainingJobs": 2}
    assert config["TrainingJobEarlyStoppingType"] == "Auto"

    # DEFAULT_RANGES, by kind: whole numbers for the integer hyperparameters.
    def searched(name: str, low: str, high: str, scale: str) -> dict[str, str]:
        return {"Name": name, "MinValue": low, "MaxValue": high, "ScalingType": scale}

    assert config["ParameterRanges"] == {
        "ContinuousParameterRanges": [
            searched("learning_rate", "0.02", "0.3", "Logarithmic"),
            searched("l2_regularization", "0.0", "1.0", "Auto"),
        ],
        "IntegerParameterRanges": [
            searched("max_leaf_nodes", "8", "64", "Auto"),
            searched("min_samples_leaf", "5", "100", "Auto"),
        ],
    }


def test_other_settings_reach_the_search() -> None:
    ranges = (Range("max_iter", 50, 400, Scale.LINEAR), Range("l2_regularization", 0.0, 0.5))
    spec = pipeline_spec(TuningSpec(20, 4, "Off", ranges))
    config = _steps(json.loads(build_definition(spec)))["Tune"]["Arguments"][
        "HyperParameterTuningJobConfig"
    ]
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 20, "MaxParallelTrainingJobs": 4}
    assert config["TrainingJobEarlyStoppingType"] == "Off"
    assert config["ParameterRanges"]["IntegerParameterRanges"] == [
        {"Name": "max_iter", "MinValue": "50", "MaxValue": "400", "ScalingType": "Linear"}
    ]


def test_each_tuning_job_is_configured_as_the_train_steps_job(
    untuned: dict[str, Any], tuned: dict[str, Any]
) -> None:
    train = _steps(untuned)["Train"]["Arguments"]
    job = _steps(tuned)["Tune"]["Arguments"]["TrainingJobDefinition"]
    # A channel without its own InputMode takes the job's: File, as Train's channels say.
    assert job["AlgorithmSpecification"]["TrainingInputMode"] == "File"
    assert job["InputDataConfig"] == [
        {k: v for k, v in channel.items() if k != "InputMode"}
        for channel in train["InputDataConfig"]
    ]
    assert {c["InputMode"] for c in train["InputDataConfig"]} == {"File"}
    for field in (
        "RoleArn",
        "OutputDataConfig",
        "ResourceConfig",
        "StoppingCondition",
        "Environment",
        "EnableNetworkIsolation",
        "EnableInterContainerTrafficEncryption",
    ):
        assert job[field] == train[field], field
    assert (
        job["AlgorithmSpecification"]["TrainingImage"]
        == (train["AlgorithmSpecification"]["TrainingImage"])
    )
    assert (
        job["AlgorithmSpecification"]["MetricDefinitions"]
        == (train["AlgorithmSpecification"]["MetricDefinitions"])
    )
    # The security settings, spelled out (the SDK's tuner drops three; pipelines re-adds them).
    assert job["ResourceConfig"]["VolumeKmsKeyId"] == KEY
    assert job["OutputDataConfig"]["KmsKeyId"] == KEY
    assert job["EnableNetworkIsolation"] is True
    assert job["EnableInterContainerTrafficEncryption"] is True
    assert "VpcConfig" not in job
    assert [c["ChannelName"] for c in job["InputDataConfig"]] == ["code", "train", "validation"]
    # Searched hyperparameters are the tuner's to set; the rest stay as Train has them.
    static = job["StaticHyperParameters"]
    assert static["sagemaker_program"] == "train.py"
    assert static["max_iter"] == "200"
    assert "learning_rate" not in static
    assert {k: v for k, v in train["HyperParameters"].items() if k != "learning_rate"} == static


def test_the_best_jobs_model_goes_to_evaluate_and_the_registry(tuned: dict[str, Any]) -> None:
    steps = _steps(tuned)
    values: list[Any] = [
        "s3:/",
        ARTIFACTS,
        "models",
        {"Get": "Steps.Tune.TrainingJobSummaries[0].TrainingJobName"},
        "output/model.tar.gz",
    ]
    best = {"Std:Join": {"On": "/", "Values": values}}
    evaluate = steps["Evaluate"]["Arguments"]
    (model_input,) = [i for i in evaluate["ProcessingInputs"] if i["InputName"] == "model"]
    assert model_input["S3Input"]["S3Uri"] == best
    container_arguments = evaluate["AppSpecification"]["ContainerArguments"]
    assert container_arguments[container_arguments.index("--model-artifact") + 1] == best
    (container,) = steps["RegisterModel"]["Arguments"]["InferenceSpecification"]["Containers"]
    assert container["ModelDataUrl"] == best
    # Where a job of the search writes its archive: <S3OutputPath>/<job name>/output/...
    output = steps["Tune"]["Arguments"]["TrainingJobDefinition"]["OutputDataConfig"]
    job = "churn-t-training-001-0a1b2c3d"
    resolved = "/".join(job if isinstance(v, dict) else v for v in values)
    assert resolved == f"{output['S3OutputPath']}/{job}/output/model.tar.gz"
    assert "Steps.Train" not in json.dumps(tuned)


def test_the_definition_is_deterministic() -> None:
    assert build_definition(pipeline_spec(SEARCH)) == build_definition(pipeline_spec(SEARCH))


def test_the_tuning_request_matches_botocores_shape(tuned: dict[str, Any]) -> None:
    checks = {c.step: c for c in check_definition(tuned)}
    assert checks["Tune"].operation == "CreateHyperParameterTuningJob"
    assert all(not c.outcome.violations for c in checks.values()), [
        (c.label, c.outcome.violations) for c in checks.values() if c.outcome.violations
    ]
    broken = copy.deepcopy(tuned)
    _steps(broken)["Tune"]["Arguments"]["HyperParameterTuningJobConfig"]["Strategy"] = "Lucky"
    (tune,) = [c for c in check_definition(broken) if c.step == "Tune"]
    assert [v.path for v in tune.outcome.violations] == ["HyperParameterTuningJobConfig.Strategy"]


def _pipeline(definition: dict[str, Any]) -> Resource:
    props = {"pipelineDefinition": json.dumps(definition)}
    return Resource(f"urn:{PIPELINE}::training", PIPELINE, "training", props, {}, ())


def _findings(definition: dict[str, Any]) -> list[str]:
    found = check_resources([_pipeline(definition)], parse_policy_config({}))
    return [v.message for v in found if "step Tune" in v.message]


@pytest.mark.parametrize(
    ("field", "value", "policy_words"),
    [
        ("EnableNetworkIsolation", False, "EnableNetworkIsolation true"),
        ("EnableInterContainerTrafficEncryption", None, "inter-container traffic"),
        ("ResourceConfig", {"InstanceCount": 1, "InstanceType": "ml.m5.large"}, "job volumes"),
        ("OutputDataConfig", {"S3OutputPath": "s3://b/models"}, "job outputs"),
    ],
)
def test_the_guardrails_hold_the_tuning_jobs_to_the_training_rules(
    tuned: dict[str, Any], field: str, value: Any, policy_words: str
) -> None:
    assert _findings(tuned) == []
    broken = copy.deepcopy(tuned)
    job = _steps(broken)["Tune"]["Arguments"]["TrainingJobDefinition"]
    if value is None:
        job.pop(field)
    else:
        job[field] = value
    (message,) = _findings(broken)
    assert "step Tune" in message and policy_words in message


def _settings(stack: str) -> Any:
    config = load_stack_config(REPO, stack)
    return settings_from_config(config.values, project=config.project, stack=stack)


@pytest.mark.parametrize(
    ("stack", "limits"), [("dev", None), ("staging", (8, 2)), ("prod", (20, 4))]
)
def test_staging_and_prod_tune_and_dev_does_not(stack: str, limits: tuple[int, int] | None) -> None:
    spec = tuning_spec(_settings(stack))
    if limits is None:
        assert spec is None
        return
    assert spec is not None
    assert (spec.max_jobs, spec.max_parallel_jobs) == limits
    assert spec.early_stopping == "Auto"
    assert spec.ranges == DEFAULT_RANGES


def _scope(tuning: bool) -> TrainingScope:
    return TrainingScope(
        partition="aws",
        region="eu-west-1",
        account_id="123456789012",
        prefix="churn-t",
        kms_key_arn=KEY,
        data_bucket_arn="arn:aws:s3:::churn-t-data",
        artifacts_bucket_arn=f"arn:aws:s3:::{ARTIFACTS}",
        model_package_group="churn-t-models",
        pipeline_name="churn-t-training",
        processing_role_arn="arn:aws:iam::123456789012:role/churn-t-processing-job",
        training_role_arn="arn:aws:iam::123456789012:role/churn-t-training-job",
        model_card_role_arn="arn:aws:iam::123456789012:role/churn-t-model-card-job",
        tuning=tuning,
    )


TUNING_ACTIONS = {
    "sagemaker:CreateHyperParameterTuningJob",
    "sagemaker:DescribeHyperParameterTuningJob",
    "sagemaker:StopHyperParameterTuningJob",
    "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
}


def _statements(scope: TrainingScope) -> list[dict[str, Any]]:
    return list(pipeline_policies(scope)["sagemaker"]["Statement"])


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def test_only_a_tuning_pipelines_role_may_run_tuning_jobs() -> None:
    untuned = set().union(*(_actions(s) for s in _statements(_scope(False))))
    assert not untuned & TUNING_ACTIONS
    statements = _statements(_scope(True))
    assert set().union(*(_actions(s) for s in statements)) >= TUNING_ACTIONS
    tuning_jobs = "arn:aws:sagemaker:eu-west-1:123456789012:hyper-parameter-tuning-job/*"
    for statement in statements:
        if _actions(statement) & TUNING_ACTIONS:
            assert statement["Resource"] == tuning_jobs
    (create,) = [s for s in statements if "sagemaker:CreateHyperParameterTuningJob" in _actions(s)]
    (train,) = [s for s in statements if "sagemaker:CreateTrainingJob" in _actions(s)]
    # The training job's conditions, every key of which the reference lists for tuning too.
    assert (
        create["Condition"]
        == train["Condition"]
        == {
            "Bool": {
                "sagemaker:NetworkIsolation": "true",
                "sagemaker:InterContainerTrafficEncryption": "true",
            },
            "ArnEquals": {"sagemaker:VolumeKmsKey": KEY, "sagemaker:OutputKmsKey": KEY},
        }
    )


def test_the_tuning_permissions_match_the_iam_reference() -> None:
    document = pipeline_policies(_scope(True))["sagemaker"]
    checked = check_document(document, policy="pipeline sagemaker", kind=PolicyKind.IDENTITY)
    assert [str(f) for f in checked.findings] == []
    # The checker does read the conditions: a key the tuning action lacks is refused.
    bad = copy.deepcopy(document)
    (create,) = [
        s for s in bad["Statement"] if "sagemaker:CreateHyperParameterTuningJob" in _actions(s)
    ]
    create["Condition"]["Bool"]["sagemaker:EnableRemoteDebug"] = "false"
    findings = check_document(bad, policy="bad", kind=PolicyKind.IDENTITY).findings
    assert any("EnableRemoteDebug" in str(f) for f in findings)


def test_a_stack_without_tuning_keeps_its_pipeline_role_unchanged() -> None:
    assert pipeline_policies(_scope(False)) == pipeline_policies(
        replace(_scope(True), tuning=False)
    )
