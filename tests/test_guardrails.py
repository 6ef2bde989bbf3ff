"""Guardrails: the kit's plans pass them, bad resources fail them, config sets the outcome."""

from __future__ import annotations

import json
import runpy
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, PlannedStack
from typer.testing import CliRunner

from guardrails import (
    GUARDRAILS,
    Level,
    PolicyConfigError,
    Resource,
    Violation,
    check_plan,
    check_resources,
    has_mandatory,
)
from guardrails.config import PolicyConfig, load_policy_config, parse_policy_config
from guardrails.model import SECRET, UNKNOWN, provider_default_tags
from infra.plan.project import load_stack_config
from infra.plan.runner import plan_config
from mlops.cli import app

KEY = "arn:aws:kms:eu-west-1:123456789012:key/k"
PROD_TAGS = {"project": "p", "environment": "prod", "stack": "prod", "managed-by": "pulumi"}
DEV_TAGS = {**PROD_TAGS, "environment": "dev", "stack": "dev"}

BUCKET = "aws:s3/bucket:Bucket"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
TOPIC = "aws:sns/topic:Topic"
TRAINING_JOB = "aws:sagemaker/trainingJob:TrainingJob"
MODEL = "aws:sagemaker/model:Model"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
SCHEDULE = "aws:scheduler/schedule:Schedule"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
PROVIDER = "pulumi:providers:aws"


def res(
    type_: str,
    name: str,
    props: dict[str, Any],
    *,
    tags: dict[str, str] | None = None,
    deps: tuple[str, ...] = (),
) -> Resource:
    return Resource(
        f"urn:{type_}::{name}", type_, name, props, PROD_TAGS if tags is None else tags, deps
    )


def violations(
    *resources: Resource, config: dict[str, Any] | None = None, policy: str | None = None
) -> list[Violation]:
    found = check_resources(resources, parse_policy_config(config or {}))
    return [v for v in found if policy is None or v.policy == policy]


def messages(*resources: Resource, policy: str, config: dict[str, Any] | None = None) -> list[str]:
    return [v.message for v in violations(*resources, config=config, policy=policy)]


def secure_bucket(name: str, **overrides: Any) -> list[Resource]:
    """A bucket with everything the kit gives one; ``overrides`` replace a part by key."""
    bucket_name = f"b-{name}"
    tls = {
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": "*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ]
    }
    flags = dict.fromkeys(
        ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"), True
    )
    parts = {
        "bucket": res(BUCKET, name, {"bucket": bucket_name}),
        "sse": res(
            SSE,
            name,
            {
                "bucket": bucket_name,
                "rules": [
                    {
                        "applyServerSideEncryptionByDefault": {
                            "sseAlgorithm": "aws:kms",
                            "kmsMasterKeyId": KEY,
                        }
                    }
                ],
            },
        ),
        "pab": res(PAB, name, {"bucket": bucket_name, **flags}),
        "policy": res(BUCKET_POLICY, name, {"bucket": bucket_name, "policy": json.dumps(tls)}),
    }
    parts.update(overrides)
    return [p for p in parts.values() if p is not None]


def instance_config(name: str = "serving", **props: Any) -> dict[str, Any]:
    return {
        "kmsKeyArn": KEY,
        "productionVariants": [
            {
                "variantName": "primary",
                "modelName": "m",
                "instanceType": "ml.m5.large",
                "initialInstanceCount": 1,
            }
        ],
        "dataCaptureConfig": {
            "enableCapture": True,
            "initialSamplingPercentage": 20,
            "kmsKeyId": KEY,
            "destinationS3Uri": "s3://c/capture",
        },
        **props,
    }


# --- the kit's own stacks --------------------------------------------------------------------


# The kit's staging and prod files alert RFC 2606 example addresses: a warning in staging,
# and in prod only because Pulumi.prod.yaml is tagged as the kit's sample (sample-stack: prod).
SAMPLE_WARNINGS = {
    "dev": set(),
    "staging": {"alerts-email-0"},
    "prod": {"alerts-email-0", "alerts-email-1"},
}


def test_every_stack_passes_every_guardrail(stack: PlannedStack) -> None:
    found = check_plan(stack.plan)
    assert not [v for v in found if v.level.blocks], found
    assert {(v.policy, v.level, v.name) for v in found} == {
        ("placeholder-settings-warning", Level.ADVISORY, name)
        for name in SAMPLE_WARNINGS[stack.plan.stack]
    }


def test_devs_serverless_model_is_exempt_by_design(plan_of: Callable[[str], PlannedStack]) -> None:
    dev = plan_of("dev").plan
    # Network isolation is off on dev's serverless model; the exemption is what lets it pass.
    config = parse_policy_config({"network-isolation": {"exemptServerless": False}})
    [finding] = check_plan(dev, config)
    assert finding.policy == "network-isolation"
    assert finding.name == "churn-dev-model"


