"""The serving component under Pulumi mocks: model, endpoint, blue/green updates, alarms, scaling.

Expected values come from each stack's own config (with the settings' defaults), so a changed
stack file changes what is expected, not whether the tests pass.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import Any

import pytest
from conftest import (
    REPO,
    ROLE,
    ROLE_POLICY,
    PlannedStack,
    planned_vpc_config,
)

from infra.components.model_endpoint import _deployment_config
from infra.config.loader import settings_from_config
from infra.config.settings import MonitoringSettings, ServingSettings
from infra.plan.mocks import PLAN_ACCOUNT_ID, RecordedResource
from infra.plan.project import load_stack_config
from infra.plan.runner import plan_config

COMPONENT = "mlopskit:serving:ModelEndpoint"
MODEL = "aws:sagemaker/model:Model"
CONFIGURATION = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
SCALING_TARGET = "aws:appautoscaling/target:Target"
SCALING_POLICY = "aws:appautoscaling/policy:Policy"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
SERVING_TYPES = (MODEL, CONFIGURATION, ENDPOINT, ALARM, SCALING_TARGET, SCALING_POLICY)
INSTANCE_STACKS = ("staging", "prod")
ENDPOINT_OUTPUTS = ("endpointName", "endpointConfigName", "servingModelName", "rollbackAlarmNames")

# A model archive and a registered package another way than by this stack's version.
DATA_URI = (
    f"s3://churn-staging-artifacts-{PLAN_ACCOUNT_ID}-eu-west-1/models/churn-1/output/model.tar.gz"
)
PACKAGE_ARN = f"arn:aws:sagemaker:eu-west-1:{PLAN_ACCOUNT_ID}:model-package/shared-models/7"
SKLEARN_IMAGE = re.compile(
    r"\d{12}\.dkr\.ecr\.eu-west-1\.amazonaws\.com/sagemaker-scikit-learn:1\.9-0-cpu-py3"
)


@dataclass(frozen=True)
class Serving:
    """One plan's serving resources, found by type rather than by logical name."""

    planned: PlannedStack
    settings: ServingSettings
    monitoring: MonitoringSettings

    @property
    def prefix(self) -> str:
        return f"churn-{self.planned.stack}"

    @property
    def component(self) -> RecordedResource:
        (component,) = self.planned.all(COMPONENT)
        return component

    @property
    def models(self) -> list[RecordedResource]:
        """The endpoint's models (the batch pipeline declares its own, under its component)."""
        return [m for m in self.planned.all(MODEL) if "mlopskit:serving:ModelEndpoint$" in m.urn]

    def only(self, type_token: str) -> RecordedResource:
        (found,) = self.planned.all(type_token)
        return found

    @property
    def endpoint_log_group(self) -> RecordedResource:
        """The endpoint's log group (a VPC stack also has its flow logs' group)."""
        (group,) = [
            g
            for g in self.planned.all(LOG_GROUP)
            if g.inputs["name"].startswith("/aws/sagemaker/Endpoints/")
        ]
        return group

    @property
    def endpoint(self) -> RecordedResource:
        return self.only(ENDPOINT)

    @property
    def configuration(self) -> RecordedResource:
        return self.only(CONFIGURATION)

    @property
    def primary_variant(self) -> dict[str, Any]:
        (variant,) = self.configuration.inputs["productionVariants"]
        return dict(variant)

    def model_named(self, generated: str) -> RecordedResource:
        """The Model the mocks auto-named ``generated`` (``<logical name>-<7 hex digits>``)."""
        (model,) = [
            m for m in self.models if re.fullmatch(re.escape(m.name) + r"-[0-9a-f]{7}", generated)
        ]
        return model

    @property
    def model(self) -> RecordedResource:
        return self.model_named(self.primary_variant["modelName"])

    @property
    def alarms(self) -> list[RecordedResource]:
        """The endpoint's own alarms (monitoring adds others, elsewhere)."""
        return [a for a in self.planned.all(ALARM) if "EndpointAlarms" in a.parent]

    def role_policies(self) -> dict[str, dict[str, Any]]:
        return {
            p.inputs["name"]: self.planned.document(p)
            for p in self.planned.all(ROLE_POLICY)
            if p.inputs["role"] == f"{self.prefix}-serving"
        }


