"""Request shapes (issue 15): every planned resource, mapped to the AWS requests the provider
sends, and every pipeline step, mapped to its job's request, validate against botocore."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from conftest import REPO, PlannedStack

from infra.config.java_regex import UntranslatablePatternError, compile_pattern
from infra.plan.aws_requests import MAPPINGS, PlanCheck, check_plan
from infra.plan.aws_requests.inputs import Context
from infra.plan.aws_requests.pipeline_steps import check_definition
from infra.plan.aws_requests.plan_check import check_resource
from infra.plan.aws_requests.shapes import Opaque, validate
from infra.plan.mocks import RecordedResource
from infra.plan.project import load_stack_config
from infra.plan.runner import Plan, PlanError, plan_config

ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
PIPELINE = "aws:sagemaker/pipeline:Pipeline"
JOB_STEPS = {"Processing", "Training", "Tuning", "RegisterModel", "Model"}


def _plan_with(stack: str, **sections: dict[str, Any]) -> Plan:
    """The stack's plan with some config sections merged over its own."""
    config = load_stack_config(REPO, stack)
    values = dict(config.values)
    for section, override in sections.items():
        key = f"mlops:{section}"
        values[key] = json.dumps({**json.loads(values.get(key, "{}")), **override})
    return plan_config(replace(config, values=values))


def _assert_valid(check: PlanCheck) -> None:
    assert not check.problems, f"{check.stack}:\n" + "\n".join(check.problems)


@pytest.fixture(scope="module")
def checked(plan_of: Callable[[str], PlannedStack]) -> Callable[[str], PlanCheck]:
    cache: dict[str, PlanCheck] = {}

    def get(stack: str) -> PlanCheck:
        if stack not in cache:
            cache[stack] = check_plan(plan_of(stack).plan)
        return cache[stack]

    return get


@pytest.fixture(scope="module")
def widest() -> PlanCheck:
    """prod at every config maximum, with every optional resource and variant on: the baseline
    training job, registry sharing, a shadow variant, a raw-archive model, linear shifts,
    non-ASCII tags."""
    plan = _plan_with(
        "prod",
        training={
            "baselineJob": True,
            "instanceCount": 100,
            "maxRuntimeMinutes": 9 * 24 * 60,
            "volumeSizeGb": 16384,
            "metricThreshold": 1.0,
        },
        serving={
            "model": {
                "dataUri": "s3://churn-prod-artifacts-333333333333-eu-west-1/models/m/model.tar.gz"
            },
            "shadow": {"packageVersion": 2},
            "shadowPercent": 1,
            "instanceCount": 100,
            "minInstances": 100,
            "maxInstances": 100,
            "targetInvocationsPerInstance": 100_000,
            "scaleInCooldownSeconds": 3600,
            "scaleOutCooldownSeconds": 3600,
            "dataCapturePercent": 100,
            "deployment": {
                "strategy": "linear",
                "stepInstances": 50,
                "waitMinutes": 60,
                "terminationWaitMinutes": 60,
                "maxMinutes": 240,
            },
        },
        monitoring={
            "latencyP99Ms": 3_600_000,
            "errorRatePercent": 100,
            "clientErrorRatePercent": 100,
            "driftPsiThreshold": 10,
            "driftWindowHours": 336,
            "driftSchedule": "rate(1 minute)",
        },
        storage={
            "kmsDeletionWindowDays": 7,
            "noncurrentVersionExpirationDays": 36500,
            "expirationDays": {"data": 36500, "artifacts": 36500, "capture": 36500},
        },
        sharing={
            "consumers": [{"accountId": "111111111111", "roleNames": ["churn-staging-serving"]}]
        },
        # Unicode letters and spaces are tag characters to AWS (\p{L}, \p{Z}).
        tags={"Équipe": "données clients\u00a0ML"},
    )
    return check_plan(plan)


# --- the stacks' plans ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dev", "staging", "prod"])
def test_every_planned_request_is_valid(checked: Callable[[str], PlanCheck], name: str) -> None:
    check = checked(name)
    _assert_valid(check)
    assert check.checks and check.fields > 500