def test_kit_stacks_are_checked_against_their_environment(
    plan_of: Callable[[str], PlannedStack],
) -> None:
    prod = plan_of("prod").plan
    config = parse_policy_config({"allowed-instance-types": {"allowed": {"prod": ["ml.c5.*"]}}})
    [finding] = [v for v in check_plan(prod, config) if v.level.blocks]
    assert finding.policy == "allowed-instance-types"
    assert "ml.m5.xlarge is not allowed in environment 'prod'" in finding.message


# --- encryption-at-rest ----------------------------------------------------------------------


def test_bucket_without_sse_kms_is_denied() -> None:
    found = messages(*secure_bucket("data", sse=None), policy="encryption-at-rest")
    assert found == [
        "aws:s3/bucket:Bucket 'data': S3 buckets must default to SSE-KMS (no "
        "BucketServerSideEncryptionConfiguration with sseAlgorithm aws:kms targets it)"
    ]
    aes = res(
        SSE,
        "data",
        {
            "bucket": "b-data",
            "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}],
        },
    )
    assert messages(*secure_bucket("data", sse=aes), policy="encryption-at-rest")


def test_bucket_encryption_is_matched_by_dependency_when_the_name_is_unknown() -> None:
    bucket = res(BUCKET, "data", {"bucket": UNKNOWN})
    sse = secure_bucket("data")[1]
    linked = Resource(
        sse.urn, sse.type, sse.name, {**sse.props, "bucket": UNKNOWN}, PROD_TAGS, (bucket.urn,)
    )
    assert messages(bucket, linked, policy="encryption-at-rest") == []
    assert messages(bucket, policy="encryption-at-rest")


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        (
            res(TOPIC, "alerts", {"name": "a"}),
            "'alerts': SNS topics must be encrypted with a KMS key (kmsMasterKeyId is not set)",
        ),
        (
            res(
                TRAINING_JOB,
                "baseline",
                {
                    "enableNetworkIsolation": True,
                    "resourceConfig": {"instanceType": "ml.m5.large"},
                    "outputDataConfig": {"kmsKeyId": KEY},
                },
            ),
            "training volumes must be KMS-encrypted (resourceConfig.volumeKmsKeyId is not set)",
        ),
        (
            res(
                TRAINING_JOB,
                "baseline",
                {"enableNetworkIsolation": True, "resourceConfig": {"volumeKmsKeyId": KEY}},
            ),
            "training output must be KMS-encrypted (outputDataConfig.kmsKeyId is not set)",
        ),
        (
            res(ENDPOINT_CONFIG, "serving", instance_config(kmsKeyArn=None)),
            "'serving': instance storage volumes must be KMS-encrypted (kmsKeyArn is not set)",
        ),
        (
            res(
                ENDPOINT_CONFIG,
                "serving",
                instance_config(
                    dataCaptureConfig={"enableCapture": True, "initialSamplingPercentage": 5}
                ),
            ),
            "captured data must be KMS-encrypted (dataCaptureConfig.kmsKeyId is not set)",
        ),
        (
            res(SCHEDULE, "training", {"scheduleExpression": "rate(1 day)"}),
            "schedule data must be encrypted with a customer KMS key (kmsKeyArn is not set)",
        ),
    ],
)
def test_resource_without_kms_is_denied(resource: Resource, expected: str) -> None:
    found = messages(resource, policy="encryption-at-rest")
    assert any(expected in m for m in found), found
    assert all(m.startswith(f"{resource.type} '{resource.name}'") for m in found)


def test_serverless_endpoint_config_needs_no_volume_key_and_unknown_keys_count_as_set() -> None:
    serverless = res(
        ENDPOINT_CONFIG,
        "serving",
        {
            "productionVariants": [
                {
                    "modelName": "m",
                    "serverlessConfig": {"memorySizeInMb": 2048, "maxConcurrency": 5},
                }
            ]
        },
    )
    topic = res(TOPIC, "alerts", {"kmsMasterKeyId": UNKNOWN})
    assert messages(serverless, topic, policy="encryption-at-rest") == []


# --- no-public-buckets -----------------------------------------------------------------------


def test_bucket_without_public_access_block_is_denied() -> None:
    found = messages(*secure_bucket("data", pab=None), policy="no-public-buckets")
    assert found == [
        "aws:s3/bucket:Bucket 'data': buckets must have a BucketPublicAccessBlock with all of "
        "blockPublicAcls, blockPublicPolicy, ignorePublicAcls, restrictPublicBuckets true"
    ]


def test_public_access_block_with_a_flag_off_is_denied() -> None:
    open_block = res(
        PAB,
        "data",
        {
            "bucket": "b-data",
            "blockPublicAcls": True,
            "blockPublicPolicy": False,
            "ignorePublicAcls": True,
            "restrictPublicBuckets": True,
        },
    )
    assert messages(*secure_bucket("data", pab=open_block), policy="no-public-buckets")


