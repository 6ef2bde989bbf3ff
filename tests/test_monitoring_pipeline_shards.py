"""The drift and quality pipelines over N instances: list -> summarise (N) -> merge."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import replace
from fnmatch import fnmatchcase
from typing import Any

import pytest
from conftest import PlannedStack

from guardrails.model import Context
from guardrails.pipeline_jobs import (
    NETWORK_ACCESS_STEPS,
    validate_encryption_at_rest,
    validate_in_transit,
    validate_isolation,
)
from infra.plan.aws_requests.pipeline_steps import check_definition
from infra.policies.monitoring import MonitoringScope, drift_job_policies, quality_job_policies
from pipelines import drift_pipeline, quality_pipeline
from pipelines.spec import BiasSpec, CodeLocation, Facet

KEY = "arn:aws:kms:eu-west-1:123456789012:key/0000"
ROLE = "arn:aws:iam::123456789012:role/churn-prod-drift-job"
PACKAGE = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-prod-models/3"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3"
CODE = CodeLocation("s3://art/code/sourcedir-1.tar.gz", "s3://art/code/runner-1.py")
REPORTS = "s3://cap/monitoring/churn-prod"
PIPELINE = "aws:sagemaker/pipeline:Pipeline"

DRIFT = drift_pipeline.DriftPipelineSpec(
    region="eu-west-1",
    pipeline_name="churn-prod-drift",
    role_arn=ROLE,
    kms_key_arn=KEY,
    artifacts_bucket="art",
    capture_uri="s3://cap/datacapture/churn-prod/AllTraffic/",
    report_prefix=REPORTS,
    code=CODE,
    image_uri=IMAGE,
    instance_type="ml.m5.large",
    volume_size_gb=30,
    max_runtime_seconds=7200,
    endpoint_name="churn-prod",
    baseline=PACKAGE,
    metrics_namespace="MLOpsKit/churn-prod",
    psi_threshold=0.2,
    window_hours=24,
)
QUALITY = quality_pipeline.QualityPipelineSpec(
    region="eu-west-1",
    pipeline_name="churn-prod-quality",
    role_arn=ROLE,
    kms_key_arn=KEY,
    artifacts_bucket="art",
    capture_uri="s3://cap/datacapture/churn-prod/AllTraffic/",
    ground_truth_uri="s3://cap/groundtruth/churn-prod/",
    report_prefix=REPORTS,
    code=CODE,
    image_uri=IMAGE,
    instance_type="ml.m5.large",
    volume_size_gb=30,
    max_runtime_seconds=7200,
    endpoint_name="churn-prod",
    baseline=PACKAGE,
    metrics_namespace="MLOpsKit/churn-prod",
    window_hours=24,
    label_delay_hours=24,
    alpha=0.01,
    min_labels=200,
    min_drop=0.02,
    bias=BiasSpec((Facet("state", ("CA",)),), ()),
)
EXECUTION = {"Get": "Execution.PipelineExecutionId"}


def definition(spec: Any) -> dict[str, Any]:
    return json.loads(_built(spec))  # type: ignore[no-any-return]


@functools.cache
def _built(spec: Any) -> str:
    """Each spec built once: a build takes seconds."""
    build = (
        drift_pipeline.build_definition
        if isinstance(spec, drift_pipeline.DriftPipelineSpec)
        else quality_pipeline.build_definition
    )
    return build(spec)


def steps(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Name"]: s for s in document["Steps"]}


def scratch(*parts: str) -> dict[str, Any]:
    return {"Std:Join": {"On": "/", "Values": [REPORTS, EXECUTION, "shards", *parts]}}


def flag(arguments: list[Any], name: str) -> Any:
    return arguments[arguments.index(name) + 1]


@pytest.mark.parametrize(("spec", "step"), [(DRIFT, "DetectDrift"), (QUALITY, "MeasureQuality")])
def test_one_instance_keeps_the_single_step(spec: Any, step: str) -> None:
    (only,) = definition(spec)["Steps"]
    assert only["Name"] == step
    assert only["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 1
    arguments = only["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert not {"--list-to", "--summary-to", "--merge-from"} & {
        a for a in arguments if isinstance(a, str)
    }


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        (DRIFT, ["ListDriftWindow", "SummariseDrift", "DetectDrift"]),
        (QUALITY, ["ListQualityWindow", "SummariseQuality", "MeasureQuality"]),
    ],
)
def test_two_instances_list_summarise_and_merge(spec: Any, names: list[str]) -> None:
    found = steps(definition(replace(spec, instance_count=2)))
    assert list(found) == names
    listing, summarise, merge = (found[n]["Arguments"] for n in names)
    count = {n: found[n]["Arguments"]["ProcessingResources"]["ClusterConfig"] for n in names}
    assert [count[n]["InstanceCount"] for n in names] == [1, 2, 1]
    # Each waits for the one before: their inputs are this execution's S3 URIs.
    assert found[names[1]]["DependsOn"] == [names[0]]
    assert found[names[2]]["DependsOn"] == [names[1]]

    list_args = listing["AppSpecification"]["ContainerArguments"]
    assert flag(list_args, "--list-to") == scratch("capture.manifest")
    assert flag(list_args, "--capture") == spec.capture_uri

    inputs = {i["InputName"]: i["S3Input"] for i in summarise["ProcessingInputs"]}
    capture = inputs["capture"]
    assert capture["S3Uri"] == scratch("capture.manifest")
    assert (capture["S3DataType"], capture["S3DataDistributionType"]) == (
        "ManifestFile",
        "ShardedByS3Key",
    )
    assert inputs["window"]["S3Uri"] == scratch("window.json")
    assert inputs["baseline"]["S3Uri"] == scratch("baseline/")
    (out,) = summarise["ProcessingOutputConfig"]["Outputs"]
    assert out["S3Output"]["S3Uri"] == scratch("summaries")
    summarise_args = summarise["AppSpecification"]["ContainerArguments"]
    assert flag(summarise_args, "--capture") == capture["LocalPath"]
    assert flag(summarise_args, "--baseline") == inputs["baseline"]["LocalPath"]
    assert flag(summarise_args, "--window-from") == inputs["window"]["LocalPath"]
    assert flag(summarise_args, "--summary-to") == out["S3Output"]["LocalPath"]
    assert "--publish" not in summarise_args

    merged = {i["InputName"]: i["S3Input"] for i in merge["ProcessingInputs"]}
    assert merged["summaries"]["S3Uri"] == scratch("summaries")
    merge_args = merge["AppSpecification"]["ContainerArguments"]
    assert flag(merge_args, "--merge-from") == merged["summaries"]["LocalPath"]
    assert flag(merge_args, "--window-from") == merged["window"]["LocalPath"]
    assert "--publish" in merge_args and "--window-hours" not in merge_args
    # The report lands where the single step's does.
    (report,) = merge["ProcessingOutputConfig"]["Outputs"]
    assert report["S3Output"]["S3Uri"] == {"Std:Join": {"On": "/", "Values": [REPORTS, EXECUTION]}}


def test_quality_shards_get_every_label_file() -> None:
    found = steps(definition(replace(QUALITY, instance_count=2)))
    inputs = {
        i["InputName"]: i["S3Input"]
        for i in found["SummariseQuality"]["Arguments"]["ProcessingInputs"]
    }
    labels = inputs["labels"]
    assert labels["S3Uri"] == scratch("labels-capture.manifest")
    assert (labels["S3DataType"], labels["S3DataDistributionType"]) == (
        "ManifestFile",
        "FullyReplicated",
    )
    arguments = found["SummariseQuality"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert flag(arguments, "--ground-truth") == labels["LocalPath"]
    assert flag(arguments, "--facet") == "state=CA"


@pytest.mark.parametrize("spec", [DRIFT, QUALITY])
def test_only_the_summarise_step_is_isolated_and_all_are_encrypted(spec: Any) -> None:
    document = definition(replace(spec, instance_count=2))
    for name, step in steps(document).items():
        arguments = step["Arguments"]
        network = arguments["NetworkConfig"]
        assert network["EnableNetworkIsolation"] is name.startswith("Summarise"), name
        assert network["EnableInterContainerTrafficEncryption"] is True
        assert arguments["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == KEY
        assert arguments["ProcessingOutputConfig"]["KmsKeyId"] == KEY
    context = Context("p", "urn", {"networkAccessSteps": sorted(NETWORK_ACCESS_STEPS)}, {}, "prod")
    props = {"pipelineDefinition": json.dumps(document)}
    for validate in (validate_encryption_at_rest, validate_in_transit, validate_isolation):
        assert validate(PIPELINE, props, context) == []


@pytest.mark.parametrize("spec", [DRIFT, QUALITY])
@pytest.mark.parametrize("count", [1, 2])
def test_every_step_is_a_valid_create_processing_job(spec: Any, count: int) -> None:
    checks = check_definition(definition(replace(spec, instance_count=count)))
    assert len(checks) == (1 if count == 1 else 3)
    for check in checks:
        assert check.outcome.violations == (), check.label


def _scope(**flags: bool) -> MonitoringScope:
    return MonitoringScope(
        partition="aws", region="eu-west-1", account_id="123456789012", prefix="churn-prod",
        kms_key_arn=KEY, artifacts_bucket_arn="arn:aws:s3:::art",
        capture_bucket_arn="arn:aws:s3:::cap", model_package_group="churn-prod-models",
        metrics_namespace="MLOpsKit/churn-prod", drift_role_arn=ROLE, attribution_role_arn="",
        quality_role_arn=ROLE, training_pipeline_name="t", retrain_rule_name="r", **flags,
    )  # fmt: skip


def _reads(policies: dict[str, Any]) -> set[str]:
    (read,) = [s for s in policies["s3"]["Statement"] if s["Sid"] == "ReadInputs"]
    return set(read["Resource"])


@pytest.mark.parametrize(
    ("policies", "flag_name"),
    [(drift_job_policies, "drift_sharded"), (quality_job_policies, "quality_sharded")],
)
def test_sharded_jobs_read_back_their_runs_scratch_files_only(
    policies: Callable[[MonitoringScope], dict[str, Any]], flag_name: str
) -> None:
    single, sharded = _reads(policies(_scope())), _reads(policies(_scope(**{flag_name: True})))
    assert sharded - single == {"arn:aws:s3:::cap/monitoring/*/shards/*"}
    grant = "arn:aws:s3:::cap/monitoring/*/shards/*"
    run = "arn:aws:s3:::cap/monitoring/churn-prod/0a1b2c3d4e5f"
    for name in ("shards/capture.manifest", "shards/window.json", "shards/summaries/s.json"):
        assert fnmatchcase(f"{run}/{name}", grant)
    assert not fnmatchcase(f"{run}/drift.json", grant)  # reports stay write-only


def test_prod_plan_runs_both_jobs_sharded(plan_of: Callable[[str], PlannedStack]) -> None:
    """Prod's stack file sets driftInstanceCount and qualityInstanceCount to 2."""
    pipelines = {p.inputs["pipelineName"]: p for p in plan_of("prod").all(PIPELINE)}
    names = {
        name: [s["Name"] for s in json.loads(p.inputs["pipelineDefinition"])["Steps"]]
        for name, p in pipelines.items()
    }
    drift = next(v for k, v in names.items() if k.endswith("-drift"))
    quality = next(v for k, v in names.items() if k.endswith("-quality"))
    assert drift[:3] == ["ListDriftWindow", "SummariseDrift", "DetectDrift"]
    assert quality == ["ListQualityWindow", "SummariseQuality", "MeasureQuality"]