@pytest.mark.parametrize("name", ["dev", "staging", "prod"])
def test_every_aws_resource_of_the_plan_is_mapped(
    checked: Callable[[str], PlanCheck], plan_of: Callable[[str], PlannedStack], name: str
) -> None:
    check = checked(name)
    planned = {r.urn for r in plan_of(name).resources if r.custom and r.type.startswith("aws:")}
    assert {c.resource.urn for c in check.checks} == planned
    assert all(c.requests for c in check.checks)


@pytest.mark.parametrize("name", ["dev", "staging", "prod"])
def test_every_pipeline_step_is_checked_against_its_job_api(
    checked: Callable[[str], PlanCheck], name: str
) -> None:
    steps = {(s.step, s.step_type, s.operation) for s in checked(name).steps}
    # Staging and prod tune (mlops:training.tuning): a Tune step in Train's place.
    training = (
        ("Train", "Training", "CreateTrainingJob")
        if name == "dev"
        else ("Tune", "Tuning", "CreateHyperParameterTuningJob")
    )
    assert {
        ("ValidateAndSplit", "Processing", "CreateProcessingJob"),
        training,
        ("Evaluate", "Processing", "CreateProcessingJob"),
        ("RegisterModel", "RegisterModel", "CreateModelPackage"),
        ("CheckMetric", "Condition", None),
        ("MetricBelowThreshold", "Fail", None),
    } <= steps
    if name != "dev":  # dev serves serverless: nothing captured, no drift pipeline
        assert ("DetectDrift", "Processing", "CreateProcessingJob") in steps
    for step in checked(name).steps:
        if step.step_type in JOB_STEPS:
            assert step.outcome.fields > 20, step.label


def test_the_widest_config_plans_valid_requests(widest: PlanCheck) -> None:
    _assert_valid(widest)
    types = {c.resource.type for c in widest.checks}
    assert {
        "aws:sagemaker/trainingJob:TrainingJob",
        "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy",
    } <= types
    (config,) = [c for c in widest.checks if c.resource.type == ENDPOINT_CONFIG]
    (sent,) = config.requests
    assert sent.params["ShadowProductionVariants"][0]["InitialVariantWeight"] == 0.01


def test_the_narrowest_config_plans_valid_requests() -> None:
    plan = _plan_with(
        "dev",
        training={
            "baselineJob": True,
            "maxRuntimeMinutes": 1,
            "volumeSizeGb": 1,
            "metricThreshold": 0.0,
        },
        serving={"serverlessMemoryMb": 6144, "serverlessMaxConcurrency": 200},
        monitoring={"latencyP99Ms": 0.001, "errorRatePercent": 0.001, "driftWindowHours": 1},
    )
    _assert_valid(check_plan(plan))


# --- defects the validation found, fixed in config validation -----------------------------


def test_a_runtime_past_what_processing_jobs_allow_is_refused_by_config() -> None:
    # Processing steps share training.maxRuntimeMinutes; CreateProcessingJob stops at 9 days
    # (ProcessingStoppingCondition.MaxRuntimeInSeconds <= 777600), training jobs at 28.
    with pytest.raises(PlanError, match=r"mlops:training.*12960 minutes \(9 days\).*got 12961"):
        _plan_with("staging", training={"maxRuntimeMinutes": 9 * 24 * 60 + 1})


@pytest.mark.parametrize("value", ["on\tcall", "line\nbreak", "a\rb"])
def test_tag_values_with_tabs_or_line_breaks_are_refused_by_config(value: str) -> None:
    # IAM and SageMaker tags allow \p{Z} (spaces), not every \s; the config used to take \s.
    with pytest.raises(PlanError, match=r"mlops:tags"):
        _plan_with_tags({"team": value})


def _plan_with_tags(tags: dict[str, str]) -> Plan:
    config = load_stack_config(REPO, "staging")
    return plan_config(replace(config, values={**config.values, "mlops:tags": json.dumps(tags)}))