def test_bucket_without_tls_only_policy_is_denied() -> None:
    allow_only = res(
        BUCKET_POLICY,
        "data",
        {
            "bucket": "b-data",
            "policy": {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": "x"},
                        "Action": "s3:GetObject",
                        "Resource": "*",
                    }
                ]
            },
        },
    )
    for variant in (secure_bucket("data", policy=None), secure_bucket("data", policy=allow_only)):
        assert messages(*variant, policy="no-public-buckets") == [
            "aws:s3/bucket:Bucket 'data': buckets must have a BucketPolicy that denies requests "
            "with aws:SecureTransport false (TLS only)"
        ]


def test_one_buckets_controls_do_not_cover_another() -> None:
    data, logs = secure_bucket("data"), secure_bucket("logs", pab=None)
    found = violations(*data, *logs, policy="no-public-buckets")
    assert [v.name for v in found] == ["logs"]


# --- network-isolation -----------------------------------------------------------------------


def _model(isolated: bool | None) -> Resource:
    props: dict[str, Any] = {"name": "m", "executionRoleArn": "arn:role"}
    if isolated is not None:
        props["enableNetworkIsolation"] = isolated
    return res(MODEL, "churn-model", props)


def test_model_without_isolation_served_on_instances_is_denied() -> None:
    found = messages(
        _model(False),
        res(ENDPOINT_CONFIG, "serving", instance_config()),
        policy="network-isolation",
    )
    assert found == [
        "aws:sagemaker/model:Model 'churn-model': models must set enableNetworkIsolation true "
        "(only a model served solely by serverless variants is exempt)"
    ]
    # A model no endpoint serves (e.g. batch transform) is not exempt either.
    assert messages(_model(None), policy="network-isolation")


def test_model_served_only_serverless_is_exempt_unless_configured() -> None:
    serverless = res(
        ENDPOINT_CONFIG,
        "serving",
        {"productionVariants": [{"modelName": "m", "serverlessConfig": {"memorySizeInMb": 2048}}]},
    )
    assert messages(_model(False), serverless, policy="network-isolation") == []
    strict = {"network-isolation": {"exemptServerless": False}}
    assert messages(_model(False), serverless, policy="network-isolation", config=strict)


def test_training_job_without_isolation_is_denied() -> None:
    job = res(TRAINING_JOB, "baseline", {"enableNetworkIsolation": False})
    assert messages(job, policy="network-isolation") == [
        "aws:sagemaker/trainingJob:TrainingJob 'baseline': training jobs must set "
        "enableNetworkIsolation true"
    ]


# --- pipeline jobs: encryption at rest and in transit, isolation -----------------------------

PIPELINE = "aws:sagemaker/pipeline:Pipeline"


def _processing_step(name: str, **arguments: Any) -> dict[str, Any]:
    """A processing step as the SDK writes it, every control on; ``arguments`` override."""
    base: dict[str, Any] = {
        "ProcessingResources": {"ClusterConfig": {"VolumeKmsKeyId": KEY}},
        "ProcessingOutputConfig": {"KmsKeyId": KEY, "Outputs": [{"OutputName": "report"}]},
        "NetworkConfig": {
            "EnableNetworkIsolation": True,
            "EnableInterContainerTrafficEncryption": True,
        },
    }
    return {"Name": name, "Type": "Processing", "Arguments": {**base, **arguments}}


def _pipeline(*steps: dict[str, Any]) -> Resource:
    # The step nests in a condition's branch, as RegisterModel's neighbours do.
    gate = {"Name": "Gate", "Type": "Condition", "Arguments": {"IfSteps": list(steps)}}
    definition = {"Version": "2020-12-01", "Steps": [gate]}
    return res(PIPELINE, "training", {"pipelineDefinition": json.dumps(definition)})


def test_a_pipeline_job_without_the_stack_key_is_denied_wherever_it_nests() -> None:
    bare = _processing_step(
        "Evaluate",
        ProcessingResources={"ClusterConfig": {}},
        ProcessingOutputConfig={"Outputs": [{"OutputName": "evaluation"}]},
    )
    assert messages(_pipeline(bare), policy="encryption-at-rest") == [
        f"{PIPELINE} 'training': step Evaluate: job volumes must be KMS-encrypted "
        "(ProcessingResources.ClusterConfig.VolumeKmsKeyId is not set)",
        f"{PIPELINE} 'training': step Evaluate: job outputs must be KMS-encrypted "
        "(ProcessingOutputConfig.KmsKeyId is not set)",
    ]
    # A job that declares no outputs (it writes through S3) needs only its volume key.
    no_outputs = _processing_step("PublishModelCard")
    del no_outputs["Arguments"]["ProcessingOutputConfig"]
    assert messages(_pipeline(no_outputs), policy="encryption-at-rest") == []
    unknown = res(PIPELINE, "drift", {"pipelineDefinition": UNKNOWN})
    assert messages(unknown, policy="encryption-at-rest") == []