def _serving(planned: PlannedStack, raw: dict[str, str]) -> Serving:
    return Serving(
        planned,
        ServingSettings.model_validate(json.loads(raw["mlops:serving"])),
        MonitoringSettings.model_validate(json.loads(raw["mlops:monitoring"])),
    )


@pytest.fixture
def serving(stack: PlannedStack, raw_config: Any) -> Serving:
    return _serving(stack, raw_config(stack.stack))


def _plan_with_serving(stack: str, change: dict[str, Any], *drop: str) -> Serving:
    """Plan ``stack`` with its ``mlops:serving`` section changed."""
    config = load_stack_config(REPO, stack)
    section = {**json.loads(config.values["mlops:serving"]), **change}
    for key in drop:
        section.pop(key)
    values = {**config.values, "mlops:serving": json.dumps(section)}
    return _serving(PlannedStack(plan_config(replace(config, values=values))), values)


@pytest.fixture(scope="module")
def raw_model_with_shadow() -> Serving:
    """Staging serving a raw archive, shadowed by a package named by its ARN."""
    return _plan_with_serving(
        "staging",
        {
            "model": {"dataUri": DATA_URI},
            "shadow": {"packageArn": PACKAGE_ARN},
            "shadowPercent": 25,
        },
    )


@pytest.fixture(scope="module")
def without_model() -> Serving:
    return _plan_with_serving("staging", {}, "model")


def _statements(policies: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for document in policies.values() for s in document["Statement"]]


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


# --- the endpoint's shape per stack --------------------------------------------------------


def test_dev_serves_serverless_without_capture_or_isolation(plan_of: Any, raw_config: Any) -> None:
    dev = _serving(plan_of("dev"), raw_config("dev"))
    variant = dev.primary_variant
    assert variant["serverlessConfig"] == {
        "memorySizeInMb": dev.settings.serverless_memory_mb,
        "maxConcurrency": dev.settings.serverless_max_concurrency,
    }
    assert not {"instanceType", "initialInstanceCount"} & set(variant)
    # Serverless variants have no volume to encrypt and cannot capture traffic.
    assert "kmsKeyArn" not in dev.configuration.inputs
    assert "dataCaptureConfig" not in dev.configuration.inputs
    assert dev.model.inputs["enableNetworkIsolation"] is False


@pytest.mark.parametrize("stack_name", INSTANCE_STACKS)
def test_staging_and_prod_serve_isolated_models_on_encrypted_instances(
    plan_of: Any, raw_config: Any, stack_name: str
) -> None:
    serving = _serving(plan_of(stack_name), raw_config(stack_name))
    variant = serving.primary_variant
    assert variant["instanceType"] == serving.settings.instance_type
    assert variant["initialInstanceCount"] == serving.settings.instance_count
    assert "serverlessConfig" not in variant
    if stack_name == "prod":
        assert variant["initialInstanceCount"] >= 2
    assert serving.configuration.inputs["kmsKeyArn"] == serving.planned.outputs["kmsKeyArn"]
    assert serving.model.inputs["enableNetworkIsolation"] is True


@pytest.mark.parametrize("stack_name", INSTANCE_STACKS)
def test_staging_and_prod_capture_traffic_encrypted_into_the_capture_bucket(
    plan_of: Any, raw_config: Any, stack_name: str
) -> None:
    serving = _serving(plan_of(stack_name), raw_config(stack_name))
    capture = serving.configuration.inputs["dataCaptureConfig"]
    outputs = serving.planned.outputs
    assert capture["enableCapture"] is True
    assert capture["initialSamplingPercentage"] == serving.settings.data_capture_percent
    assert capture["destinationS3Uri"] == f"s3://{outputs['captureBucket']}/datacapture"
    assert capture["kmsKeyId"] == outputs["kmsKeyArn"]
    assert sorted(o["captureMode"] for o in capture["captureOptions"]) == ["Input", "Output"]
    assert capture["captureContentTypeHeader"] == {
        "csvContentTypes": ["text/csv"],
        "jsonContentTypes": ["application/json"],
    }


# --- blue/green updates and the alarms that roll them back ----------------------------------

