"""Monitoring under Pulumi mocks: alerts topic, alarms, the drift loop, retraining, dashboard.

Expected values come from each stack's own config (with the settings' defaults), and ARNs
are computed here from names, so a changed stack file changes what is expected, not whether
the tests pass; a few tests also pin what today's stack files mean (prod's 4-vCPU CPU
threshold, the hourly and daily drift periods, retraining off in prod). dev serves
serverless without capture (no instance or drift parts); staging and prod serve on
instances and capture traffic.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from itertools import combinations
from pathlib import PurePosixPath
from typing import Any

import pytest
from conftest import KMS_KEY, REPO, ROLE, ROLE_POLICY, PlannedStack, planned_vpc_conditions
from pipeline_execution import resolved
from pulumi.runtime import rpc

from infra.components.endpoint_monitoring import silent_alarm_window
from infra.config.settings import BiasSettings, MonitoringSettings, ServingSettings
from infra.plan import runner
from infra.plan.mocks import PLAN_ACCOUNT_ID, RecordedResource, RecordingMonitor
from infra.plan.project import load_stack_config
from infra.plan.runner import plan_config
from training.dataset import FEATURES

TOPIC = "aws:sns/topic:Topic"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
PIPELINE = "aws:sagemaker/pipeline:Pipeline"
SCHEDULE = "aws:scheduler/schedule:Schedule"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
CONFIGURATION = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
MONITORING = "mlopskit:monitoring:EndpointMonitoring"
ALERT_TOPIC = "mlopskit:monitoring:AlertTopic"

REGION = "eu-west-1"
ACCOUNT = PLAN_ACCOUNT_ID
INSTANCE_STACKS = ("staging", "prod")
SAGEMAKER_NAMESPACE = "AWS/SageMaker"
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
# vCPUs of the endpoint instance types the stacks use (EC2 m5.large: 2, m5.xlarge: 4),
# written out rather than derived the way the kit derives them.
VCPUS = {"ml.m5.large": 2, "ml.m5.xlarge": 4}
# The drift schedules the stacks use, as alarm periods.
SCHEDULE_SECONDS = {"rate(1 hour)": 3600, "rate(1 day)": 86400}
EXECUTION_ID = {"Get": "Execution.PipelineExecutionId"}
# Roles the monitoring component creates, by the suffix after the stack prefix.
MONITORING_ROLES = (
    "drift-job",
    "attribution-job",
    "drift-pipeline",
    "drift-schedule",
    "quality-job",
    "quality-pipeline",
    "quality-schedule",
    "retrain-on-drift",
)
# The monitoring component's alarms on an instance endpoint that captures traffic and serves
# a registered version: instances, the drift pipeline's three and the quality pipeline's two
# (three with bias limits).
MONITORING_ALARMS = (
    "cpu",
    "memory",
    "drift",
    "drift-silent",
    "attribution-drift",
    "quality",
    "quality-silent",
)


def arn(service: str, resource: str) -> str:
    region = "" if service in ("iam", "s3") else REGION
    account = "" if service == "s3" else ACCOUNT
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _json(value: str | dict[str, Any]) -> dict[str, Any]:
    return value if isinstance(value, dict) else json.loads(value)


@dataclass(frozen=True)
class Monitoring:
    """One plan's monitoring resources, found by type and physical name."""

    planned: PlannedStack
    settings: MonitoringSettings
    serving: ServingSettings
    bias: BiasSettings

    @property
    def prefix(self) -> str:
        return f"churn-{self.planned.stack}"

    @property
    def outputs(self) -> dict[str, Any]:
        return self.planned.plan.outputs

    @property
    def key_arn(self) -> str:
        key: str = self.outputs["kmsKeyArn"]
        return key

    @property
    def topic_arn(self) -> str:
        return arn("sns", f"{self.prefix}-alerts")

    @property
    def capture_bucket(self) -> str:
        bucket: str = self.outputs["captureBucket"]
        return bucket

    @property
    def artifacts_bucket(self) -> str:
        bucket: str = self.outputs["artifactsBucket"]
        return bucket

    def named(self, type_token: str, name: str, field: str = "name") -> RecordedResource | None:
        found = [r for r in self.planned.of_type(type_token) if r.inputs.get(field) == name]
        assert len(found) <= 1, f"{len(found)} {type_token} named {name}"
        return found[0] if found else None

    def the(self, type_token: str, name: str, field: str = "name") -> RecordedResource:
        found = self.named(type_token, name, field)
        assert found is not None, f"the {self.planned.stack} plan has no {type_token} {name}"
        return found

    @property
    def endpoint_name(self) -> str:
        (endpoint,) = self.planned.all(ENDPOINT)
        name: str = endpoint.inputs["name"]
        return name

    @property
    def variant_name(self) -> str:
        (configuration,) = self.planned.all(CONFIGURATION)
        (variant,) = configuration.inputs["productionVariants"]
        name: str = variant["variantName"]
        return name

    @property
    def alarms(self) -> list[RecordedResource]:
        return self.planned.plan.of_type(ALARM)

    def alarm(self, suffix: str) -> RecordedResource:
        return self.the(ALARM, f"{self.endpoint_name}-{suffix}")

    @property
    def drift_alarm(self) -> RecordedResource:
        return self.alarm("drift")

    @property
    def silent_alarm(self) -> RecordedResource | None:
        return self.named(ALARM, f"{self.endpoint_name}-drift-silent")

    @property
    def drift_pipeline(self) -> RecordedResource:
        return self.the(PIPELINE, f"{self.prefix}-drift", "pipelineName")

    @property
    def drift_pipeline_arn(self) -> str:
        return arn("sagemaker", f"pipeline/{self.prefix}-drift")

    @property
    def training_pipeline_arn(self) -> str:
        return arn("sagemaker", f"pipeline/{self.prefix}-training")

    @property
    def definition(self) -> dict[str, Any]:
        return _json(self.drift_pipeline.inputs["pipelineDefinition"])

    def step_named(self, name: str) -> dict[str, Any]:
        (step,) = [s for s in self.definition["Steps"] if s["Name"] == name]
        assert step["Type"] == "Processing"
        arguments: dict[str, Any] = step["Arguments"]
        return arguments

    @property
    def step(self) -> dict[str, Any]:
        return self.step_named("DetectDrift")

    @property
    def container_arguments(self) -> list[Any]:
        arguments: list[Any] = self.step["AppSpecification"]["ContainerArguments"]
        return arguments

    @property
    def drift_schedule(self) -> RecordedResource:
        return self.the(SCHEDULE, f"{self.prefix}-drift")

    @property
    def retrain_rule(self) -> RecordedResource:
        return self.the(RULE, f"{self.prefix}-retrain-on-drift")

    def role(self, suffix: str) -> RecordedResource:
        return self.the(ROLE, f"{self.prefix}-{suffix}")

    def role_arn(self, suffix: str) -> str:
        return arn("iam", f"role/{self.prefix}-{suffix}")

    def trust(self, suffix: str) -> list[dict[str, Any]]:
        statements: list[dict[str, Any]] = self.planned.document(
            self.role(suffix), "assumeRolePolicy"
        )["Statement"]
        return statements

    def role_policies(self, suffix: str) -> list[RecordedResource]:
        return [
            p
            for p in self.planned.of_type(ROLE_POLICY)
            if p.inputs["role"] == f"{self.prefix}-{suffix}"
        ]

    def statements(self, suffix: str) -> list[dict[str, Any]]:
        policies = self.role_policies(suffix)
        assert policies, f"no policies on {self.prefix}-{suffix}"
        return [s for p in policies for s in self.planned.document(p)["Statement"]]

    @property
    def code_keys(self) -> dict[str, str]:
        """The content-hashed code objects Pulumi uploads, by kind (sourcedir, runner)."""
        keys: dict[str, str] = {}
        for obj in self.planned.all(OBJECT):
            key: str = obj.inputs["key"]
            if key.startswith("code/"):
                assert obj.inputs["bucket"] == self.artifacts_bucket, key
                keys[key.split("/")[1]] = key
        return keys