def test_a_job_without_inter_container_encryption_is_denied() -> None:
    step = _processing_step("Evaluate", NetworkConfig={"EnableNetworkIsolation": True})
    assert messages(_pipeline(step), policy="encryption-in-transit") == [
        f"{PIPELINE} 'training': step Evaluate: inter-container traffic must be encrypted "
        "(NetworkConfig.EnableInterContainerTrafficEncryption is not true)"
    ]
    job = res(TRAINING_JOB, "baseline", {"enableNetworkIsolation": True})
    assert messages(job, policy="encryption-in-transit") == [
        f"{TRAINING_JOB} 'baseline': training jobs must set "
        "enableInterContainerTrafficEncryption true"
    ]


def test_only_the_named_steps_may_run_pipeline_jobs_with_network() -> None:
    network = {"EnableNetworkIsolation": False, "EnableInterContainerTrafficEncryption": True}
    evaluate = _processing_step("Evaluate", NetworkConfig=network)
    card = _processing_step("PublishModelCard", NetworkConfig=network)
    assert messages(_pipeline(evaluate, card), policy="network-isolation") == [
        f"{PIPELINE} 'training': step Evaluate: pipeline jobs must set "
        "NetworkConfig.EnableNetworkIsolation true (only the steps in networkAccessSteps may "
        "reach the network)"
    ]
    strict: dict[str, Any] = {"network-isolation": {"networkAccessSteps": []}}
    found = messages(_pipeline(card), policy="network-isolation", config=strict)
    assert [m.split(": ")[1] for m in found] == ["step PublishModelCard"]


def test_the_network_exemptions_are_exactly_the_kits_steps_with_network(
    plan_of: Callable[[str], PlannedStack],
) -> None:
    from guardrails.pipeline_jobs import NETWORK_ACCESS_STEPS, job_steps

    with_network = set()
    for pipeline in plan_of("prod").all(PIPELINE):
        for step in job_steps(json.loads(pipeline.inputs["pipelineDefinition"])):
            arguments = step["Arguments"]
            isolated = arguments.get("NetworkConfig", arguments).get("EnableNetworkIsolation")
            if not isolated:
                with_network.add(step["Name"])
    assert with_network == set(NETWORK_ACCESS_STEPS)


# --- no-wildcard-iam-resources ---------------------------------------------------------------


def _role_policy(*statements: dict[str, Any]) -> Resource:
    document = {"Version": "2012-10-17", "Statement": list(statements)}
    return res(ROLE_POLICY, "training-read", {"role": "r", "policy": json.dumps(document)})


def test_star_resource_on_a_scopable_action_is_denied() -> None:
    policy = _role_policy(
        {"Sid": "ReadAll", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}
    )
    [message] = messages(policy, policy="no-wildcard-iam-resources")
    assert message.startswith(
        "aws:iam/rolePolicy:RolePolicy 'training-read': statement ReadAll allows s3:GetObject "
        'on "Resource": "*"'
    )
    assert "ecr:GetAuthorizationToken" in message


def test_star_resource_is_allowed_for_star_only_actions_and_denies() -> None:
    policy = _role_policy(
        {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": ["*"]},
        {"Effect": "Deny", "Action": "s3:*", "Resource": "*"},
    )
    assert messages(policy, policy="no-wildcard-iam-resources") == []
    mixed = _role_policy(
        {"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken", "s3:*"], "Resource": "*"}
    )
    [message] = messages(mixed, policy="no-wildcard-iam-resources")
    assert "allows s3:* on" in message


# --- data-capture-in-prod --------------------------------------------------------------------


def test_prod_endpoint_without_capture_is_denied() -> None:
    config = res(ENDPOINT_CONFIG, "serving", instance_config(dataCaptureConfig=None))
    assert messages(config, policy="data-capture-in-prod") == [
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration 'serving': endpoints with "
        "instance variants must enable data capture (dataCaptureConfig, sampling > 0) in "
        "environment 'prod'"
    ]
    zero = instance_config()
    zero["dataCaptureConfig"] = {**zero["dataCaptureConfig"], "initialSamplingPercentage": 0}
    assert messages(res(ENDPOINT_CONFIG, "serving", zero), policy="data-capture-in-prod")


def test_capture_is_required_by_environment_from_tags_or_config() -> None:
    dev = res(ENDPOINT_CONFIG, "serving", instance_config(dataCaptureConfig=None), tags=DEV_TAGS)
    assert messages(dev, policy="data-capture-in-prod") == []
    as_prod = {"data-capture-in-prod": {"environment": "prod"}}
    assert messages(dev, policy="data-capture-in-prod", config=as_prod)
    everywhere = {"data-capture-in-prod": {"environments": ["dev", "prod"]}}
    assert messages(dev, policy="data-capture-in-prod", config=everywhere)
    # Without provider tags, the resource's own environment tag decides.
    own = res(
        ENDPOINT_CONFIG,
        "serving",
        instance_config(dataCaptureConfig=None, tags={"environment": "prod"}),
        tags={},
    )
    assert messages(own, policy="data-capture-in-prod")