ROUTING: dict[str, dict[str, Any]] = {
    "dev": {"type": "ALL_AT_ONCE"},
    "staging": {"type": "ALL_AT_ONCE"},
    # Whole instances: prod's canary is 1 of its 2 instances, so half the traffic.
    "prod": {"type": "CANARY", "canarySize": {"type": "INSTANCE_COUNT", "value": 1}},
}


def test_updates_are_blue_green_with_the_stacks_traffic_shift_and_timings(
    serving: Serving,
) -> None:
    deployment = serving.settings.deployment
    policy = serving.endpoint.inputs["deploymentConfig"]["blueGreenUpdatePolicy"]
    assert policy["trafficRoutingConfiguration"] == {
        **ROUTING[serving.planned.stack],
        "waitIntervalInSeconds": deployment.wait_minutes * 60,
    }
    assert policy["terminationWaitInSeconds"] == deployment.termination_wait_minutes * 60
    assert policy["maximumExecutionTimeoutInSeconds"] == deployment.max_minutes * 60


@pytest.mark.parametrize(
    ("count", "strategy", "step", "steps"),
    [(4, "linear", 1, 4), (6, "linear", 3, 2), (5, "canary", 2, 2)],
)
def test_traffic_moves_in_the_instances_the_config_names(
    raw_config: Any, count: int, strategy: str, step: int, steps: int
) -> None:
    values = raw_config("prod")
    section = json.loads(values["mlops:serving"])
    section |= {"instanceCount": count, "maxInstances": 8}
    section["deployment"] = {"strategy": strategy, "stepInstances": step, "waitMinutes": 5}
    settings = settings_from_config(
        {**values, "mlops:serving": json.dumps(section)}, project="mlops-kit", stack="prod"
    )
    assert settings.serving.traffic_steps == steps

    routing = _deployment_config(
        settings, []
    ).blue_green_update_policy.traffic_routing_configuration
    size = routing.linear_step_size if strategy == "linear" else routing.canary_size
    other = routing.canary_size if strategy == "linear" else routing.linear_step_size
    assert (routing.type, size.type, size.value, other) == (
        strategy.upper(),
        "INSTANCE_COUNT",
        step,
        None,
    )


def test_the_endpoint_logs_where_retention_and_the_stack_key_apply(serving: Serving) -> None:
    group = serving.endpoint_log_group
    # SageMaker's fixed name for an endpoint's logs; the stack creates it before SageMaker does.
    assert group.inputs["name"] == f"/aws/sagemaker/Endpoints/{serving.endpoint.inputs['name']}"
    assert group.inputs["retentionInDays"] == serving.monitoring.log_retention_days
    assert group.inputs["kmsKeyId"] == serving.planned.outputs["kmsKeyArn"]
    assert group.urn in serving.endpoint.depends_on
    assert group.retain_on_delete is (serving.planned.stack == "prod")
    # The stack key lets CloudWatch Logs use it for exactly such groups.
    (key,) = serving.planned.all("aws:kms/key:Key")
    statements = serving.planned.document(key)["Statement"]
    (logs,) = [s for s in statements if s["Sid"] == "AllowCloudWatchLogsForStackLogGroups"]
    patterns = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    group_arn = f"arn:aws:logs:eu-west-1:{PLAN_ACCOUNT_ID}:log-group:{group.inputs['name']}"
    assert any(fnmatchcase(group_arn, pattern) for pattern in patterns)


def test_updates_roll_back_on_exactly_the_endpoints_alarms(serving: Serving) -> None:
    rollback = serving.endpoint.inputs["deploymentConfig"]["autoRollbackConfiguration"]
    watched = [a["alarmName"] for a in rollback["alarms"]]
    declared = [a.inputs["name"] for a in serving.alarms]
    assert sorted(watched) == sorted(declared)
    endpoint = serving.endpoint.inputs["name"]
    assert sorted(declared) == sorted(
        f"{endpoint}-{kind}" for kind in ("5xx-rate", "4xx-rate", "latency-p99")
    )
    assert serving.planned.outputs["rollbackAlarmNames"] == watched


def _alarm(serving: Serving, kind: str) -> dict[str, Any]:
    (alarm,) = [a for a in serving.alarms if a.inputs["name"].endswith(f"-{kind}")]
    return alarm.inputs