def _monitoring(planned: PlannedStack, raw: dict[str, str]) -> Monitoring:
    return Monitoring(
        planned,
        MonitoringSettings.model_validate(json.loads(raw["mlops:monitoring"])),
        ServingSettings.model_validate(json.loads(raw["mlops:serving"])),
        BiasSettings.model_validate(json.loads(raw.get("mlops:bias", "{}"))),
    )


@pytest.fixture
def monitoring(stack: PlannedStack, raw_config: Any) -> Monitoring:
    return _monitoring(stack, raw_config(stack.stack))


@pytest.fixture(params=INSTANCE_STACKS)
def drifting(request: pytest.FixtureRequest, plan_of: Any, raw_config: Any) -> Monitoring:
    """staging and prod: instance endpoints that capture traffic, so drift is watched."""
    return _monitoring(plan_of(request.param), raw_config(request.param))


@pytest.fixture
def dev(plan_of: Any, raw_config: Any) -> Monitoring:
    return _monitoring(plan_of("dev"), raw_config("dev"))


def _plan_with(stack: str, section: str, change: dict[str, Any], *drop: str) -> Monitoring:
    """Plan ``stack`` with its ``mlops:<section>`` config changed (``drop``: keys removed)."""
    config = load_stack_config(REPO, stack)
    key = f"mlops:{section}"
    changed = {**json.loads(config.values[key]), **change}
    for name in drop:
        changed.pop(name, None)
    values = {**config.values, key: json.dumps(changed)}
    return _monitoring(PlannedStack(plan_config(replace(config, values=values))), values)


@pytest.fixture(scope="module")
def prod_retraining_on_drift() -> Monitoring:
    return _plan_with("prod", "monitoring", {"retrainOnDrift": True})


@pytest.fixture(scope="module")
def prod_retraining_by_default() -> Monitoring:
    return _plan_with("prod", "monitoring", {}, "retrainOnDrift")


@pytest.fixture(scope="module")
def staging_schedule_off() -> Monitoring:
    return _plan_with("staging", "monitoring", {"driftScheduleEnabled": False})


@pytest.fixture(scope="module")
def staging_weekly() -> Monitoring:
    return _plan_with("staging", "monitoring", {"driftSchedule": "cron(0 3 ? * MON *)"})


@pytest.fixture(scope="module")
def staging_without_capture() -> Monitoring:
    return _plan_with("staging", "serving", {"dataCapturePercent": 0})


# --- the alerts topic ----------------------------------------------------------------------


def test_alerts_go_to_one_topic_encrypted_with_the_stack_key(monitoring: Monitoring) -> None:
    (topic,) = monitoring.planned.all(TOPIC)
    assert topic.inputs["name"] == f"{monitoring.prefix}-alerts"
    assert topic.inputs["kmsMasterKeyId"] == monitoring.key_arn
    assert monitoring.outputs["alertsTopicArn"] == monitoring.topic_arn


def test_the_topic_mails_exactly_the_configured_addresses(monitoring: Monitoring) -> None:
    subscriptions = monitoring.planned.of_type(SUBSCRIPTION)
    assert sorted(s.inputs["endpoint"] for s in subscriptions) == sorted(
        monitoring.settings.alarm_emails
    )
    for subscription in subscriptions:
        assert subscription.inputs["protocol"] == "email"
        assert subscription.inputs["topic"] == monitoring.topic_arn
    if monitoring.planned.stack == "dev":
        assert subscriptions == []