# --- required-tags ---------------------------------------------------------------------------


def test_resource_missing_tags_is_denied() -> None:
    bucket = res(BUCKET, "data", {"bucket": "b", "tags": {"project": "p"}}, tags={"stack": "s"})
    assert messages(bucket, policy="required-tags") == [
        "aws:s3/bucket:Bucket 'data': missing required tags environment, managed-by (set them "
        "on the resource or in the provider's defaultTags)"
    ]


def test_tags_come_from_the_provider_and_only_taggable_resources_are_checked() -> None:
    assert messages(res(BUCKET, "data", {"bucket": "b"}), policy="required-tags") == []
    untaggable = res(PAB, "data", {"bucket": "b"}, tags={})
    assert messages(untaggable, policy="required-tags") == []
    owner = {"required-tags": {"tags": ["owner"]}}
    assert messages(res(BUCKET, "data", {"bucket": "b"}), policy="required-tags", config=owner)


# --- allowed-instance-types ------------------------------------------------------------------


def test_instance_type_outside_the_environments_list_is_denied() -> None:
    config = res(
        ENDPOINT_CONFIG,
        "serving",
        instance_config(
            productionVariants=[
                {"modelName": "m", "instanceType": "ml.p4d.24xlarge", "initialInstanceCount": 1}
            ]
        ),
    )
    [message] = messages(config, policy="allowed-instance-types")
    assert message.startswith(
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration 'serving': instance type "
        "ml.p4d.24xlarge is not allowed in environment 'prod' (allowed: ml.m5.*"
    )
    job = res(
        TRAINING_JOB,
        "baseline",
        {"resourceConfig": {"instanceType": "ml.m5.4xlarge"}},
        tags=DEV_TAGS,
    )
    assert messages(job, policy="allowed-instance-types")
    widened = {"allowed-instance-types": {"allowed": {"dev": ["ml.m5.*"]}}}
    assert messages(job, policy="allowed-instance-types", config=widened) == []


# --- no-placeholder-settings / placeholder-settings-warning ----------------------------------

PLACEHOLDER_POLICIES = ("no-placeholder-settings", "placeholder-settings-warning")


def subscription(
    address: str, *, protocol: str = "email", tags: dict[str, str] | None = None, index: int = 0
) -> Resource:
    props = {"protocol": protocol, "endpoint": address, "topic": "arn:aws:sns:eu-west-1:1:t"}
    return res(SUBSCRIPTION, f"alerts-email-{index}", props, tags=tags)


def provider(tags: dict[str, str]) -> Resource:
    return Resource("urn:provider", PROVIDER, "aws", {"defaultTags": json.dumps({"tags": tags})})


def placeholder_findings(*resources: Resource, config: dict[str, Any] | None = None) -> list[Any]:
    found = violations(*resources, config=config)
    return sorted(
        ((v.policy, v.level, v.name) for v in found if v.policy in PLACEHOLDER_POLICIES),
        key=str,
    )


def test_prod_alerts_to_an_example_domain_are_denied_with_the_fix() -> None:
    tags = {**PROD_TAGS, "stack": "team-a-prod"}
    assert messages(
        subscription("ml-oncall@example.com", tags=tags), policy=PLACEHOLDER_POLICIES[0]
    ) == [
        "aws:sns/topicSubscription:TopicSubscription 'alerts-email-0': alert e-mail "
        "ml-oncall@example.com is a placeholder (example.com is reserved for examples by RFC "
        "2606; mail to it is never delivered), so alarms in environment 'prod' reach nobody. "
        "Set mlops:monitoring.alarmEmails in Pulumi.team-a-prod.yaml to your on-call addresses "
        "(for a new stack, `mlops stack init --alert-email ADDRESS` writes them)"
    ]
    assert has_mandatory(violations(subscription("ml-oncall@example.com", tags=tags)))


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("ops@example.org", "example.org is reserved for examples by RFC 2606"),
        ("ops@EXAMPLE.NET", "example.net is reserved for examples by RFC 2606"),
        ("ops@mail.example.com", "example.com is reserved for examples by RFC 2606"),
        ("ops@corp.test", ".test is a top-level name RFC 2606 reserves"),
        ("ops@corp.example", ".example is a top-level name RFC 2606 reserves"),
        ("CHANGE-ME@example.com", "it holds the placeholder marker CHANGE-ME"),
        ("change-me@corp.io", "it holds the placeholder marker CHANGE-ME"),
    ],
)
def test_every_kind_of_placeholder_address_is_denied_in_prod(address: str, reason: str) -> None:
    for protocol in ("email", "email-json"):
        [message] = messages(
            subscription(address, protocol=protocol), policy=PLACEHOLDER_POLICIES[0]
        )
        assert f"alert e-mail {address} is a placeholder ({reason}" in message


