"""Model Monitor's other three monitors as infrastructure, under Pulumi mocks: the quality
pipeline and its schedule, the attribution step beside the drift job, their roles, the
quality, bias-drift, attribution-drift and quality-silent alarms, the retrain rule that
follows drift and quality, the dashboard rows, and what each stack's plan declares.

Expected values come from each stack file's own settings (with the settings' defaults);
ARNs are written out from names here. dev serves serverless without capture, so it gets
none of this; staging and prod capture and serve a registered version.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
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

from inference.batch_contract import BadRows
from infra.config.settings import (
    BiasSettings,
    ExplainabilitySettings,
    MonitoringSettings,
    NetworkMode,
)
from infra.naming import silent_alarm_names
from infra.plan.project import load_stack_config
from infra.plan.runner import plan_config
from training.dataset import FEATURES

ACCOUNT = "123456789012"
REGION = "eu-west-1"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
PIPELINE = "aws:sagemaker/pipeline:Pipeline"
SCHEDULE = "aws:scheduler/schedule:Schedule"
RULE = "aws:cloudwatch/eventRule:EventRule"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
EXECUTION_ID = {"Get": "Execution.PipelineExecutionId"}
CAPTURING = ("staging", "prod")
# Alarm periods of the schedules the stack files use.
PERIODS = {"rate(1 hour)": 3600, "rate(1 day)": 86400}


def arn(service: str, resource: str) -> str:
    region = "" if service in ("iam", "s3") else REGION
    account = "" if service == "s3" else ACCOUNT
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _json(value: str | dict[str, Any]) -> dict[str, Any]:
    return value if isinstance(value, dict) else json.loads(value)


@dataclass(frozen=True)
class Stack:
    planned: PlannedStack
    monitoring: MonitoringSettings
    bias: BiasSettings
    explainability: ExplainabilitySettings

    @property
    def prefix(self) -> str:
        return f"churn-{self.planned.stack}"

    @property
    def endpoint(self) -> str:
        return f"{self.prefix}-endpoint"

    @property
    def key(self) -> str:
        key: str = self.planned.outputs["kmsKeyArn"]
        return key

    @property
    def capture_bucket(self) -> str:
        bucket: str = self.planned.outputs["captureBucket"]
        return bucket

    @property
    def artifacts_bucket(self) -> str:
        bucket: str = self.planned.outputs["artifactsBucket"]
        return bucket

    def named(self, type_token: str, name: str, field: str = "name") -> Any:
        found = [r for r in self.planned.of_type(type_token) if r.inputs.get(field) == name]
        assert len(found) <= 1, f"{len(found)} {type_token} named {name}"
        return found[0] if found else None

    def the(self, type_token: str, name: str, field: str = "name") -> Any:
        found = self.named(type_token, name, field)
        assert found is not None, f"the {self.planned.stack} plan has no {type_token} {name}"
        return found

    def alarm(self, suffix: str) -> dict[str, Any]:
        inputs: dict[str, Any] = self.the(ALARM, f"{self.endpoint}-{suffix}").inputs
        return inputs

    def definition(self, kind: str) -> dict[str, Any]:
        pipeline = self.the(PIPELINE, f"{self.prefix}-{kind}", "pipelineName")
        return _json(pipeline.inputs["pipelineDefinition"])

    def step(self, kind: str, name: str) -> dict[str, Any]:
        (step,) = [s for s in self.definition(kind)["Steps"] if s["Name"] == name]
        arguments: dict[str, Any] = step["Arguments"]
        return arguments

    def statements(self, suffix: str) -> list[dict[str, Any]]:
        policies = [
            p
            for p in self.planned.of_type(ROLE_POLICY)
            if p.inputs["role"] == f"{self.prefix}-{suffix}"
        ]
        assert policies, f"no policies on {self.prefix}-{suffix}"
        return [s for p in policies for s in self.planned.document(p)["Statement"]]

    @property
    def quality_period(self) -> int:
        return PERIODS[self.monitoring.quality_schedule]

    @property
    def drift_period(self) -> int:
        return PERIODS[self.monitoring.drift_schedule]


def _stack(planned: PlannedStack, raw: dict[str, str]) -> Stack:
    def section(name: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(raw.get(f"mlops:{name}", "{}"))
        return loaded

    return Stack(
        planned,
        MonitoringSettings.model_validate(section("monitoring")),
        BiasSettings.model_validate(section("bias")),
        ExplainabilitySettings.model_validate(section("explainability")),
    )


@pytest.fixture(params=CAPTURING)
def capturing(request: pytest.FixtureRequest, plan_of: Any, raw_config: Any) -> Stack:
    return _stack(plan_of(request.param), raw_config(request.param))


def _plan_with(stack: str, section: str, change: dict[str, Any]) -> Stack:
    config = load_stack_config(REPO, stack)
    key = f"mlops:{section}"
    values = {**config.values, key: json.dumps({**json.loads(config.values[key]), **change})}
    return _stack(PlannedStack(plan_config(replace(config, values=values))), values)


def _argument(arguments: list[Any], flag: str) -> Any:
    assert arguments.count(flag) == 1, flag
    return arguments[arguments.index(flag) + 1]


def _text(parameter: str) -> dict[str, Any]:
    """A numeric parameter as a container argument (the SDK's to_string(): a one-part join)."""
    return {"Std:Join": {"On": "", "Values": [{"Get": f"Parameters.{parameter}"}]}}


def _arguments(step: dict[str, Any]) -> list[Any]:
    arguments: list[Any] = step["AppSpecification"]["ContainerArguments"]
    return arguments


# --- what each stack's plan declares ---------------------------------------------------------

# Per stack without its batch pipeline: pipelines, schedules, alarms, roles and role
# policies, models, and the total. dev adds the model-card role (5 policies); staging and
# prod add the quality pipeline and schedule, 5 roles (model-card, attribution and quality
# jobs, quality pipeline and schedule: 21 policies) and 4 alarms (attribution-drift,
# quality, bias-drift, quality-silent).
PLANNED = {
    "dev": {
        "Pipeline": 1, "Schedule": 1, "MetricAlarm": 3, "Role": 7, "RolePolicy": 28, "Model": 1
    },
    "staging": {
        "Pipeline": 3, "Schedule": 3, "MetricAlarm": 11, "Role": 15, "RolePolicy": 55, "Model": 1
    },
    "prod": {
        "Pipeline": 3, "Schedule": 3, "MetricAlarm": 11, "Role": 15, "RolePolicy": 55, "Model": 1
    },
}  # fmt: skip
TOTALS = {"dev": 105, "staging": 165, "prod": 166}


def _batch_resources(batch: Any) -> Counter[str]:
    """What infra/components/batch_pipeline.py declares for ``mlops:batch``: the component,
    its model, the pipeline, the pipeline role (a ServiceRole component, the role, its
    sagemaker policy and, with a split step, pass-role), the execution role's batch-outputs
    policy; a schedule adds its role (component, role, 2 policies) and the schedule."""
    if not batch.enabled:
        return Counter()
    split = batch.bad_rows is BadRows.ERRORS
    declared = Counter(
        BatchPipeline=1, Model=1, Pipeline=1, ServiceRole=1, Role=1, RolePolicy=2 + split
    )
    if batch.schedule is not None:
        declared.update(ServiceRole=1, Role=1, RolePolicy=2, Schedule=1)
    return declared


def _network_resources(network: Any) -> Counter[str]:
    """What a VPC adds (infra/components/network.py, infra/policies/vpc.py). In create mode:
    the network (the component, the VPC, its emptied default group, a subnet and a route-table
    association per zone, one route table, two groups with five rules, ten endpoints) and its
    flow logs (the component, log group, flow log, a ServiceRole with its role and policy).
    In any VPC: a "network" policy on each of the 8 roles jobs and models run as."""
    declared: Counter[str] = Counter()
    if network.mode is NetworkMode.CREATE:
        zones = network.availability_zones
        declared.update(
            PrivateNetwork=1, Vpc=1, DefaultSecurityGroup=1, Subnet=zones, RouteTable=1,
            RouteTableAssociation=zones, SecurityGroup=2, SecurityGroupIngressRule=2,
            SecurityGroupEgressRule=3, VpcEndpoint=10, VpcFlowLogs=1, LogGroup=1, FlowLog=1,
            ServiceRole=1, Role=1, RolePolicy=1,
        )  # fmt: skip
    if network.private:
        declared.update(RolePolicy=8)
    return declared


@pytest.mark.parametrize("name", sorted(PLANNED))
def test_each_stacks_plan_declares_the_new_monitors(
    name: str, plan_of: Any, raw_config: Any
) -> None:
    from infra.config.loader import settings_from_config

    settings = settings_from_config(raw_config(name), project="mlops-kit", stack=name)
    batch = settings.batch
    planned = plan_of(name).plan
    counts = Counter(r.type.rsplit(":", 1)[1] for r in planned.resources)
    added = _batch_resources(batch) + _network_resources(settings.network)
    assert {kind: counts[kind] for kind in PLANNED[name]} == {
        kind: count + added[kind] for kind, count in PLANNED[name].items()
    }
    assert counts["BatchPipeline"] == added["BatchPipeline"]
    assert len(planned.resources) == TOTALS[name] + sum(added.values())
    roles = {r.inputs["name"] for r in planned.of_type(ROLE)}
    prefix = f"churn-{name}"
    assert (f"{prefix}-batch-pipeline" in roles) == batch.enabled
    assert (f"{prefix}-batch-schedule" in roles) == (batch.schedule is not None)
    # Today's stack files: batch everywhere, bad rows set aside but in prod, which fails on
    # them and runs on a schedule.
    assert batch.enabled
    assert (batch.bad_rows is BadRows.FAIL, batch.schedule is not None) == ((name == "prod",) * 2)


def test_dev_has_no_quality_or_attribution_parts(plan_of: Any, raw_config: Any) -> None:
    dev = _stack(plan_of("dev"), raw_config("dev"))
    assert dev.named(PIPELINE, "churn-dev-quality", "pipelineName") is None
    assert dev.named(SCHEDULE, "churn-dev-quality") is None
    for suffix in ("quality-job", "quality-pipeline", "quality-schedule", "attribution-job"):
        assert dev.named(ROLE, f"churn-dev-{suffix}") is None, suffix
    names = {a.inputs["name"] for a in dev.planned.of_type(ALARM)}
    assert not {n for n in names if n.endswith(("quality", "drift", "silent"))}


# --- the quality pipeline --------------------------------------------------------------------


def test_the_quality_job_joins_capture_with_labels_against_the_registered_version(
    capturing: Stack,
) -> None:
    step = capturing.step("quality", "MeasureQuality")
    arguments = _arguments(step)
    assert arguments[0] == "quality.py"
    capture = f"s3://{capturing.capture_bucket}"
    assert (
        _argument(arguments, "--capture") == f"{capture}/datacapture/{capturing.endpoint}/primary/"
    )
    # mlops label writes <prefix>/groundtruth/<endpoint>/yyyy/mm/dd/hh/ (Model Monitor's layout).
    assert _argument(arguments, "--ground-truth") == f"{capture}/groundtruth/{capturing.endpoint}/"
    # The version the stack serves, whose registration attached the evaluation baseline.
    assert _argument(arguments, "--baseline") == arn(
        "sagemaker", f"model-package/{capturing.prefix}-models/1"
    )
    monitoring = capturing.monitoring
    assert _argument(arguments, "--alpha") == repr(monitoring.quality_alpha)
    assert _argument(arguments, "--min-labels") == str(monitoring.quality_min_labels)
    assert _argument(arguments, "--min-drop") == repr(monitoring.quality_min_drop)
    assert _argument(arguments, "--namespace") == f"MLOpsKit/{capturing.prefix}"
    assert _argument(arguments, "--endpoint-name") == capturing.endpoint
    assert _argument(arguments, "--region") == REGION
    assert "--publish" in arguments


def _quality_steps(stack: Stack) -> list[str]:
    if stack.monitoring.quality_instance_count > 1:
        return ["ListQualityWindow", "SummariseQuality", "MeasureQuality"]
    return ["MeasureQuality"]


def test_a_scheduled_run_judges_the_window_whose_labels_had_time_to_arrive(
    capturing: Stack,
) -> None:
    first, *later = _quality_steps(capturing)
    arguments = _arguments(capturing.step("quality", first))
    # No --end: the job ends its window the label delay before it runs.
    assert "--end" not in arguments
    assert _argument(arguments, "--window-hours") == _text("WindowHours")
    assert _argument(arguments, "--label-delay-hours") == _text("LabelDelayHours")
    # Sharded, only the list step chooses the window; the steps after it, minutes later,
    # judge that one (its window.json), and collect labels for the same delay after it.
    for name in later:
        step = capturing.step("quality", name)
        arguments = _arguments(step)
        assert not [a for a in ("--end", "--now", "--window-hours") if a in arguments], name
        assert _argument(arguments, "--window-from") == "/opt/ml/processing/input/window"
        assert _argument(arguments, "--label-delay-hours") == _text("LabelDelayHours")
        (window,) = [i["S3Input"] for i in step["ProcessingInputs"] if i["InputName"] == "window"]
        assert window["LocalPath"] == "/opt/ml/processing/input/window"
        assert window["S3Uri"]["Std:Join"]["Values"] == [
            f"s3://{capturing.capture_bucket}/monitoring/{capturing.endpoint}",
            EXECUTION_ID,
            "shards",
            "window.json",
        ]
    parameters = {
        p["Name"]: (p["Type"], p["DefaultValue"])
        for p in capturing.definition("quality")["Parameters"]
    }
    assert parameters == {
        "WindowHours": ("Integer", capturing.monitoring.quality_window_hours),
        "LabelDelayHours": ("Integer", capturing.monitoring.label_delay_hours),
        "ProcessingInstanceType": ("String", capturing.monitoring.drift_instance_type),
    }
    # Today's stack files: prod shards the quality job over two instances.
    assert len(later) == (2 if capturing.planned.stack == "prod" else 0)


def test_the_quality_job_checks_the_stacks_facets_and_limits(capturing: Stack) -> None:
    arguments = _arguments(capturing.step("quality", "MeasureQuality"))
    facets = [arguments[i + 1] for i, a in enumerate(arguments) if a == "--facet"]
    assert facets == [f"{f.name}={','.join(f.sensitive_values)}" for f in capturing.bias.facets]
    limits = [arguments[i + 1] for i, a in enumerate(arguments) if a == "--bias-limit"]
    assert limits == [f"{m}={v!r}" for m, v in sorted(capturing.bias.limits.items())]
    # Today's stack files gate on the accuracy difference of international-plan customers.
    assert limits == ["AD=0.1"] and facets == ["international_plan=yes"]


def test_the_quality_job_is_encrypted_with_network_as_its_own_role(capturing: Stack) -> None:
    step = capturing.step("quality", "MeasureQuality")
    assert step["RoleArn"] == arn("iam", f"role/{capturing.prefix}-quality-job")
    assert step["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == capturing.key
    assert step["ProcessingOutputConfig"]["KmsKeyId"] == capturing.key
    # With network, but in a VPC stack only to the VPC's endpoints.
    network = dict(step["NetworkConfig"])
    assert network.pop("VpcConfig", None) == planned_vpc_config(capturing.planned.plan)
    assert network == {
        "EnableNetworkIsolation": False,
        "EnableInterContainerTrafficEncryption": True,
    }
    (report,) = step["ProcessingOutputConfig"]["Outputs"]
    assert report["S3Output"]["S3Uri"]["Std:Join"]["Values"] == [
        f"s3://{capturing.capture_bucket}/monitoring/{capturing.endpoint}",
        EXECUTION_ID,
    ]
    pipeline = capturing.the(PIPELINE, f"{capturing.prefix}-quality", "pipelineName")
    assert pipeline.inputs["roleArn"] == arn("iam", f"role/{capturing.prefix}-quality-pipeline")
    assert capturing.planned.outputs["qualityPipelineName"] == f"{capturing.prefix}-quality"


def test_the_quality_schedule_starts_the_quality_pipeline_encrypted(capturing: Stack) -> None:
    schedule = capturing.the(SCHEDULE, f"{capturing.prefix}-quality").inputs
    assert schedule["scheduleExpression"] == capturing.monitoring.quality_schedule
    assert schedule["state"] == "ENABLED"
    assert schedule["kmsKeyArn"] == capturing.key
    assert schedule["target"]["arn"] == arn("sagemaker", f"pipeline/{capturing.prefix}-quality")
    assert schedule["target"]["roleArn"] == arn("iam", f"role/{capturing.prefix}-quality-schedule")
    (start,) = [
        s
        for s in capturing.statements("quality-schedule")
        if "sagemaker:StartPipelineExecution" in _listed(s["Action"])
    ]
    assert _listed(start["Resource"]) == [arn("sagemaker", f"pipeline/{capturing.prefix}-quality")]


@pytest.fixture(scope="module")
def drift_schedule_off() -> Stack:
    return _plan_with("staging", "monitoring", {"driftScheduleEnabled": False})


@pytest.fixture(scope="module")
def quality_schedule_off() -> Stack:
    return _plan_with("staging", "monitoring", {"qualityScheduleEnabled": False})


def test_the_quality_schedule_follows_the_drift_schedule_unless_set(
    drift_schedule_off: Stack, quality_schedule_off: Stack
) -> None:
    # Unset, it runs wherever the drift schedule does; off, no silence alarm either.
    for stack in (drift_schedule_off, quality_schedule_off):
        assert stack.the(SCHEDULE, "churn-staging-quality").inputs["state"] == "DISABLED"
        assert stack.named(ALARM, "churn-staging-endpoint-quality-silent") is None
        # The pipeline and its alarm stay, for runs by hand.
        assert stack.alarm("quality")["metricName"] == "QualityViolations"
    assert quality_schedule_off.the(SCHEDULE, "churn-staging-drift").inputs["state"] == "ENABLED"


@pytest.fixture(scope="module")
def from_archive() -> Stack:
    uri = f"s3://churn-staging-artifacts-{ACCOUNT}-{REGION}/models/v1/model.tar.gz"
    return _plan_with("staging", "serving", {"model": {"dataUri": uri}})


def test_a_model_served_from_an_archive_gets_the_drift_job_alone(from_archive: Stack) -> None:
    # Quality and attribution compare with reports a registration attaches; an archive has none.
    assert from_archive.named(PIPELINE, "churn-staging-quality", "pipelineName") is None
    assert [s["Name"] for s in from_archive.definition("drift")["Steps"]] == ["DetectDrift"]
    for suffix in ("quality", "attribution-drift", "bias-drift", "quality-silent"):
        assert from_archive.named(ALARM, f"churn-staging-endpoint-{suffix}") is None, suffix
    (passes,) = [
        s for s in from_archive.statements("drift-pipeline") if s["Action"] == "iam:PassRole"
    ]
    assert _listed(passes["Resource"]) == [arn("iam", "role/churn-staging-drift-job")]
    rule = from_archive.the(RULE, "churn-staging-retrain-on-drift")
    assert _json(rule.inputs["eventPattern"])["resources"] == [
        arn("cloudwatch", "alarm:churn-staging-endpoint-drift")
    ]


# --- the attribution step ---------------------------------------------------------------------


def test_attribution_drift_runs_beside_the_drift_job_on_the_same_window(
    capturing: Stack,
) -> None:
    drift = _arguments(capturing.step("drift", "DetectDrift"))
    # Sharded, the list step chooses the drift job's window from the same parameter, when
    # the attribution step starts (neither waits for anything); DetectDrift then takes it.
    sharded = capturing.monitoring.drift_instance_count > 1
    chooser = _arguments(capturing.step("drift", "ListDriftWindow")) if sharded else drift
    step = capturing.step("drift", "DetectAttributionDrift")
    (raw,) = [
        s for s in capturing.definition("drift")["Steps"] if s["Name"] == "DetectAttributionDrift"
    ]
    assert "DependsOn" not in raw
    arguments = _arguments(step)
    assert arguments[0] == "attribution.py"
    for flag in ("--capture", "--baseline", "--namespace", "--endpoint-name"):
        assert _argument(arguments, flag) == _argument(drift, flag), flag
        assert _argument(arguments, flag) == _argument(chooser, flag), flag
    assert _argument(arguments, "--window-hours") == _argument(chooser, "--window-hours")
    assert _argument(arguments, "--window-hours") == _text("WindowHours")
    if sharded:
        assert "--window-hours" not in drift and "--window-from" in drift
    explain = capturing.explainability
    assert _argument(arguments, "--ndcg-threshold") == _text("NdcgThreshold")
    parameters = {p["Name"]: p["DefaultValue"] for p in capturing.definition("drift")["Parameters"]}
    assert parameters["NdcgThreshold"] == explain.ndcg_threshold
    assert _argument(arguments, "--max-rows") == str(explain.live_rows)
    assert _argument(arguments, "--background-rows") == str(explain.background_rows)
    assert "--publish" in arguments
    assert step["RoleArn"] == arn("iam", f"role/{capturing.prefix}-attribution-job")
    (report,) = step["ProcessingOutputConfig"]["Outputs"]
    assert report["S3Output"]["S3Uri"]["Std:Join"]["Values"] == [
        f"s3://{capturing.capture_bucket}/monitoring/{capturing.endpoint}",
        EXECUTION_ID,
        "attribution",
    ]


# --- roles -----------------------------------------------------------------------------------


def _objects(statements: list[dict[str, Any]], verb: str) -> set[str]:
    return {
        r
        for s in statements
        if s["Effect"] == "Allow" and any(a.startswith(f"s3:{verb}") for a in _listed(s["Action"]))
        for r in _listed(s["Resource"])
    }


@pytest.mark.parametrize(
    ("suffix", "capture", "artifacts"),
    [
        ("quality-job", ("datacapture", "groundtruth"), ("models", "evaluation", "code")),
        ("attribution-job", ("datacapture",), ("models", "evaluation", "code")),
    ],
)
def test_each_monitoring_job_reads_only_its_inputs_and_writes_only_reports(
    capturing: Stack, suffix: str, capture: tuple[str, ...], artifacts: tuple[str, ...]
) -> None:
    from pipeline_execution import resolved

    statements = capturing.statements(suffix)
    capture_arn = arn("s3", capturing.capture_bucket)
    artifacts_arn = arn("s3", capturing.artifacts_bucket)
    # A sharded job's later steps read back its runs' scratch files (and nothing else
    # under monitoring/); only the quality job is ever sharded.
    sharded = suffix == "quality-job" and capturing.monitoring.quality_instance_count > 1
    scratch = {f"{capture_arn}/monitoring/*/shards/*"} if sharded else set()
    assert _objects(statements, "GetObject") == {
        *(f"{capture_arn}/{prefix}/*" for prefix in capture),
        *(f"{artifacts_arn}/{prefix}/*" for prefix in artifacts),
        *scratch,
    }
    # Today's stack files: prod shards the quality job, staging does not.
    assert sharded == (suffix == "quality-job" and capturing.planned.stack == "prod")
    assert _objects(statements, "PutObject") == {f"{capture_arn}/monitoring/*"}
    assert _objects(statements, "Delete") == set()
    # The stack key, the kit's metric namespace, this stack's registry: nothing wider.
    by_action = {a: s for s in statements for a in _listed(s["Action"])}
    assert _listed(by_action["kms:Decrypt"]["Resource"]) == [capturing.key]
    assert by_action["cloudwatch:PutMetricData"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": f"MLOpsKit/{capturing.prefix}"}
    }
    assert _listed(by_action["sagemaker:DescribeModelPackage"]["Resource"]) == [
        arn("sagemaker", f"model-package/{capturing.prefix}-models/*")
    ]
    sagemaker = {a for a in by_action if a.startswith("sagemaker:")}
    assert sagemaker == {"sagemaker:DescribeModelPackage"}
    # What each of the role's steps is told to read lies within its grants: the capture
    # and labels it lists, and the inputs SageMaker downloads for it as this role.
    kind, names = ("quality", _quality_steps(capturing)) if suffix == "quality-job" else (
        "drift", ["DetectAttributionDrift"]
    )  # fmt: skip
    readable = _objects(statements, "GetObject")
    for name in names:
        step = capturing.step(kind, name)
        assert step["RoleArn"] == arn("iam", f"role/{capturing.prefix}-{suffix}")
        arguments = _arguments(step)
        reads = [
            f"{_argument(arguments, flag)}2026/x"
            for flag in ("--capture", "--ground-truth")
            if flag in arguments and str(_argument(arguments, flag)).startswith("s3://")
        ]
        reads += [resolved(i["S3Input"]["S3Uri"], {}) for i in step["ProcessingInputs"]]
        for uri in reads:
            assert any(
                fnmatchcase("arn:aws:s3:::" + uri.removeprefix("s3://"), g) for g in readable
            ), uri
        for output in step["ProcessingOutputConfig"]["Outputs"]:
            target = "arn:aws:s3:::" + resolved(output["S3Output"]["S3Uri"], {})[5:] + "/x"
            assert fnmatchcase(target, f"{capture_arn}/monitoring/*"), name


def test_the_quality_pipeline_starts_only_encrypted_jobs_as_the_quality_role(
    capturing: Stack,
) -> None:
    statements = capturing.statements("quality-pipeline")
    (create,) = [s for s in statements if "sagemaker:CreateProcessingJob" in _listed(s["Action"])]
    assert _listed(create["Resource"]) == [arn("sagemaker", "processing-job/pipelines-*")]
    assert create["Condition"] == {
        "Bool": {"sagemaker:InterContainerTrafficEncryption": "true"},
        "ArnEquals": {
            "sagemaker:VolumeKmsKey": capturing.key,
            "sagemaker:OutputKmsKey": capturing.key,
        },
        **planned_vpc_conditions(capturing.planned.plan),
    }
    (passes,) = [s for s in statements if "iam:PassRole" in _listed(s["Action"])]
    assert _listed(passes["Resource"]) == [arn("iam", f"role/{capturing.prefix}-quality-job")]
    assert passes["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    actions = {a for s in statements for a in _listed(s["Action"])}
    assert actions == {
        "sagemaker:CreateProcessingJob",
        "sagemaker:DescribeProcessingJob",
        "sagemaker:StopProcessingJob",
        "sagemaker:AddTags",
        "iam:PassRole",
    }


# --- alarms and the retrain rule ---------------------------------------------------------------


def _topic(stack: Stack) -> list[str]:
    return [arn("sns", f"{stack.prefix}-alerts")]


def test_the_quality_alarm_fires_on_a_significant_drop_once_per_run(capturing: Stack) -> None:
    alarm = capturing.alarm("quality")
    assert (alarm["namespace"], alarm["metricName"]) == (
        f"MLOpsKit/{capturing.prefix}",
        "QualityViolations",
    )
    assert alarm["dimensions"] == {"EndpointName": capturing.endpoint}
    assert (alarm["statistic"], alarm["comparisonOperator"], alarm["threshold"]) == (
        "Maximum",
        "GreaterThanOrEqualToThreshold",
        1,
    )
    assert (alarm["period"], alarm["evaluationPeriods"]) == (capturing.quality_period, 1)
    assert alarm["treatMissingData"] == "ignore"
    assert alarm["alarmActions"] == alarm["okActions"] == _topic(capturing)
    assert capturing.planned.outputs["qualityAlarmName"] == f"{capturing.endpoint}-quality"


def test_the_bias_drift_alarm_fires_where_limits_are_set(capturing: Stack) -> None:
    alarm = capturing.alarm("bias-drift")
    assert alarm["metricName"] == "BiasViolations"
    assert (alarm["statistic"], alarm["comparisonOperator"], alarm["threshold"]) == (
        "Maximum",
        "GreaterThanOrEqualToThreshold",
        1,
    )
    assert alarm["period"] == capturing.quality_period
    assert "AD 0.1" in alarm["alarmDescription"]
    assert alarm["alarmActions"] == _topic(capturing)


def test_no_bias_drift_alarm_without_limits() -> None:
    unlimited = _plan_with("staging", "bias", {"limits": {}})
    assert unlimited.named(ALARM, "churn-staging-endpoint-bias-drift") is None
    arguments = _arguments(unlimited.step("quality", "MeasureQuality"))
    assert "--bias-limit" not in arguments and "--facet" in arguments


def test_the_attribution_alarm_fires_when_ndcg_falls_below_the_threshold(
    capturing: Stack,
) -> None:
    alarm = capturing.alarm("attribution-drift")
    assert alarm["metricName"] == "AttributionNDCG"
    assert (alarm["statistic"], alarm["comparisonOperator"], alarm["threshold"]) == (
        "Minimum",
        "LessThanThreshold",
        capturing.explainability.ndcg_threshold,
    )
    # It runs with the drift job, so it reads one datapoint per drift run.
    assert (alarm["period"], alarm["evaluationPeriods"]) == (capturing.drift_period, 1)
    assert alarm["treatMissingData"] == "ignore"


def test_the_quality_silent_alarm_fires_when_no_labels_arrive_for_two_runs(
    capturing: Stack,
) -> None:
    alarm = capturing.alarm("quality-silent")
    assert alarm["metricName"] == "LabelledRecords"
    assert (alarm["statistic"], alarm["comparisonOperator"], alarm["threshold"]) == (
        "Sum",
        "LessThanThreshold",
        1,
    )
    assert alarm["period"] == capturing.quality_period
    assert alarm["evaluationPeriods"] == alarm["datapointsToAlarm"] == 2
    assert alarm["treatMissingData"] == "breaching"
    assert alarm["alarmActions"] == _topic(capturing)
    # Silent alarms are the ones promotion ignores: monitoring's health, not the model's.
    assert alarm["name"] in silent_alarm_names(capturing.prefix)


def test_the_retrain_rule_follows_drift_and_quality_but_never_alerts_only_alarms(
    capturing: Stack,
) -> None:
    rule = capturing.the(RULE, f"{capturing.prefix}-retrain-on-drift").inputs
    pattern = _json(rule["eventPattern"])
    assert pattern["resources"] == [
        arn("cloudwatch", f"alarm:{capturing.endpoint}-drift"),
        arn("cloudwatch", f"alarm:{capturing.endpoint}-quality"),
    ]
    assert pattern["detail"] == {"state": {"value": ["ALARM"]}}
    assert "-quality" in rule["description"]
    # Prod leaves retraining to a human, whichever alarm fires.
    assert rule["state"] == ("DISABLED" if capturing.planned.stack == "prod" else "ENABLED")


# --- dashboard ---------------------------------------------------------------------------------


def _lines(stack: Stack) -> list[tuple[str, dict[str, str]]]:
    (dashboard,) = stack.planned.all(DASHBOARD)
    found = []
    for widget in json.loads(dashboard.inputs["dashboardBody"])["widgets"]:
        for raw in widget.get("properties", {}).get("metrics", []):
            fields = [f for f in raw if not isinstance(f, dict)]
            _, name, *dimensions = fields
            found.append((name, dict(zip(dimensions[::2], dimensions[1::2], strict=True))))
    return found


def test_the_dashboard_draws_quality_bias_and_attributions(capturing: Stack) -> None:
    lines = _lines(capturing)
    endpoint = {"EndpointName": capturing.endpoint}
    quality = {d["Metric"] for name, d in lines if name == "ModelQuality"}
    assert quality == {"accuracy", "precision", "recall", "f1", "auc", "brier", "ece"}
    for name in ("QualityViolations", "BiasViolations", "LabelledRecords", "AttributionNDCG"):
        assert (name, endpoint) in lines, name
    bias = {(d["Facet"], d["Metric"]) for name, d in lines if name == "BiasMetric"}
    # The quality job names a facet column=values (monitoring/bias_drift.py).
    assert bias == {
        ("international_plan=yes", metric) for metric in ("DPPL", "DI", "DCAcc", "RD", "AD")
    }
    features = [d["Feature"] for name, d in lines if name == "FeatureAttribution"]
    assert sorted(features) == sorted(FEATURES)


def test_the_dashboard_names_the_metrics_as_the_jobs_publish_them() -> None:
    from infra.components.monitoring_definitions import QUALITY_METRICS
    from monitoring import quality_stats
    from training import bias

    assert set(QUALITY_METRICS) == {*quality_stats.MONITORABLE, "brier", "ece"}
    assert set(bias.POST_TRAINING) == {"DPPL", "DI", "DCAcc", "RD", "AD"}


# --- the jobs accept what the definitions pass ------------------------------------------------

# A baseline for the list step's copy (the real one is inside the served model's archive).
_BASELINE_DOCUMENT = {
    "version": 1,
    "rows": 10,
    "features": {
        "international_plan": {"type": "categorical", "frequencies": {"no": 0.5, "yes": 0.5}},
        "total_day_minutes": {
            "type": "numeric",
            "histogram": {"edges": [0, 100, 400], "proportions": [0.5, 0.5]},
            "quantiles": {"0.0": 0, "1.0": 400},
        },
    },
}
_BASELINE_ORDER = {
    "features": {"categorical": ["international_plan"], "numeric": ["total_day_minutes"]}
}


@dataclass
class _Run:
    """What one pipeline's list and summarise steps left for the steps after them."""

    window: tuple[Any, Any] | None = None
    labels_until: Any = None
    instances: int = 0


def _list_step_writes(job: str, options: Any, run: _Run) -> None:
    """What monitoring.<job>_shards.list_step writes once it has listed a window holding
    files, with the product's writers and paths: the manifest(s), window.json (the list
    step's own window) and the baseline copy. The listing itself (S3 capture, the registry)
    is left to tests/test_drift_shards.py and tests/test_quality_shards.py."""
    from monitoring import baseline, quality_shards, shards

    copy = baseline.parse(_BASELINE_DOCUMENT, _BASELINE_ORDER, "sample")
    region = options.region
    shards.write_baseline_copy(options.list_to, copy, region)
    window = shards.Window(options.start, options.end)
    shards.write_window(shards.window_uri(options.list_to), window, region)
    capture = shards.manifest_for([f"{options.capture}e/v/2026/01/01/00/a.jsonl"], options.capture)
    shards.write_manifest(options.list_to, capture, region)
    if job == "quality":
        labels = shards.manifest_for(
            [f"{options.ground_truth}2026/01/01/00/a.jsonl"], options.ground_truth
        )
        shards.write_manifest(quality_shards.labels_manifest_uri(options), labels, region)
        run.labels_until = options.labels_until
    run.window = (options.start, options.end)


def _context(job: str, options: Any, model: Any) -> dict[str, Any]:
    from monitoring import drift_shards, quality_shards

    if job == "drift":
        return drift_shards.context(options, model)
    return {"run": quality_shards.run_context(options)}


def _summary_step_writes(job: str, options: Any, instance: int) -> None:
    """Instance ``instance``'s summary (its counts left out), named as the job names it,
    of the run the job's own context function describes: the baseline it reads is the
    list step's copy, downloaded."""
    from monitoring import baseline, shards

    model = baseline.load(options.baseline)
    context = _context(job, options, model)
    shards.write_summary(options.summary_to, shards.Summary(job, f"algo-{instance}", context, {}))


def _merge_step_reads(job: str, options: Any, run: _Run) -> None:
    """The merge finds one summary per summarising instance, each of the run it judges."""
    from monitoring import baseline, shards

    found = shards.read_summaries(options.merge_from, job)
    assert sorted(s.shard for s in found) == [f"algo-{i}" for i in range(1, run.instances + 1)]
    model = baseline.parse(_BASELINE_DOCUMENT, _BASELINE_ORDER, "sample")
    expected = _context(job, options, model)
    assert all(s.context == expected for s in found)


def _run_pipeline(definition: dict[str, Any], execution: Any) -> list[tuple[str, str]]:
    """Run each processing step's argument parsing in dependency order, on every instance,
    with what the steps before it wrote; (step, script) for each step."""
    import importlib

    from pipeline_execution import in_order

    from training.packaging import ENTRY_POINTS

    run, checked = _Run(), []
    for step in in_order(definition):
        if step["Type"] != "Processing":
            continue
        instances = execution.instances(step)
        for instance in range(1, instances + 1):
            execution.download(step, instance)
            script, *arguments = execution.arguments(step, instance)
            module = importlib.import_module(ENTRY_POINTS[script])
            # parse_options checks values too (e.g. a facet or limit the job refuses).
            if not hasattr(module, "parse_options"):
                module.parse_args(arguments)
                continue
            options = module.parse_options(arguments)
            job = script.removesuffix(".py")
            if "--window-from" in arguments:
                # The list step's window, not one of this step's own making.
                assert run.window == (options.start, options.end), step["Name"]
                if job == "quality":
                    assert options.labels_until == run.labels_until, step["Name"]
            if "--list-to" in arguments:
                execution.ensure_bucket(options.list_to)
                _list_step_writes(job, options, run)
            elif "--summary-to" in arguments:
                _summary_step_writes(job, options, instance)
            elif "--merge-from" in arguments:
                _merge_step_reads(job, options, run)
            execution.upload(step, instance)
        if "--summary-to" in execution.arguments(step):
            run.instances = instances
        checked.append((step["Name"], script))
    return checked


@pytest.mark.parametrize("name", ["dev", "staging", "prod"])
def test_every_job_accepts_the_arguments_its_definition_passes(
    name: str, plan_of: Any, raw_config: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every step of every pipeline, run as one execution would: a sharded job's later
    steps read the window.json, baseline copy and summaries the steps before them wrote."""
    import boto3
    from moto import mock_aws
    from pipeline_execution import Execution

    from infra.config.loader import settings_from_config

    settings = settings_from_config(raw_config(name), project="mlops-kit", stack=name)
    for variable, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(variable, value)
    checked: dict[str, list[tuple[str, str]]] = {}
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for pipeline in plan_of(name).all(PIPELINE):
            definition = _json(pipeline.inputs["pipelineDefinition"])
            parameters = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
            kind = pipeline.inputs["pipelineName"].removeprefix(f"churn-{name}-")
            execution = Execution(tmp_path / kind, parameters, s3)
            checked[kind] = _run_pipeline(definition, execution)

    scripts = {script for steps in checked.values() for _, script in steps}
    expected = {"process.py", "evaluate.py", "publish_card.py"}
    if name != "dev":
        expected |= {"drift.py", "attribution.py", "quality.py"}
    # The split step exists only where bad rows are set aside rather than failing the job.
    if settings.batch.enabled and settings.batch.bad_rows is BadRows.ERRORS:
        expected.add("batch_split.py")
    assert scripts == expected
    if name == "dev":
        return
    monitoring = settings.monitoring
    drift = ["DetectDrift"]
    if monitoring.drift_instance_count > 1:
        drift = ["ListDriftWindow", "SummariseDrift", "DetectDrift"]
    quality = ["MeasureQuality"]
    if monitoring.quality_instance_count > 1:
        quality = ["ListQualityWindow", "SummariseQuality", "MeasureQuality"]
    # Each after the one whose files it reads; attribution beside them, reading none.
    drift_steps = [step for step, _ in checked["drift"]]
    assert sorted(drift_steps) == sorted([*drift, "DetectAttributionDrift"])
    assert [step for step in drift_steps if step in drift] == drift
    assert [step for step, _ in checked["quality"]] == quality
    # Today's stack files: prod shards both jobs, staging runs each in one step.
    assert (len(drift), len(quality)) == ((3, 3) if name == "prod" else (1, 1))