def test_only_this_stacks_alarms_publish_to_the_topic_and_only_over_tls(
    monitoring: Monitoring,
) -> None:
    (policy,) = monitoring.planned.all(TOPIC_POLICY)
    assert policy.inputs["arn"] == monitoring.topic_arn
    statements = monitoring.planned.document(policy)["Statement"]
    for statement in statements:
        assert _listed(statement["Resource"]) == [monitoring.topic_arn], statement["Sid"]

    publishers = [
        s for s in statements if s["Effect"] == "Allow" and "sns:Publish" in _listed(s["Action"])
    ]
    # No anonymous publisher, and no AWS service but CloudWatch; the account's own root
    # (AWS's default topic statement) leaves the decision to the account's IAM policies.
    assert all(isinstance(s["Principal"], dict) for s in publishers)
    services = [s for s in publishers if "Service" in s["Principal"]]
    accounts = [s for s in publishers if "AWS" in s["Principal"]]
    assert len(services) + len(accounts) == len(publishers)
    assert all(s["Principal"] == {"AWS": arn("iam", "root")} for s in accounts)
    # Scoped to callers of this account, as AWS's default statement is (checkov CKV_AWS_385).
    assert all(
        s["Condition"] == {"StringEquals": {"aws:PrincipalAccount": ACCOUNT}} for s in accounts
    )
    assert accounts
    (cloudwatch,) = services
    assert cloudwatch["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert _listed(cloudwatch["Action"]) == ["sns:Publish"]
    # The endpoint's name, not just the stack prefix: stack "prod-eu" must not match "prod".
    pattern = arn("cloudwatch", f"alarm:{monitoring.endpoint_name}-*")
    assert cloudwatch["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {"aws:SourceArn": pattern},
    }
    # Every alarm of the stack is let through by that condition.
    for alarm in monitoring.alarms:
        assert fnmatchcase(arn("cloudwatch", f"alarm:{alarm.inputs['name']}"), pattern)

    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Principal"] == "*"
    assert "sns:Publish" in _listed(deny["Action"])
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_stack_key_lets_cloudwatch_alarms_use_the_encrypted_topic(
    monitoring: Monitoring,
) -> None:
    (key,) = monitoring.planned.all(KMS_KEY)
    statements = {s["Sid"]: s for s in monitoring.planned.document(key)["Statement"]}
    grant = statements["AllowCloudWatchAlarmsToEncryptedTopic"]
    assert grant["Effect"] == "Allow"
    assert grant["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(_listed(grant["Action"]))


# --- every alarm ---------------------------------------------------------------------------


def test_every_alarm_notifies_the_topic_and_names_the_endpoint(monitoring: Monitoring) -> None:
    alarms = monitoring.alarms
    # The endpoint's three rollback alarms, and on instance endpoints with capture, the
    # monitoring component's (one more where bias limits are set).
    extra = len(MONITORING_ALARMS) + (1 if monitoring.bias.limits else 0)
    expected = 3 if monitoring.planned.stack == "dev" else 3 + extra
    assert len(alarms) == expected
    for alarm in alarms:
        inputs = alarm.inputs
        assert inputs["alarmActions"] == [monitoring.topic_arn], alarm.name
        assert inputs["okActions"] == [monitoring.topic_arn], alarm.name
        assert inputs["actionsEnabled"] is True, alarm.name
        assert inputs["treatMissingData"] in {"notBreaching", "ignore", "breaching", "missing"}
        assert inputs["alarmDescription"].strip(), alarm.name
        assert monitoring.endpoint_name in inputs["alarmDescription"], alarm.name


# --- instance alarms -----------------------------------------------------------------------


def test_instance_alarms_watch_cpu_and_memory_of_the_deployed_variant(
    drifting: Monitoring,
) -> None:
    dimensions = {"EndpointName": drifting.endpoint_name, "VariantName": drifting.variant_name}
    cpu, memory = drifting.alarm("cpu").inputs, drifting.alarm("memory").inputs
    for alarm, metric in ((cpu, "CPUUtilization"), (memory, "MemoryUtilization")):
        assert alarm["namespace"] == INSTANCE_NAMESPACE
        assert alarm["metricName"] == metric
        assert alarm["dimensions"] == dimensions
        assert alarm["comparisonOperator"] == "GreaterThanThreshold"
    # SageMaker sums CPUUtilization over the instance's vCPUs (0-100 x vCPUs).
    vcpus = VCPUS[drifting.serving.instance_type]
    assert cpu["threshold"] == drifting.settings.cpu_utilization_percent * vcpus
    assert memory["threshold"] == drifting.settings.memory_utilization_percent


def test_prod_cpu_threshold_counts_four_vcpus(plan_of: Any, raw_config: Any) -> None:
    prod = _monitoring(plan_of("prod"), raw_config("prod"))
    assert prod.serving.instance_type == "ml.m5.xlarge"
    assert prod.alarm("cpu").inputs["threshold"] == prod.settings.cpu_utilization_percent * 4


def test_dev_has_no_instance_or_drift_parts(dev: Monitoring) -> None:
    names = sorted(a.inputs["name"] for a in dev.alarms)
    assert names == sorted(
        f"{dev.endpoint_name}-{kind}" for kind in ("5xx-rate", "4xx-rate", "latency-p99")
    )
    for kind in ("drift", "quality"):
        assert dev.named(PIPELINE, f"{dev.prefix}-{kind}", "pipelineName") is None
        assert dev.named(SCHEDULE, f"{dev.prefix}-{kind}") is None
    assert dev.planned.of_type(RULE) == dev.planned.of_type(TARGET) == []
    for suffix in MONITORING_ROLES:
        assert dev.named(ROLE, f"{dev.prefix}-{suffix}") is None, suffix


# --- drift: alarm, pipeline, schedule --------------------------------------------------------


def test_drift_alarm_fires_on_drift_score_once_per_scheduled_run(drifting: Monitoring) -> None:
    alarm = drifting.drift_alarm.inputs
    assert alarm["namespace"] == f"MLOpsKit/{drifting.prefix}"
    assert alarm["metricName"] == "DriftScore"
    assert alarm["dimensions"] == {"EndpointName": drifting.endpoint_name}
    assert alarm["threshold"] == drifting.settings.drift_psi_threshold
    assert alarm["period"] == SCHEDULE_SECONDS[drifting.settings.drift_schedule]
    assert alarm["treatMissingData"] == "ignore"


def test_drift_silent_alarm_fires_when_runs_report_no_captured_records(
    drifting: Monitoring,
) -> None:
    silent = drifting.silent_alarm
    assert silent is not None
    alarm = silent.inputs
    assert alarm["namespace"] == f"MLOpsKit/{drifting.prefix}"
    assert alarm["metricName"] == "CaptureRecords"
    assert alarm["dimensions"] == {"EndpointName": drifting.endpoint_name}
    assert (alarm["statistic"], alarm["comparisonOperator"], alarm["threshold"]) == (
        "Sum",
        "LessThanThreshold",
        1,
    )
    # Two scheduled runs in a row: one late run does not alarm; a job that never runs
    # publishes nothing, and missing data is silence.
    assert alarm["period"] == SCHEDULE_SECONDS[drifting.settings.drift_schedule]
    assert alarm["evaluationPeriods"] == alarm["datapointsToAlarm"] == 2
    assert alarm["treatMissingData"] == "breaching"
    assert "no captured records" in alarm["alarmDescription"]
    # Silence is not drift: it alerts people and never starts retraining.
    assert alarm["alarmActions"] == [drifting.topic_arn]
    silent_arn = arn("cloudwatch", f"alarm:{alarm['name']}")
    assert silent_arn not in json.dumps(drifting.retrain_rule.inputs["eventPattern"])


def test_no_drift_silent_alarm_where_nothing_runs_on_its_own(
    staging_schedule_off: Monitoring, staging_without_capture: Monitoring
) -> None:
    # The schedule is off: the pipeline runs only by hand, so silence is expected.
    assert staging_schedule_off.silent_alarm is None
    assert staging_schedule_off.drift_alarm
    # No capture: no drift job at all.
    assert staging_without_capture.silent_alarm is None


def test_a_schedule_cloudwatch_cannot_span_twice_gets_no_drift_silent_alarm(
    staging_weekly: Monitoring,
) -> None:
    assert staging_weekly.silent_alarm is None
    assert staging_weekly.drift_alarm


@pytest.mark.parametrize(
    ("schedule", "window"),
    [
        ("rate(1 hour)", (3600, 2)),
        ("rate(1 day)", (86400, 2)),
        ("rate(30 minutes)", (1800, 2)),
        ("rate(3 days)", (86400, 6)),  # 6 days: CloudWatch's limit is 7
        ("rate(4 days)", None),
        ("cron(0 3 * * ? *)", (86400, 2)),  # daily, or more often: two days
        ("cron(0 3 ? * MON *)", None),  # weekly: two runs span 14 days
        ("cron(0 3 1 * ? *)", None),
    ],
)
def test_the_drift_silent_window_spans_two_runs_within_cloudwatchs_limits(
    schedule: str, window: tuple[int, int] | None
) -> None:
    assert silent_alarm_window(schedule) == window


def test_drift_alarm_period_matches_each_stacks_schedule(plan_of: Any, raw_config: Any) -> None:
    periods = {
        name: _monitoring(plan_of(name), raw_config(name)).drift_alarm.inputs["period"]
        for name in INSTANCE_STACKS
    }
    assert periods == {"staging": 86400, "prod": 3600}


def _argument(arguments: list[Any], flag: str) -> Any:
    assert arguments.count(flag) == 1, flag
    return arguments[arguments.index(flag) + 1]


def test_drift_job_reads_the_endpoints_capture_and_the_served_models_baseline(
    drifting: Monitoring,
) -> None:
    arguments = drifting.container_arguments
    assert arguments[0] == "drift.py"
    endpoint = drifting.endpoint_name
    capture = _argument(arguments, "--capture")
    assert (
        capture == f"s3://{drifting.capture_bucket}/datacapture/{endpoint}/{drifting.variant_name}/"
    )
    # SageMaker writes <destination>/<endpoint>/<variant>/...: the same place.
    (configuration,) = drifting.planned.all(CONFIGURATION)
    destination = configuration.inputs["dataCaptureConfig"]["destinationS3Uri"]
    assert capture == f"{destination.rstrip('/')}/{endpoint}/{drifting.variant_name}/"

    assert drifting.serving.model is not None
    # The version the stack file serves (`mlops promote` rewrites it).
    version = drifting.serving.model.package_version
    assert version is not None
    group = drifting.outputs["modelPackageGroupName"]
    assert group == f"{drifting.prefix}-models"
    assert _argument(arguments, "--baseline") == arn(
        "sagemaker", f"model-package/{group}/{version}"
    )
    assert _argument(arguments, "--namespace") == f"MLOpsKit/{drifting.prefix}"
    assert _argument(arguments, "--endpoint-name") == endpoint
    assert "--publish" in arguments


def test_drift_pipeline_runs_encrypted_steps_with_network_but_the_isolated_shards(
    drifting: Monitoring,
) -> None:
    count = drifting.settings.drift_instance_count
    drift = ["DetectDrift"]
    if count > 1:
        # List the window, summarise its files on N instances, merge into the report.
        drift = ["ListDriftWindow", "SummariseDrift", "DetectDrift"]
    steps = [(s["Name"], s["Type"]) for s in drifting.definition["Steps"]]
    assert steps == [(name, "Processing") for name in (*drift, "DetectAttributionDrift")]
    # Today's stack files: prod shards the drift job over two instances, staging does not.
    assert count == (2 if drifting.planned.stack == "prod" else 1)
    depends = {s["Name"]: s.get("DependsOn") for s in drifting.definition["Steps"]}
    # Each shard step waits for the one whose files it reads; attribution runs beside
    # them on the same window, reading none of them.
    assert depends == {
        **{name: ([drift[i - 1]] if i else None) for i, name in enumerate(drift)},
        "DetectAttributionDrift": None,
    }
    for name, _ in steps:
        step = drifting.step_named(name)
        assert step["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == drifting.key_arn
        assert step["ProcessingOutputConfig"]["KmsKeyId"] == drifting.key_arn
        # The jobs list S3, read the registry and publish metrics, so they are not
        # isolated; the summarise step reads only its downloaded files, so it is.
        # Traffic between instances is encrypted either way.
        isolated = name == "SummariseDrift"
        assert step["NetworkConfig"]["EnableNetworkIsolation"] is isolated, name
        assert step["NetworkConfig"]["EnableInterContainerTrafficEncryption"] is True
        instances = count if isolated else 1
        assert step["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == instances, name
        # Inputs are S3 URIs of the execution, not other steps' properties.
        assert not any(g.startswith("Steps.") for g in _gets(step)), name
    if count == 1:
        return
    # Each instance downloads its share of the listed capture files.
    summarise = drifting.step_named("SummariseDrift")
    (listed,) = [
        i["S3Input"]
        for i in summarise["ProcessingInputs"]
        if i["S3Input"]["S3DataType"] == "ManifestFile"
    ]
    assert listed["S3DataDistributionType"] == "ShardedByS3Key"
    arguments = summarise["AppSpecification"]["ContainerArguments"]
    assert listed["LocalPath"] == _argument(arguments, "--capture")
    listing = drifting.step_named("ListDriftWindow")["AppSpecification"]["ContainerArguments"]
    assert listed["S3Uri"] == _argument(listing, "--list-to")
    assert listed["S3Uri"]["Std:Join"]["Values"] == [
        f"s3://{drifting.capture_bucket}/monitoring/{drifting.endpoint_name}",
        EXECUTION_ID,
        "shards",
        "capture.manifest",
    ]


def test_only_the_list_step_chooses_the_drift_window(drifting: Monitoring) -> None:
    window = {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.WindowHours"}]}}
    if drifting.settings.drift_instance_count == 1:
        assert _argument(drifting.container_arguments, "--window-hours") == window
        assert "--window-from" not in drifting.container_arguments
        return
    listing = drifting.step_named("ListDriftWindow")["AppSpecification"]["ContainerArguments"]
    assert _argument(listing, "--window-hours") == window
    assert "--window-from" not in listing and "--end" not in listing
    # The steps after it start minutes later: they take its window.json, not the clock.
    for name in ("SummariseDrift", "DetectDrift"):
        step = drifting.step_named(name)
        arguments = step["AppSpecification"]["ContainerArguments"]
        assert "--window-hours" not in arguments and "--end" not in arguments, name
        (source,) = [i["S3Input"] for i in step["ProcessingInputs"] if i["InputName"] == "window"]
        assert _argument(arguments, "--window-from") == source["LocalPath"]
        assert source["S3Uri"]["Std:Join"]["Values"] == [
            f"s3://{drifting.capture_bucket}/monitoring/{drifting.endpoint_name}",
            EXECUTION_ID,
            "shards",
            "window.json",
        ]


def _gets(value: Any) -> set[str]:
    if isinstance(value, dict):
        if set(value) == {"Get"}:
            return {value["Get"]}
        return {g for item in value.values() for g in _gets(item)}
    if isinstance(value, list):
        return {g for item in value for g in _gets(item)}
    return set()


def test_drift_report_lands_per_execution_under_the_endpoints_monitoring_prefix(
    drifting: Monitoring,
) -> None:
    (report,) = drifting.step["ProcessingOutputConfig"]["Outputs"]
    join = report["S3Output"]["S3Uri"]["Std:Join"]
    assert join["On"] == "/"
    assert join["Values"] == [
        f"s3://{drifting.capture_bucket}/monitoring/{drifting.endpoint_name}",
        EXECUTION_ID,
    ]


def test_drift_pipeline_and_its_job_run_as_their_own_roles(drifting: Monitoring) -> None:
    assert drifting.step["RoleArn"] == drifting.role_arn("drift-job")
    assert drifting.drift_pipeline.inputs["roleArn"] == drifting.role_arn("drift-pipeline")
    assert drifting.drift_pipeline.inputs["pipelineName"] == f"{drifting.prefix}-drift"
    assert drifting.outputs["driftPipelineName"] == f"{drifting.prefix}-drift"
    for suffix in ("drift-job", "drift-pipeline"):
        (trust,) = drifting.trust(suffix)
        assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}


def test_drift_job_runs_the_same_code_objects_as_the_training_pipeline(
    drifting: Monitoring,
) -> None:
    keys = drifting.code_keys
    assert set(keys) == {"sourcedir", "runner"}
    uris = {kind: f"s3://{drifting.artifacts_bucket}/{key}" for kind, key in keys.items()}
    scratch = [f"s3://{drifting.capture_bucket}/monitoring/{drifting.endpoint_name}", EXECUTION_ID]
    sharded = drifting.settings.drift_instance_count > 1
    for step in drifting.definition["Steps"]:
        arguments = step["Arguments"]
        inputs = {
            i["S3Input"]["S3Uri"]: i["S3Input"]
            for i in arguments["ProcessingInputs"]
            if isinstance(i["S3Input"]["S3Uri"], str)
        }
        assert set(inputs) == set(uris.values()), step["Name"]
        # Apart from code, only a sharded run's later steps read anything: its scratch files.
        others = [
            i["S3Input"]["S3Uri"]["Std:Join"]["Values"]
            for i in arguments["ProcessingInputs"]
            if not isinstance(i["S3Input"]["S3Uri"], str)
        ]
        reads_scratch = sharded and step["Name"] in {"SummariseDrift", "DetectDrift"}
        assert bool(others) == reads_scratch, step["Name"]
        assert all(values[:3] == [*scratch, "shards"] for values in others), step["Name"]
        # The entry point is the runner, where its input puts it.
        entrypoint = arguments["AppSpecification"]["ContainerEntrypoint"]
        runner_path = inputs[uris["runner"]]["LocalPath"]
        assert entrypoint[-1] == f"{runner_path}/{PurePosixPath(keys['runner']).name}"

    training = drifting.the(PIPELINE, f"{drifting.prefix}-training", "pipelineName")
    definition = training.inputs["pipelineDefinition"]
    text = definition if isinstance(definition, str) else json.dumps(definition)
    for uri in uris.values():
        assert uri in text, uri


def test_drift_schedule_starts_the_drift_pipeline_encrypted(drifting: Monitoring) -> None:
    schedule = drifting.drift_schedule.inputs
    assert schedule["scheduleExpression"] == drifting.settings.drift_schedule
    assert schedule["state"] == "ENABLED"
    assert schedule["kmsKeyArn"] == drifting.key_arn
    assert schedule["target"]["arn"] == drifting.drift_pipeline_arn
    assert schedule["target"]["roleArn"] == drifting.role_arn("drift-schedule")


def test_drift_schedule_role_only_starts_the_drift_pipeline(drifting: Monitoring) -> None:
    (trust,) = drifting.trust("drift-schedule")
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {
        "aws:SourceAccount": ACCOUNT,
        "aws:SourceArn": arn("scheduler", "schedule-group/default"),
    }
    statements = drifting.statements("drift-schedule")
    assert all(s["Effect"] == "Allow" for s in statements)
    sagemaker = [
        s for s in statements if any(a.startswith("sagemaker:") for a in _listed(s["Action"]))
    ]
    assert [(_listed(s["Action"]), _listed(s["Resource"])) for s in sagemaker] == [
        (["sagemaker:StartPipelineExecution"], [drifting.drift_pipeline_arn])
    ]
    # Apart from that, it may only decrypt this schedule with the stack key.
    for statement in statements:
        if statement not in sagemaker:
            assert _listed(statement["Action"]) == ["kms:Decrypt"]
            assert _listed(statement["Resource"]) == [drifting.key_arn]
            assert statement["Condition"] == {
                "StringEquals": {
                    "kms:EncryptionContext:aws:scheduler:schedule:arn": arn(
                        "scheduler", f"schedule/default/{drifting.prefix}-drift"
                    )
                }
            }


# --- retraining on drift ---------------------------------------------------------------------


def test_retrain_rule_matches_the_drift_or_quality_alarm_going_to_alarm(
    drifting: Monitoring,
) -> None:
    pattern = _json(drifting.retrain_rule.inputs["eventPattern"])
    drift_alarm_arn = arn("cloudwatch", f"alarm:{drifting.drift_alarm.inputs['name']}")
    quality_alarm_arn = arn("cloudwatch", f"alarm:{drifting.endpoint_name}-quality")
    assert pattern == {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "resources": [drift_alarm_arn, quality_alarm_arn],
        "detail": {"state": {"value": ["ALARM"]}},
    }
    assert drifting.outputs["driftAlarmName"] == drifting.drift_alarm.inputs["name"]


@pytest.mark.parametrize(("stack_name", "state"), [("staging", "ENABLED"), ("prod", "DISABLED")])
def test_retraining_on_drift_is_off_in_prod(
    plan_of: Any, raw_config: Any, stack_name: str, state: str
) -> None:
    planned = _monitoring(plan_of(stack_name), raw_config(stack_name))
    configured = planned.settings.retrain_on_drift
    expected = configured if configured is not None else stack_name != "prod"
    assert planned.retrain_rule.inputs["state"] == ("ENABLED" if expected else "DISABLED")
    assert planned.retrain_rule.inputs["state"] == state


def test_prod_retrains_on_drift_only_when_its_config_says_so(
    prod_retraining_on_drift: Monitoring, prod_retraining_by_default: Monitoring
) -> None:
    assert prod_retraining_on_drift.retrain_rule.inputs["state"] == "ENABLED"
    # Unset, prod still leaves retraining to a human.
    assert prod_retraining_by_default.settings.retrain_on_drift is None
    assert prod_retraining_by_default.retrain_rule.inputs["state"] == "DISABLED"


def test_retrain_target_starts_the_training_pipeline_as_its_own_role(
    drifting: Monitoring,
) -> None:
    (target,) = drifting.planned.all(TARGET)
    assert target.inputs["rule"] == drifting.retrain_rule.inputs["name"]
    assert target.inputs["arn"] == drifting.training_pipeline_arn
    assert drifting.outputs["trainingPipelineArn"] == drifting.training_pipeline_arn
    assert target.inputs["roleArn"] == drifting.role_arn("retrain-on-drift")

    (trust,) = drifting.trust("retrain-on-drift")
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"] == {
        "StringEquals": {
            "aws:SourceAccount": ACCOUNT,
            "aws:SourceArn": arn("events", f"rule/{drifting.prefix}-retrain-on-drift"),
        }
    }
    (only,) = drifting.statements("retrain-on-drift")
    assert only["Effect"] == "Allow"
    assert _listed(only["Action"]) == ["sagemaker:StartPipelineExecution"]
    assert _listed(only["Resource"]) == [drifting.training_pipeline_arn]
    assert "Condition" not in only


# --- the drift roles -------------------------------------------------------------------------


def _s3_object_resources(statements: list[dict[str, Any]], verb: str) -> set[str]:
    return {
        r
        for s in statements
        if s["Effect"] == "Allow"
        and any(a.startswith(f"s3:{verb}Object") for a in _listed(s["Action"]))
        for r in _listed(s["Resource"])
    }


def _s3_arn(uri: str) -> str:
    return "arn:aws:s3:::" + uri.removeprefix("s3://")


def test_drift_job_role_reads_capture_models_and_code_and_writes_reports_only(
    drifting: Monitoring,
) -> None:
    statements = drifting.statements("drift-job")
    capture = arn("s3", drifting.capture_bucket)
    artifacts = arn("s3", drifting.artifacts_bucket)
    actions = {a for s in statements for a in _listed(s["Action"])}
    assert not {"s3:*", "*"} & actions
    # A sharded run's later steps read back its scratch files, not the reports beside them.
    sharded = drifting.settings.drift_instance_count > 1
    scratch = {f"{capture}/monitoring/*/shards/*"} if sharded else set()
    assert _s3_object_resources(statements, "Get") == {
        f"{capture}/datacapture/*",
        f"{artifacts}/models/*",
        f"{artifacts}/code/*",
        *scratch,
    }
    # Today's stack files: prod shards the drift job, staging does not (dev has no job).
    assert sharded == (drifting.planned.stack == "prod")
    assert _s3_object_resources(statements, "Put") == {f"{capture}/monitoring/*"}
    assert _s3_object_resources(statements, "Delete") == set()

    # What each of the role's steps is told to read and write lies within those grants.
    readable = _s3_object_resources(statements, "Get")
    steps = [
        s["Arguments"]
        for s in drifting.definition["Steps"]
        if s["Arguments"]["RoleArn"] == drifting.role_arn("drift-job")
    ]
    assert len(steps) == (3 if sharded else 1)
    for step in steps:
        arguments = step["AppSpecification"]["ContainerArguments"]
        reads = [resolved(i["S3Input"]["S3Uri"], {}) for i in step["ProcessingInputs"]]
        capture_uri = _argument(arguments, "--capture")
        if capture_uri.startswith("s3://"):
            reads.append(f"{capture_uri}2026/01/01/00/part.jsonl")
        for uri in reads:
            assert any(fnmatchcase(_s3_arn(uri), grant) for grant in readable), uri
        for output in step["ProcessingOutputConfig"]["Outputs"]:
            target = _s3_arn(resolved(output["S3Output"]["S3Uri"], {})) + "/drift.json"
            assert fnmatchcase(target, f"{capture}/monitoring/*"), target


def test_drift_job_role_publishes_only_its_namespace_and_reads_only_its_registry(
    drifting: Monitoring,
) -> None:
    statements = drifting.statements("drift-job")
    metrics = [s for s in statements if "cloudwatch:PutMetricData" in _listed(s["Action"])]
    assert metrics
    for statement in metrics:
        assert statement["Condition"] == {
            "StringEquals": {"cloudwatch:namespace": f"MLOpsKit/{drifting.prefix}"}
        }
    sagemaker = [
        s for s in statements if any(a.startswith("sagemaker:") for a in _listed(s["Action"]))
    ]
    assert [(_listed(s["Action"]), _listed(s["Resource"])) for s in sagemaker] == [
        (
            ["sagemaker:DescribeModelPackage"],
            [arn("sagemaker", f"model-package/{drifting.prefix}-models/*")],
        )
    ]
    baseline = _argument(drifting.container_arguments, "--baseline")
    assert fnmatchcase(baseline, _listed(sagemaker[0]["Resource"])[0])


def test_drift_pipeline_role_starts_only_encrypted_pipeline_jobs_as_the_drift_role(
    drifting: Monitoring,
) -> None:
    statements = drifting.statements("drift-pipeline")
    jobs = arn("sagemaker", "processing-job/pipelines-*")
    creates = [s for s in statements if "sagemaker:CreateProcessingJob" in _listed(s["Action"])]
    assert len(creates) == 1
    (create,) = creates
    assert _listed(create["Resource"]) == [jobs]
    assert create["Condition"] == {
        "Bool": {"sagemaker:InterContainerTrafficEncryption": "true"},
        "ArnEquals": {
            "sagemaker:VolumeKmsKey": drifting.key_arn,
            "sagemaker:OutputKmsKey": drifting.key_arn,
        },
        **planned_vpc_conditions(drifting.planned.plan),
    }
    for statement in statements:
        if any(a.startswith("sagemaker:") for a in _listed(statement["Action"])):
            assert _listed(statement["Resource"]) == [jobs], statement["Sid"]

    passes = [s for s in statements if "iam:PassRole" in _listed(s["Action"])]
    assert len(passes) == 1
    (pass_role,) = passes
    assert _listed(pass_role["Resource"]) == [
        drifting.role_arn("drift-job"),
        drifting.role_arn("attribution-job"),
    ]
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    actions = {a for s in statements for a in _listed(s["Action"])}
    assert {a for a in actions if not a.startswith("sagemaker:")} == {"iam:PassRole"}


# --- dashboard -------------------------------------------------------------------------------

MetricKey = tuple[str, str, frozenset[tuple[str, str]]]


@dataclass(frozen=True)
class Line:
    namespace: str
    name: str
    dimensions: dict[str, str]
    options: dict[str, Any]

    @property
    def key(self) -> MetricKey:
        return self.namespace, self.name, frozenset(self.dimensions.items())


def _line(raw: list[Any]) -> Line:
    fields = [f for f in raw if not isinstance(f, dict)]
    options = [f for f in raw if isinstance(f, dict)]
    assert len(options) <= 1 and len(fields) % 2 == 0, raw
    namespace, name, *dimensions = fields
    return Line(
        namespace,
        name,
        dict(zip(dimensions[::2], dimensions[1::2], strict=True)),
        options[0] if options else {},
    )


def _dashboard(monitoring: Monitoring) -> dict[str, Any]:
    (dashboard,) = monitoring.planned.all(DASHBOARD)
    assert dashboard.inputs["dashboardName"] == monitoring.prefix
    body = dashboard.inputs["dashboardBody"]
    assert isinstance(body, str)
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def _metric_widgets(monitoring: Monitoring) -> list[dict[str, Any]]:
    return [w for w in _dashboard(monitoring)["widgets"] if w["type"] == "metric"]


def _lines(widget: dict[str, Any]) -> list[Line]:
    return [_line(raw) for raw in widget["properties"]["metrics"]]


def _all_lines(monitoring: Monitoring) -> Iterator[Line]:
    for widget in _metric_widgets(monitoring):
        yield from _lines(widget)


def _watched(alarm: RecordedResource) -> list[MetricKey]:
    inputs = alarm.inputs
    metrics = (
        [q["metric"] for q in inputs["metricQueries"] if "metric" in q]
        if "metricQueries" in inputs
        else [inputs]
    )
    assert metrics, alarm.name
    return [(m["namespace"], m["metricName"], frozenset(m["dimensions"].items())) for m in metrics]


def test_dashboard_metrics_name_the_deployed_endpoint_and_variant(
    monitoring: Monitoring,
) -> None:
    variant = {"EndpointName": monitoring.endpoint_name, "VariantName": monitoring.variant_name}
    kit = f"MLOpsKit/{monitoring.prefix}"
    lines = list(_all_lines(monitoring))
    assert lines
    for widget in _metric_widgets(monitoring):
        assert widget["properties"]["region"] == REGION
    for line in lines:
        assert line.namespace in {SAGEMAKER_NAMESPACE, INSTANCE_NAMESPACE, kit}, line
        if line.namespace == kit:
            assert line.dimensions["EndpointName"] == monitoring.endpoint_name, line
        else:
            assert line.dimensions == variant, line
    assert monitoring.outputs["dashboardName"] == monitoring.prefix


def test_dashboard_draws_every_metric_an_alarm_watches(monitoring: Monitoring) -> None:
    drawn = {line.key for line in _all_lines(monitoring)}
    for alarm in monitoring.alarms:
        for watched in _watched(alarm):
            assert watched in drawn, (alarm.inputs["name"], watched)


def test_dashboard_latency_widget_shows_p50_and_p99(monitoring: Monitoring) -> None:
    (widget,) = [
        w
        for w in _metric_widgets(monitoring)
        if any(line.name == "ModelLatency" for line in _lines(w))
    ]
    latency = _lines(widget)
    assert all(line.name == "ModelLatency" for line in latency)
    assert sorted(line.options["stat"] for line in latency) == ["p50", "p99"]


def test_dashboard_draws_drift_per_feature_and_instances_only_where_they_exist(
    monitoring: Monitoring,
) -> None:
    lines = list(_all_lines(monitoring))
    kit = f"MLOpsKit/{monitoring.prefix}"
    drift = [line for line in lines if line.namespace == kit]
    instance = [line for line in lines if line.namespace == INSTANCE_NAMESPACE]
    if monitoring.planned.stack == "dev":
        assert drift == instance == []
        return
    features = Counter(line.dimensions["Feature"] for line in drift if line.name == "FeaturePSI")
    assert sorted(features.elements()) == sorted(FEATURES)
    assert all(count == 1 for count in features.values())
    assert [line.name for line in drift].count("DriftScore") == 1
    assert [line.name for line in drift].count("CaptureRecords") == 1
    assert {line.name for line in drift} >= {
        "FeaturePSI",
        "DriftScore",
        "CaptureRecords",
        "MalformedRecords",
    }
    assert {"CPUUtilization", "MemoryUtilization"} <= {line.name for line in instance}


def test_dashboard_alarm_widget_lists_exactly_the_stacks_alarms(monitoring: Monitoring) -> None:
    (widget,) = [w for w in _dashboard(monitoring)["widgets"] if w["type"] == "alarm"]
    listed = widget["properties"]["alarms"]
    assert len(listed) == len(set(listed))
    assert sorted(listed) == sorted(
        arn("cloudwatch", f"alarm:{a.inputs['name']}") for a in monitoring.alarms
    )


def test_dashboard_widgets_fit_24_columns_without_overlapping(monitoring: Monitoring) -> None:
    widgets = _dashboard(monitoring)["widgets"]
    for widget in widgets:
        assert widget["x"] >= 0 and widget["y"] >= 0
        assert widget["width"] > 0 and widget["height"] > 0
        assert widget["x"] + widget["width"] <= 24, widget
    for a, b in combinations(widgets, 2):
        apart = (
            a["x"] + a["width"] <= b["x"]
            or b["x"] + b["width"] <= a["x"]
            or a["y"] + a["height"] <= b["y"]
            or b["y"] + b["height"] <= a["y"]
        )
        assert apart, (a.get("properties", {}).get("title"), b.get("properties", {}).get("title"))


# --- component structure ---------------------------------------------------------------------


def _ancestors(planned: PlannedStack, resource: RecordedResource) -> list[str]:
    """Types of the components above ``resource``, nearest first."""
    urns = {r.urn: r for r in planned.resources}
    chain: list[str] = []
    parent = resource.parent
    while parent in urns:
        chain.append(urns[parent].type)
        parent = urns[parent].parent
    return chain


def test_monitoring_resources_live_under_the_component_and_the_topic_under_its_own(
    monitoring: Monitoring,
) -> None:
    planned = monitoring.planned
    endpoint_alarms = {
        f"{monitoring.endpoint_name}-{k}" for k in ("5xx-rate", "4xx-rate", "latency-p99")
    }
    alarms = [a for a in monitoring.alarms if a.inputs["name"] not in endpoint_alarms]
    owned = [*alarms, *planned.all(DASHBOARD), *planned.of_type(RULE), *planned.of_type(TARGET)]
    if monitoring.planned.stack == "dev":
        assert alarms == [] and len(owned) == 1
    else:
        expected = len(MONITORING_ALARMS) + (1 if monitoring.bias.limits else 0)
        assert len(alarms) == expected and len(owned) == expected + 3
        owned += [monitoring.drift_pipeline, monitoring.drift_schedule]
        owned += [
            monitoring.the(PIPELINE, f"{monitoring.prefix}-quality", "pipelineName"),
            monitoring.the(SCHEDULE, f"{monitoring.prefix}-quality"),
        ]
        for suffix in MONITORING_ROLES:
            policies = monitoring.role_policies(suffix)
            assert policies, suffix
            owned += [monitoring.role(suffix), *policies]
    for resource in owned:
        assert MONITORING in _ancestors(planned, resource), resource.name

    for type_token in (TOPIC, TOPIC_POLICY, SUBSCRIPTION):
        for resource in planned.of_type(type_token):
            chain = _ancestors(planned, resource)
            assert ALERT_TOPIC in chain and MONITORING not in chain, resource.name


@pytest.fixture(scope="module")
def component_outputs() -> dict[str, dict[str, Any]]:
    """What each component of the staging plan passed to register_outputs, by type."""
    registered: dict[str, dict[str, Any]] = {}

    class OutputsMonitor(RecordingMonitor):
        def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 (gRPC method)
            type_token = request.urn.split("::")[2].split("$")[-1]
            registered[type_token] = dict(
                rpc.deserialize_properties(request.outputs, keep_unknowns=True)
            )
            return super().RegisterResourceOutputs(request)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "RecordingMonitor", OutputsMonitor)
        runner.plan_config(load_stack_config(REPO, "staging"))
    return registered


def test_both_components_register_their_outputs(
    component_outputs: dict[str, dict[str, Any]],
) -> None:
    assert component_outputs[ALERT_TOPIC] == {"topicArn": arn("sns", "churn-staging-alerts")}
    registered = component_outputs[MONITORING]
    assert registered["dashboardName"] == "churn-staging"
    # Staging sets a bias limit, so it has the bias-drift alarm too.
    assert sorted(registered["alarmNames"]) == sorted(
        f"churn-staging-endpoint-{kind}" for kind in (*MONITORING_ALARMS, "bias-drift")
    )


# --- stack outputs and config knobs ----------------------------------------------------------


def test_stack_outputs_name_the_topic_dashboard_and_drift_parts(monitoring: Monitoring) -> None:
    outputs = monitoring.outputs
    assert outputs["alertsTopicArn"] == monitoring.topic_arn
    assert outputs["dashboardName"] == monitoring.prefix
    drift = {"driftPipelineName", "driftAlarmName"}
    if monitoring.planned.stack == "dev":
        assert not drift & set(outputs)
    else:
        assert drift <= set(outputs)


def test_the_drift_schedule_can_be_switched_off(staging_schedule_off: Monitoring) -> None:
    assert staging_schedule_off.drift_schedule.inputs["state"] == "DISABLED"
    # Only the schedule stops; the pipeline stays, to be run by hand.
    assert staging_schedule_off.drift_pipeline.inputs["pipelineName"] == "churn-staging-drift"


def test_without_capture_there_is_no_drift_loop(staging_without_capture: Monitoring) -> None:
    staging = staging_without_capture
    assert staging.named(PIPELINE, "churn-staging-drift", "pipelineName") is None
    assert staging.named(SCHEDULE, "churn-staging-drift") is None
    assert staging.named(ALARM, f"{staging.endpoint_name}-drift") is None
    assert staging.planned.of_type(RULE) == staging.planned.of_type(TARGET) == []
    assert not {"driftPipelineName", "driftAlarmName"} & set(staging.outputs)
    # Still an instance endpoint: its CPU and memory are watched.
    assert staging.alarm("cpu") and staging.alarm("memory")
    kit = "MLOpsKit/churn-staging"
    assert not [line for line in _all_lines(staging) if line.namespace == kit]