@pytest.mark.parametrize(
    "address",
    [
        "ops@corp.io",
        "ops@myexample.com",
        "ops@example.com.au",
        "ops@example.community",
        UNKNOWN,
        SECRET,
    ],
)
def test_real_and_unknown_addresses_pass(address: str) -> None:
    assert placeholder_findings(subscription(address)) == []
    assert placeholder_findings(subscription(address, tags=DEV_TAGS)) == []


def test_only_e_mail_subscriptions_are_addresses() -> None:
    webhook = subscription("https://example.com/hook", protocol="https")
    assert placeholder_findings(webhook) == []


def test_outside_prod_a_placeholder_is_a_warning() -> None:
    staging = {**PROD_TAGS, "environment": "staging", "stack": "staging"}
    for tags in (DEV_TAGS, staging):
        found = violations(subscription("ops@example.com", tags=tags))
        assert [(v.policy, v.level) for v in found] == [
            ("placeholder-settings-warning", Level.ADVISORY)
        ]
        assert not has_mandatory(found)
    # Without a known environment neither guardrail can judge.
    assert placeholder_findings(subscription("ops@example.com", tags={})) == []


def test_placeholder_tags_are_one_finding_per_provider() -> None:
    tags = {**PROD_TAGS, "team": "CHANGE-ME", "owner": "ana", "cost-center": "cc-CHANGE-ME"}
    buckets = [res(BUCKET, f"b{i}", {"bucket": f"b{i}"}, tags=tags) for i in range(3)]
    assert placeholder_findings(provider(tags), *buckets) == [
        ("no-placeholder-settings", Level.MANDATORY, "aws")
    ]
    [message] = messages(provider(tags), *buckets, policy="no-placeholder-settings")
    assert message == (
        "pulumi:providers:aws 'aws': tag(s) team=CHANGE-ME, cost-center=cc-CHANGE-ME hold the "
        "placeholder CHANGE-ME (in the provider's defaultTags, so every resource it manages "
        "carries them) in environment 'prod'. Set mlops:tags.team, mlops:tags.cost-center in "
        "Pulumi.prod.yaml to real values (for a new stack, `mlops stack init --tag KEY=VALUE` "
        "writes them)"
    )
    # Without the provider in the list (a resource-only view), the first resource carries it.
    assert placeholder_findings(*buckets) == [("no-placeholder-settings", Level.MANDATORY, "b0")]


def test_a_resources_own_placeholder_tag_is_its_own_finding() -> None:
    own = res(BUCKET, "data", {"bucket": "b", "tags": {"owner": "CHANGE-ME"}})
    [message] = messages(provider(PROD_TAGS), own, policy="no-placeholder-settings")
    assert message.startswith(
        "aws:s3/bucket:Bucket 'data': tag(s) owner=CHANGE-ME hold the placeholder CHANGE-ME "
        "(set on this resource)"
    )
    clean = res(BUCKET, "data", {"bucket": "b", "tags": {"owner": "ana"}})
    assert placeholder_findings(provider(PROD_TAGS), clean) == []


def test_the_sample_tag_softens_only_the_stack_it_names() -> None:
    sample = {**PROD_TAGS, "sample-stack": "prod"}
    found = violations(subscription("ml-oncall@example.com", tags=sample))
    assert [(v.policy, v.level) for v in found] == [
        ("placeholder-settings-warning", Level.ADVISORY)
    ]
    assert found[0].message.endswith(
        ". A warning only: the stack is tagged sample-stack=prod (the kit's sample); replace "
        "the value and remove that tag before a real deployment"
    )
    # A copy under another stack name (or a tag naming another stack) is judged normally.
    copied = {**sample, "stack": "team-a-prod"}
    assert placeholder_findings(subscription("ml-oncall@example.com", tags=copied)) == [
        ("no-placeholder-settings", Level.MANDATORY, "alerts-email-0")
    ]


def test_the_environments_and_levels_are_configurable() -> None:
    staging = {**PROD_TAGS, "environment": "staging", "stack": "staging"}
    strict = {"no-placeholder-settings": {"environments": ["staging", "prod"]}}
    assert ("no-placeholder-settings", Level.MANDATORY, "alerts-email-0") in placeholder_findings(
        subscription("ops@example.com", tags=staging), config=strict
    )
    quiet = {"placeholder-settings-warning": "disabled"}
    assert placeholder_findings(subscription("ops@example.com", tags=DEV_TAGS), config=quiet) == []
    lenient = {"no-placeholder-settings": "advisory"}
    assert not has_mandatory(violations(subscription("ops@example.com"), config=lenient))