# --- the validator catches what AWS would refuse -------------------------------------------


def _resource(check: PlanCheck, type_token: str) -> RecordedResource:
    return next(c.resource for c in check.checks if c.resource.type == type_token)


def _problems(check: PlanCheck, type_token: str, edit: Callable[[dict[str, Any]], None]) -> str:
    """The problems of one planned resource after ``edit`` changed a copy of its inputs."""
    original = _resource(check, type_token)
    inputs = copy.deepcopy(original.inputs)
    edit(inputs)
    changed = replace(original, inputs=inputs)
    context = Context(changed, "eu-west-1", {"team": "ml"})
    return "\n".join(check_resource(changed, MAPPINGS[type_token], context).problems)


def _variant(inputs: dict[str, Any]) -> dict[str, Any]:
    variant: dict[str, Any] = inputs["productionVariants"][0]
    return variant


def _update(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda inputs: inputs.update({key: value})


def _update_variant(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda inputs: _variant(inputs).update({key: value})


def _blue_green(inputs: dict[str, Any]) -> None:
    inputs["deploymentConfig"]["blueGreenUpdatePolicy"]["terminationWaitInSeconds"] = 7200


# (resource, edit, request, field path, rule, start of the detail)
REFUSED = {
    "enum": (
        ENDPOINT_CONFIG, _update_variant("instanceType", "ml.m5.huge"), "CreateEndpointConfig",
        "ProductionVariants[0].InstanceType", "enum",
        "'ml.m5.huge' is not one of ProductionVariantInstanceType: ml.",
    ),
    "pattern": (
        ENDPOINT, _update("name", "churn_prod endpoint"), "CreateEndpoint",
        "EndpointName", "pattern", "'churn_prod endpoint' does not match EndpointName",
    ),
    "range": (
        ENDPOINT, _blue_green, "CreateEndpoint",
        "DeploymentConfig.BlueGreenUpdatePolicy.TerminationWaitInSeconds", "range",
        "7200 is above TerminationWaitInSeconds's maximum 3600",
    ),
    "required": (
        ENDPOINT, lambda i: i.pop("endpointConfigName"), "CreateEndpoint",
        "EndpointConfigName", "required", "CreateEndpointInput requires EndpointConfigName",
    ),
    "type": (
        ENDPOINT_CONFIG, _update_variant("initialInstanceCount", "2"), "CreateEndpointConfig",
        "ProductionVariants[0].InitialInstanceCount", "type", "'2' is not an integer",
    ),
    "list-length": (
        ENDPOINT_CONFIG, lambda i: i.update(productionVariants=i["productionVariants"] * 11),
        "CreateEndpointConfig", "ProductionVariants", "max length",
        "11 items; ProductionVariantList allows at most 10",
    ),
    "string-length": (
        PIPELINE, _update("pipelineDescription", "x" * 3073), "CreatePipeline",
        "PipelineDescription", "max length",
        "3073 characters; PipelineDescription allows at most 3072",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_request_aws_would_refuse_fails_naming_resource_field_and_rule(
    checked: Callable[[str], PlanCheck], case: str
) -> None:
    type_token, edit, operation, path, rule, detail = REFUSED[case]
    problems = _problems(checked("prod"), type_token, edit)
    name = _resource(checked("prod"), type_token).name
    expected = f"{type_token} {name} -> sagemaker.{operation}: {path}: {rule}: {detail}"
    assert expected in problems


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        (_update_variant("bogusField", 1), "productionVariants[0].bogusField"),
        (_update("asyncInferenceConfig", {"clientConfig": {}}), "asyncInferenceConfig"),
    ],
)
def test_an_input_no_mapping_reads_fails(
    checked: Callable[[str], PlanCheck], edit: Callable[[dict[str, Any]], None], path: str
) -> None:
    problems = _problems(checked("prod"), ENDPOINT_CONFIG, edit)
    assert f"serving: input {path} maps to no request field" in problems


def test_botocore_param_validator_runs_too(checked: Callable[[str], PlanCheck]) -> None:
    problems = _problems(
        checked("prod"), ENDPOINT_CONFIG, lambda i: _variant(i).update(initialInstanceCount=0)
    )
    assert "ProductionVariants[0].InitialInstanceCount: range: 0 is below" in problems
    assert (
        "(botocore): botocore ParamValidator: Invalid value for parameter "
        "ProductionVariants[0].InitialInstanceCount, value: 0, valid min value: 1"
    ) in problems


def test_an_unknown_member_is_refused() -> None:
    outcome = validate(
        "sagemaker", "CreateModelPackageGroup", {"ModelPackageGroupName": "g", "Owner": "me"}
    )
    assert [str(v) for v in outcome.violations] == [
        "Owner: unknown member: CreateModelPackageGroupInput has no member 'Owner'"
    ]


def test_a_resource_type_without_a_mapping_is_reported(checked: Callable[[str], PlanCheck]) -> None:
    queue = replace(_resource(checked("dev"), ENDPOINT), type="aws:sqs/queue:Queue", inputs={})
    plan = Plan("mlops-kit", "dev", (queue,))
    assert check_plan(plan).problems == [
        "aws:sqs/queue:Queue: no request mapping for this resource type"
    ]


# --- values the plan cannot see ------------------------------------------------------------


def test_unknown_values_are_checked_for_type_only(checked: Callable[[str], PlanCheck]) -> None:
    def unknowns(inputs: dict[str, Any]) -> None:
        _variant(inputs).update(modelName="[unknown]", initialInstanceCount="[unknown]")
        inputs["kmsKeyArn"] = "[secret]"

    assert _problems(checked("prod"), ENDPOINT_CONFIG, unknowns) == ""
    refused = _problems(
        checked("prod"), ENDPOINT_CONFIG, lambda i: i.update(dataCaptureConfig="[unknown]")
    )
    assert (
        "DataCaptureConfig: type: <scalar: unknown at plan time> does not fit DataCaptureConfig"
        in refused
    )


def test_an_opaque_value_must_fit_the_type() -> None:
    request = {
        "EndpointConfigName": "c",
        "ProductionVariants": [
            {
                "ModelName": "m",
                "VariantName": "v",
                "InitialInstanceCount": Opaque("string", "Parameters.Count"),
            }
        ],
    }
    outcome = validate("sagemaker", "CreateEndpointConfig", request)
    assert [str(v) for v in outcome.violations] == [
        "ProductionVariants[0].InitialInstanceCount: type: "
        "<string: Parameters.Count> does not fit InitialTaskCount (integer)"
    ]
    assert outcome.opaque == 1


# --- pipeline steps -----------------------------------------------------------------------


def _definition(check: PlanCheck, pipeline: str = "training") -> dict[str, Any]:
    (resource,) = [
        c.resource
        for c in check.checks
        if c.resource.type == PIPELINE and c.resource.name == pipeline
    ]
    document: dict[str, Any] = json.loads(resource.inputs["pipelineDefinition"])
    return document


def _step(document: dict[str, Any], name: str) -> dict[str, Any]:
    step: dict[str, Any] = next(s for s in document["Steps"] if s["Name"] == name)
    return step


def _step_problems(document: dict[str, Any], name: str) -> list[str]:
    (step,) = [s for s in check_definition(document) if s.step == name]
    return [str(v) for v in step.outcome.violations]


def test_a_parameter_default_is_validated_in_place_of_the_expression(
    checked: Callable[[str], PlanCheck],
) -> None:
    document = _definition(checked("prod"))
    parameter = next(p for p in document["Parameters"] if p["Name"] == "ProcessingInstanceType")
    parameter["DefaultValue"] = "ml.m5.huge"
    problems = _step_problems(document, "ValidateAndSplit")
    assert problems[0].startswith(
        "ProcessingResources.ClusterConfig.InstanceType: enum: "
        "'ml.m5.huge' is not one of ProcessingInstanceType"
    )


def test_a_parameter_without_default_is_checked_for_its_type(
    checked: Callable[[str], PlanCheck],
) -> None:
    document = _definition(checked("prod"))
    document["Parameters"].append({"Name": "Count", "Type": "String"})
    job = _step(document, "Tune")["Arguments"]["TrainingJobDefinition"]
    job["ResourceConfig"]["InstanceCount"] = {"Get": "Parameters.Count"}
    assert _step_problems(document, "Tune") == [
        "TrainingJobDefinition.ResourceConfig.InstanceCount: type: "
        "<string: Parameters.Count> does not fit TrainingInstanceCount (integer)"
    ]


def test_a_join_over_the_execution_id_is_checked_as_a_whole_string(
    checked: Callable[[str], PlanCheck],
) -> None:
    document = _definition(checked("prod"))
    output = _step(document, "ValidateAndSplit")["Arguments"]["ProcessingOutputConfig"]["Outputs"][
        0
    ]
    output["S3Output"]["S3Uri"]["Std:Join"]["Values"][0] = "data/processed"
    (problem,) = _step_problems(document, "ValidateAndSplit")
    assert problem.startswith(
        "ProcessingOutputConfig.Outputs[0].S3Output.S3Uri: pattern: "
        "'data/processed/0a1b2c3d4e5f/train' does not match S3Uri"
    )


def test_unknown_step_arguments_and_step_types_are_refused(
    checked: Callable[[str], PlanCheck],
) -> None:
    document = _definition(checked("prod"))
    _step(document, "Tune")["Arguments"]["HyperParameterTuningJobName"] = "named-twice"
    _step(document, "Evaluate")["Arguments"]["Bogus"] = True
    document["Steps"].append({"Name": "Score", "Type": "Lambda", "Arguments": {}})
    assert _step_problems(document, "Tune") == []  # Pipelines names it; giving one is allowed
    assert _step_problems(document, "Evaluate") == [
        "Bogus: unknown member: CreateProcessingJobRequest has no member 'Bogus'"
    ]
    assert _step_problems(document, "Score") == [
        "Type: step type: no job API is mapped for 'Lambda' steps"
    ]


def test_a_missing_job_member_is_refused_but_the_job_name_is_not_required(
    checked: Callable[[str], PlanCheck],
) -> None:
    document = _definition(checked("prod"), "monitoring")
    del _step(document, "DetectDrift")["Arguments"]["RoleArn"]
    assert _step_problems(document, "DetectDrift") == [
        "RoleArn: required: CreateProcessingJobRequest requires RoleArn",
        '(botocore): botocore ParamValidator: Missing required parameter in input: "RoleArn"',
    ]


# --- Java patterns in Python -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("java", "accepted", "refused"),
    [
        (r"[\p{L}\p{Z}\p{N}_.:/=+\-@]*", ["café 42", "東京\u3000x", ""], ["a\tb", "a#b"]),
        (r"\p{Print}+", ["Policy-1 ok"], ["tab\there", "é"]),
        (r"arn:[\p{Alnum}\-]+:lambda:.*", ["arn:aws-cn:lambda:x"], ["arn:a_b:lambda:x"]),
        (r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\t]*", ["ok 😀\t"], ["\x01"]),
        (r"([\p{L}\p{Z}\p{N}_.:\/=+\-@]*)${1,128}", ["code_sourcedir"], ["a,b"]),
    ],
)
def test_java_patterns_are_translated(java: str, accepted: list[str], refused: list[str]) -> None:
    pattern = compile_pattern(java)
    assert all(pattern.fullmatch(value) for value in accepted)
    assert not any(pattern.fullmatch(value) for value in refused)


@pytest.mark.parametrize("java", [r"\P{L}+", r"[a-z&&[^x]]", r"\p{IsLatin}"])
def test_untranslatable_java_patterns_fail_loudly(java: str) -> None:
    with pytest.raises(UntranslatablePatternError):
        compile_pattern(java)