def _dimensions(alarm: dict[str, Any]) -> list[dict[str, str]]:
    if "metricQueries" in alarm:
        return [q["metric"]["dimensions"] for q in alarm["metricQueries"] if "metric" in q]
    return [alarm["dimensions"]]


def test_alarms_watch_the_endpoint_and_variant_actually_deployed(serving: Serving) -> None:
    deployed = {
        "EndpointName": serving.endpoint.inputs["name"],
        "VariantName": serving.primary_variant["variantName"],
    }
    for alarm in serving.alarms:
        dimensions = _dimensions(alarm.inputs)
        assert dimensions, alarm.name
        assert all(d == deployed for d in dimensions), alarm.name


def test_latency_alarm_is_p99_model_latency_in_microseconds(serving: Serving) -> None:
    latency = _alarm(serving, "latency-p99")
    assert latency["namespace"] == "AWS/SageMaker"
    assert latency["metricName"] == "ModelLatency"
    assert latency["extendedStatistic"] == "p99"
    assert "statistic" not in latency
    assert latency["threshold"] == serving.monitoring.latency_p99_ms * 1000


@pytest.mark.parametrize(
    ("kind", "errors", "threshold"),
    [
        ("5xx-rate", "Invocation5XXErrors", "error_rate_percent"),
        ("4xx-rate", "Invocation4XXErrors", "client_error_rate_percent"),
    ],
)
def test_error_alarms_are_a_percentage_of_invocations(
    serving: Serving, kind: str, errors: str, threshold: str
) -> None:
    alarm = _alarm(serving, kind)
    assert alarm["threshold"] == getattr(serving.monitoring, threshold)
    assert "metricName" not in alarm
    queries = {q["id"]: q for q in alarm["metricQueries"]}
    (expression,) = [q for q in queries.values() if "expression" in q]
    # Only the ratio is alarmed on; the raw sums feed it.
    assert [q["id"] for q in queries.values() if q.get("returnData")] == [expression["id"]]
    metrics = {q["metric"]["metricName"]: q["id"] for q in queries.values() if "metric" in q}
    assert set(metrics) == {errors, "Invocations"}
    assert f"{metrics[errors]} / {metrics['Invocations']}" in expression["expression"]


def test_every_alarm_is_described_and_idle_is_not_breaching(serving: Serving) -> None:
    assert len(serving.alarms) == 3
    for alarm in serving.alarms:
        assert alarm.inputs["treatMissingData"] == "notBreaching", alarm.name
        assert alarm.inputs["alarmDescription"].strip(), alarm.name


# --- autoscaling ---------------------------------------------------------------------------


def test_dev_has_no_autoscaling(plan_of: Any) -> None:
    dev = plan_of("dev")
    assert dev.of_type(SCALING_TARGET) == dev.of_type(SCALING_POLICY) == []


def test_autoscaling_can_be_switched_off_to_change_the_instance_type() -> None:
    # AWS refuses an instance-type change on an autoscaled variant; this is the way through.
    prod = _plan_with_serving("prod", {"autoscaling": False, "instanceType": "ml.c5.xlarge"})
    assert prod.planned.of_type(SCALING_TARGET) == prod.planned.of_type(SCALING_POLICY) == []
    assert prod.primary_variant["instanceType"] == "ml.c5.xlarge"