def test_a_hand_copy_of_the_kits_sample_prod_file_fails(tmp_path: Path) -> None:
    shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copy(REPO / "Pulumi.prod.yaml", tmp_path / "Pulumi.copy-prod.yaml")
    found = check_plan(plan_config(load_stack_config(tmp_path, "copy-prod")))
    blocking = [v for v in found if v.level.blocks]
    assert sorted((v.policy, v.name) for v in blocking) == [
        ("no-placeholder-settings", "alerts-email-0"),
        ("no-placeholder-settings", "alerts-email-1"),
    ]
    assert all("Pulumi.copy-prod.yaml" in v.message for v in blocking)
    assert "ml-platform-alerts@example.com" in blocking[1].message


# --- enforcement levels and config -----------------------------------------------------------


def test_enforcement_level_decides_the_outcome() -> None:
    bad = res(TOPIC, "alerts", {"name": "a"})
    assert has_mandatory(violations(bad))
    assert violations(bad, config={"encryption-at-rest": "disabled"}) == []
    advisory = violations(bad, config={"encryption-at-rest": {"enforcementLevel": "advisory"}})
    assert [v.level for v in advisory] == [Level.ADVISORY]
    assert not has_mandatory(advisory)
    assert not has_mandatory(violations(bad, config={"all": "advisory"}))
    pinned = {"all": "advisory", "encryption-at-rest": "mandatory"}
    assert has_mandatory(violations(bad, config=pinned))


@pytest.mark.parametrize(
    ("document", "error"),
    [
        ({"no-such-policy": "mandatory"}, "unknown policy 'no-such-policy'"),
        ({"required-tags": "blocking"}, "enforcement level 'blocking' is not one of"),
        ({"required-tags": {"labels": []}}, "required-tags has no parameter 'labels'"),
        ({"required-tags": {"tags": "owner"}}, "required-tags.tags must be a JSON array"),
        (["required-tags"], "expected a mapping"),
    ],
)
def test_bad_policy_config_is_refused(document: Any, error: str) -> None:
    with pytest.raises(PolicyConfigError, match=error):
        parse_policy_config(document)


def test_policy_config_file_in_yaml_or_json(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        "required-tags:\n  enforcementLevel: advisory\n  tags: [owner]\n"
    )
    (tmp_path / "c.json").write_text(
        '{"required-tags": {"enforcementLevel": "advisory", "tags": ["owner"]}}'
    )
    loaded = [load_policy_config(tmp_path / n) for n in ("c.yaml", "c.json")]
    assert loaded[0] == loaded[1]
    assert loaded[0].levels == {"required-tags": Level.ADVISORY}
    assert PolicyConfig().level_of(GUARDRAILS[0]) is Level.MANDATORY


# --- mlops plan --policy ---------------------------------------------------------------------

cli = CliRunner()


def _plan(*args: str) -> tuple[int, str]:
    result = cli.invoke(app, ["plan", "--project-dir", str(REPO), "--stack", "dev", "-q", *args])
    return result.exit_code, result.output


def test_plan_policy_passes_dev() -> None:
    code, output = _plan("--policy")
    assert code == 0, output
    assert "policy: no violations" in output


def test_plan_policy_config_can_make_dev_fail_or_only_warn(tmp_path: Path) -> None:
    strict = tmp_path / "strict.json"
    strict.write_text(json.dumps({"network-isolation": {"exemptServerless": False}}))
    code, output = _plan("--policy-config", str(strict))
    assert code == 1
    assert "network-isolation" in output and "churn-dev-model" in output
    assert "1 mandatory violation" in output

    advisory = tmp_path / "advisory.json"
    advisory.write_text(json.dumps({"all": "advisory", "required-tags": {"tags": ["owner"]}}))
    code, output = _plan("--policy", "--policy-config", str(advisory))
    assert code == 0, output
    assert "advisory violation(s), none mandatory" in output


def test_plan_policy_warns_about_the_kits_sample_prod_and_passes_it() -> None:
    # What `make plan STACK=prod` (and the PR workflow) runs on the repo's own prod file.
    result = cli.invoke(
        app, ["plan", "--project-dir", str(REPO), "--stack", "prod", "-q", "--policy"]
    )
    assert result.exit_code == 0, result.output
    assert "alerts-email-0" in result.output and "alerts-email-1" in result.output
    assert "mandatory" not in result.output.replace("none mandatory", "")
    assert "policy: 2 advisory violation(s), none mandatory" in result.output


def test_plan_policy_config_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"encryption": "mandatory"}')
    code, output = _plan("--policy-config", str(bad))
    assert code == 1
    assert "unknown policy 'encryption'" in output
    assert "Traceback" not in output


# --- the CrossGuard policy pack --------------------------------------------------------------

pulumi_policy = pytest.importorskip("pulumi_policy")


@pytest.fixture(scope="module")
def pack() -> dict[str, Any]:
    # Run as Pulumi would, but under another name, so PolicyPack (a gRPC server) does not start.
    return runpy.run_path(str(REPO / "policy"), run_name="policy_pack_under_test")


def test_pack_has_one_policy_per_guardrail(pack: dict[str, Any]) -> None:
    policies = pack["POLICIES"]
    assert [p.name for p in policies] == [g.name for g in GUARDRAILS]
    for policy, guardrail in zip(policies, GUARDRAILS, strict=True):
        expected = (
            pulumi_policy.StackValidationPolicy
            if guardrail.stack_validators
            else pulumi_policy.ResourceValidationPolicy
        )
        assert isinstance(policy, expected)
        assert policy.enforcement_level.value == guardrail.level.value
        assert (policy.config_schema is None) == (not guardrail.params)


def _policy_resource(resource: Resource, provider_tags: dict[str, str]) -> Any:
    from pulumi_policy.proxy import unknown_checking_proxy

    opts = pulumi_policy.PolicyResourceOptions(
        False, [], None, [], pulumi_policy.PolicyCustomTimeouts(0, 0, 0), []
    )
    provider = pulumi_policy.PolicyProviderResource(
        "pulumi:providers:aws",
        unknown_checking_proxy({"defaultTags": json.dumps({"tags": provider_tags})}),
        "urn:provider",
        "aws",
    )
    return pulumi_policy.PolicyResource(
        resource.type,
        unknown_checking_proxy(dict(resource.props)),
        resource.urn,
        resource.name,
        opts,
        provider,
        None,
        [],
        {},
    )


def _run_pack(
    pack: dict[str, Any], resources: list[Resource], tags: dict[str, str]
) -> list[tuple[str, str]]:
    reported: list[tuple[str, str]] = []
    as_policy = [_policy_resource(r, tags) for r in resources]
    for policy in pack["POLICIES"]:

        def report(message: str, urn: str | None = None, name: str = policy.name) -> None:
            reported.append((name, message))

        if isinstance(policy, pulumi_policy.StackValidationPolicy):
            policy.validate(pulumi_policy.StackValidationArgs(as_policy), report)
            continue
        for r in as_policy:
            args = pulumi_policy.ResourceValidationArgs(
                r.resource_type, r.props, r.urn, r.name, r.opts, r.provider
            )
            policy.validate(args, report)
    return reported


def test_pack_passes_prod_and_denies_what_the_offline_check_denies(
    pack: dict[str, Any], plan_of: Callable[[str], PlannedStack]
) -> None:
    planned = plan_of("prod")
    prod = [r for r in planned.plan.resources if r.custom and not r.type.startswith("pulumi:")]
    tags = provider_default_tags(planned.one(PROVIDER, "aws").inputs)
    resources = [Resource(r.urn, r.type, r.name, r.inputs) for r in prod]
    # Only the sample's example addresses, as warnings, exactly as the offline check says.
    reported = _run_pack(pack, resources, tags)
    assert sorted(name for name, _ in reported) == ["placeholder-settings-warning"] * 2
    offline = check_resources([Resource(r.urn, r.type, r.name, r.props, tags) for r in resources])
    assert sorted((v.policy, v.message) for v in offline) == sorted(reported)

    bad = [
        *secure_bucket("data", pab=None),
        _role_policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}),
    ]
    reported = _run_pack(pack, bad, PROD_TAGS)
    assert sorted(name for name, _ in reported) == [
        "no-public-buckets",
        "no-wildcard-iam-resources",
    ]
    offline = violations(*bad)
    assert sorted((v.policy, v.message) for v in offline) == sorted(reported)


def test_pack_treats_preview_unknowns_as_set(pack: dict[str, Any]) -> None:
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

    topic = res(TOPIC, "alerts", {"kmsMasterKeyId": UNKNOWN_STRING_VALUE})
    assert _run_pack(pack, [topic], PROD_TAGS) == []
    assert _run_pack(pack, [res(TOPIC, "alerts", {})], PROD_TAGS) == [
        (
            "encryption-at-rest",
            "aws:sns/topic:Topic 'alerts': SNS topics must be encrypted with "
            "a KMS key (kmsMasterKeyId is not set)",
        )
    ]


def test_pack_denies_placeholders_as_the_offline_check_does(pack: dict[str, Any]) -> None:
    tags = {**PROD_TAGS, "team": "CHANGE-ME"}
    resources = [
        subscription("ml-oncall@example.com", tags=tags),
        res(BUCKET, "data", {"bucket": "b"}, tags=tags),
    ]
    # (The bare bucket also fails the bucket guardrails; only the placeholders matter here.)
    reported = [r for r in _run_pack(pack, resources, tags) if r[0] in PLACEHOLDER_POLICIES]
    assert sorted(name for name, _ in reported) == ["no-placeholder-settings"] * 2
    offline = [v for v in violations(*resources) if v.policy in PLACEHOLDER_POLICIES]
    assert sorted((v.policy, v.message) for v in offline) == sorted(reported)
    sample = {**tags, "sample-stack": "prod"}
    softened = _run_pack(pack, [subscription("ml-oncall@example.com", tags=sample)], sample)
    assert [name for name, _ in softened] == ["placeholder-settings-warning"] * 2