@pytest.mark.parametrize("stack_name", INSTANCE_STACKS)
def test_instances_scale_on_invocations_per_instance_of_the_primary_variant(
    plan_of: Any, raw_config: Any, stack_name: str
) -> None:
    serving = _serving(plan_of(stack_name), raw_config(stack_name))
    settings = serving.settings
    resource_id = (
        f"endpoint/{serving.endpoint.inputs['name']}/variant/"
        f"{serving.primary_variant['variantName']}"
    )
    target = serving.only(SCALING_TARGET).inputs
    assert (
        target["resourceId"] == resource_id == f"endpoint/{serving.prefix}-endpoint/variant/primary"
    )
    assert target["scalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert target["serviceNamespace"] == "sagemaker"
    assert (target["minCapacity"], target["maxCapacity"]) == (
        settings.min_instances,
        settings.max_instances,
    )
    # Application Auto Scaling uses SageMaker's service-linked role.
    assert "roleArn" not in target

    policy = serving.only(SCALING_POLICY).inputs
    assert policy["policyType"] == "TargetTrackingScaling"
    assert policy["resourceId"] == resource_id
    assert policy["scalableDimension"] == target["scalableDimension"]
    assert policy["serviceNamespace"] == "sagemaker"
    tracking = policy["targetTrackingScalingPolicyConfiguration"]
    assert tracking["predefinedMetricSpecification"] == {
        "predefinedMetricType": "SageMakerVariantInvocationsPerInstance"
    }
    assert tracking["targetValue"] == settings.target_invocations_per_instance
    assert tracking["scaleInCooldown"] == settings.scale_in_cooldown_seconds
    assert tracking["scaleOutCooldown"] == settings.scale_out_cooldown_seconds


# --- replacement semantics -----------------------------------------------------------------


def test_model_and_configuration_are_auto_named_and_the_endpoint_keeps_its_name(
    serving: Serving,
) -> None:
    model, configuration, endpoint = serving.model, serving.configuration, serving.endpoint
    # Auto-named: a changed model or configuration is created before the old one goes.
    assert "name" not in model.inputs
    assert "name" not in configuration.inputs
    assert configuration.inputs["namePrefix"] == f"{serving.prefix}-"
    for resource in (model, configuration, endpoint):
        assert resource.delete_before_replace is False, resource.type
    assert endpoint.inputs["name"] == f"{serving.prefix}-endpoint"
    assert serving.planned.outputs["endpointName"] == endpoint.inputs["name"]

    # The endpoint points at the configuration's generated name (prefix + 26 digits).
    config_name = endpoint.inputs["endpointConfigName"]
    assert re.fullmatch(re.escape(f"{serving.prefix}-") + r"\d{26}", config_name)
    assert serving.planned.outputs["endpointConfigName"] == config_name
    assert serving.planned.outputs["servingModelName"] == serving.primary_variant["modelName"]


# --- which model is served ------------------------------------------------------------------


def test_a_package_version_names_the_stacks_own_registry(serving: Serving) -> None:
    container = serving.model.inputs["primaryContainer"]
    assert serving.settings.model is not None
    version = serving.settings.model.package_version
    assert container == {
        "modelPackageName": (
            f"arn:aws:sagemaker:eu-west-1:{PLAN_ACCOUNT_ID}:model-package/"
            f"{serving.prefix}-models/{version}"
        )
    }
    assert serving.model.inputs["executionRoleArn"] == (
        f"arn:aws:iam::{PLAN_ACCOUNT_ID}:role/{serving.prefix}-serving"
    )


def test_a_data_uri_is_served_by_the_regions_scikit_learn_image(
    raw_model_with_shadow: Serving,
) -> None:
    container = raw_model_with_shadow.model.inputs["primaryContainer"]
    assert SKLEARN_IMAGE.fullmatch(container["image"]), container["image"]
    assert container["modelDataUrl"] == DATA_URI
    assert container["environment"] == {
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        # The image pip-installs code/ at start; offline, with its own setuptools.
        "PIP_NO_INDEX": "1",
        "PIP_NO_BUILD_ISOLATION": "false",
    }
    assert "modelPackageName" not in container


def test_a_package_arn_is_passed_as_is(raw_model_with_shadow: Serving) -> None:
    shadow = raw_model_with_shadow
    (variant,) = shadow.configuration.inputs["shadowProductionVariants"]
    container = shadow.model_named(variant["modelName"]).inputs["primaryContainer"]
    # The package carries its own image, archive and environment.
    assert container == {"modelPackageName": PACKAGE_ARN}


# --- the serving role ----------------------------------------------------------------------


def test_the_serving_role_reads_models_and_writes_capture_only(serving: Serving) -> None:
    (role,) = [
        r for r in serving.planned.all(ROLE) if r.inputs["name"] == f"{serving.prefix}-serving"
    ]
    (trust,) = serving.planned.document(role, "assumeRolePolicy")["Statement"]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert trust["Action"] == "sts:AssumeRole"

    policies = serving.role_policies()
    s3 = {s["Sid"]: s for s in policies["s3"]["Statement"]}
    outputs = serving.planned.outputs
    assert s3["ReadInputs"]["Resource"] == [f"arn:aws:s3:::{outputs['artifactsBucket']}/models/*"]
    assert s3["WriteJobOutputs"]["Resource"] == [
        f"arn:aws:s3:::{outputs['captureBucket']}/datacapture/*"
    ]

    statements = _statements(policies)
    kms = [s for s in statements if any(a.startswith("kms:") for a in _listed(s["Action"]))]
    assert kms
    assert all(_listed(s["Resource"]) == [outputs["kmsKeyArn"]] for s in kms)
    star = [s for s in statements if "*" in _listed(s["Resource"])]
    # In a VPC, SageMaker also reads the network it places the model's interfaces in.
    describe = (
        [
            [
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeVpcs",
                "ec2:DescribeDhcpOptions",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
            ]
        ]
        if planned_vpc_config(serving.planned.plan)
        else []
    )
    assert [s["Action"] for s in star] == ["ecr:GetAuthorizationToken", *describe]


# --- shadow variant ------------------------------------------------------------------------


def test_no_shadow_variant_unless_configured(serving: Serving) -> None:
    assert "shadowProductionVariants" not in serving.configuration.inputs
    assert len(serving.models) == 1


def test_a_configured_shadow_gets_its_own_model_and_a_share_of_traffic(
    raw_model_with_shadow: Serving,
) -> None:
    serving = raw_model_with_shadow
    models = serving.models
    assert len(models) == 2
    (variant,) = serving.configuration.inputs["shadowProductionVariants"]
    assert variant["variantName"] == "shadow"
    assert variant["initialVariantWeight"] == 0.25
    assert variant["instanceType"] == serving.primary_variant["instanceType"]
    shadow_model = serving.model_named(variant["modelName"])
    assert shadow_model is not serving.model
    assert shadow_model.inputs["executionRoleArn"] == serving.model.inputs["executionRoleArn"]
    assert shadow_model.delete_before_replace is False


# --- with and without a model --------------------------------------------------------------


def test_without_a_model_no_endpoint_is_declared(without_model: Serving) -> None:
    planned = without_model.planned
    assert planned.of_type(COMPONENT) == []
    for type_token in SERVING_TYPES:
        assert planned.of_type(type_token) == [], type_token
    assert not any(r.inputs.get("name") == "churn-staging-serving" for r in planned.of_type(ROLE))
    assert not set(ENDPOINT_OUTPUTS) & set(planned.outputs)


def test_with_a_model_the_stack_exports_the_endpoint(serving: Serving) -> None:
    assert set(ENDPOINT_OUTPUTS) <= set(serving.planned.outputs)


# --- component structure -------------------------------------------------------------------


def _ancestors(planned: PlannedStack, resource: RecordedResource) -> list[RecordedResource]:
    chain: list[RecordedResource] = []
    urns = {r.urn for r in planned.resources}
    parent = resource.parent
    while parent in urns:
        found = planned.by_urn(parent)
        chain.append(found)
        parent = found.parent
    return chain


def test_everything_serving_declares_lives_under_the_component(serving: Serving) -> None:
    planned, component = serving.planned, serving.component
    role = [r for r in planned.all(ROLE) if r.inputs["name"] == f"{serving.prefix}-serving"]
    policies = [
        p for p in planned.all(ROLE_POLICY) if p.inputs["role"] == f"{serving.prefix}-serving"
    ]
    owned = (
        [
            r
            for t in SERVING_TYPES
            for r in planned.of_type(t)
            # Monitoring's own alarms (instance, drift) belong to its component, the batch
            # pipeline's model to its own.
            if not (t == ALARM and "EndpointMonitoring" in r.parent)
            and "mlopskit:batch:BatchPipeline$" not in r.urn
        ]
        + role
        + policies
    )
    assert len(owned) >= 3 + 3 + 1 + 4
    for resource in owned:
        assert component in _ancestors(planned, resource), resource.name
    # The role and the alarms are sub-components hanging directly off the component.
    sub_components = {c.type for c in planned.children_of(component.urn) if not c.custom}
    assert sub_components == {"mlopskit:iam:ServiceRole", "mlopskit:serving:EndpointAlarms"}
