"""Stack config is validated before any resource exists, with one clear message per problem."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO
from hostile_stack_files import HOSTILE, LONG_STACK, LONG_STACK_SAYS, HostileFile, expected
from typer.testing import CliRunner

from infra.config.loader import ConfigError, settings_from_config
from infra.config.settings import EndpointKind, Environment
from infra.plan.project import ProjectError, load_stack_config
from mlops.cli import app

Raw = dict[str, str]


def _set(key: str, value: object) -> Callable[[Raw], None]:
    """Set a top-level key (``mlops:environment``) or a nested one (``mlops:serving.kind``)."""

    def mutate(raw: Raw) -> None:
        top, _, path = key.partition(".")
        if not path:
            raw[top] = value if isinstance(value, str) else json.dumps(value)
            return
        section = json.loads(raw.get(top, "{}"))
        target = section
        *parents, leaf = path.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
        raw[top] = json.dumps(section)

    return mutate


def _drop(key: str) -> Callable[[Raw], None]:
    return lambda raw: raw.pop(key)


def _both(*mutations: Callable[[Raw], None]) -> Callable[[Raw], None]:
    def mutate(raw: Raw) -> None:
        for mutation in mutations:
            mutation(raw)

    return mutate


@dataclass(frozen=True)
class BadConfig:
    id: str
    stack: str
    mutate: Callable[[Raw], None]
    key: str
    says: str


BAD_CONFIGS = [
    BadConfig("missing-region", "dev", _drop("aws:region"), "aws:region", "pulumi config set aws:region"),
    BadConfig("unknown-region", "dev", _set("aws:region", "eu-west-9"), "aws:region", "not a region where SageMaker is available"),
    BadConfig("region-typo-suggests", "dev", _set("aws:region", "eu-wset-1"), "aws:region", "Did you mean 'eu-west-1'"),
    BadConfig("unknown-environment", "dev", _set("mlops:environment", "production"), "mlops:environment", "'dev', 'staging' or 'prod'"),
    BadConfig("missing-environment", "dev", _drop("mlops:environment"), "mlops:environment", "is required"),
    BadConfig("service-name-chars", "dev", _set("mlops:serviceName", "Churn_Model"), "mlops:serviceName", "lowercase letters, digits and hyphens"),
    BadConfig("service-name-too-long-for-buckets", "dev", _both(_set("mlops:serviceName", "customer-churn-score"), _set("aws:region", "ap-southeast-2")), "mlops:serviceName", "S3 allows 63"),
    BadConfig("training-instance-unknown", "dev", _set("mlops:training.instanceType", "ml.m5.huge"), "mlops:training.instanceType", "not a SageMaker training job instance type"),
    BadConfig("endpoint-instance-training-only", "staging", _set("mlops:serving.instanceType", "ml.c5n.xlarge"), "mlops:serving.instanceType", "ProductionVariantInstanceType"),
    BadConfig("processing-instance-endpoint-only", "dev", _set("mlops:training.processingInstanceType", "ml.c4.large"), "mlops:training.processingInstanceType", "ProcessingInstanceType"),
    BadConfig("capture-percent-over-100", "dev", _set("mlops:serving.dataCapturePercent", 150), "mlops:serving.dataCapturePercent", "less than or equal to 100"),
    BadConfig("capture-percent-not-a-number", "dev", _set("mlops:serving.dataCapturePercent", "all"), "mlops:serving.dataCapturePercent", "valid integer"),
    BadConfig("metric-threshold-over-1", "dev", _set("mlops:training.metricThreshold", 1.5), "mlops:training.metricThreshold", "less than or equal to 1"),
    BadConfig("unknown-metric", "dev", _set("mlops:training.metricName", "auc"), "mlops:training.metricName", "allowed: roc_auc, accuracy, precision, recall, f1"),
    BadConfig("log-retention-not-allowed", "dev", _set("mlops:monitoring.logRetentionDays", 10), "mlops:monitoring.logRetentionDays", "allowed: 1, 3, 5, 7, 14"),
    BadConfig("latency-threshold-negative", "dev", _set("mlops:monitoring.latencyP99Ms", -5), "mlops:monitoring.latencyP99Ms", "greater than 0"),
    BadConfig("bad-alarm-email", "staging", _set("mlops:monitoring.alarmEmails", ["oncall-at-example"]), "mlops:monitoring.alarmEmails[0]", "email"),
    BadConfig("tag-aws-prefix", "dev", _set("mlops:tags", {"aws:owner": "me"}), "mlops:tags", "'aws:' prefix"),
    BadConfig("tag-reserved-key", "dev", _set("mlops:tags", {"environment": "qa"}), "mlops:tags", "set by the kit itself"),
    BadConfig("tag-value-bad-chars", "dev", _set("mlops:tags", {"team": "ml{platform}"}), "mlops:tags", "values must be at most 256 characters"),
    BadConfig("bool-not-a-bool", "dev", _set("mlops:storage.forceDestroy", "maybe"), "mlops:storage.forceDestroy", "valid boolean"),
    BadConfig("misspelled-setting", "dev", _set("mlops:storage.forceDestory", True), "mlops:storage.forceDestory", "unknown setting"),
    BadConfig("misspelled-section", "dev", _set("mlops:sevring", {"kind": "instance"}), "mlops:sevring", "unknown key"),
    BadConfig("section-not-a-mapping", "dev", _set("mlops:storage", "yes"), "mlops:storage", "must be a mapping"),
    BadConfig("serverless-memory-not-a-step", "dev", _set("mlops:serving.serverlessMemoryMb", 1500), "mlops:serving.serverlessMemoryMb", "allowed: [1024, 2048"),
    BadConfig("serverless-concurrency-over-limit", "dev", _set("mlops:serving.serverlessMaxConcurrency", 500), "mlops:serving.serverlessMaxConcurrency", "range 1-200"),
    BadConfig("cron-five-fields", "staging", _set("mlops:training.schedule", "cron(0 3 * * *)"), "mlops:training.schedule", "takes 6 fields"),
    BadConfig("rate-plural-mismatch", "staging", _set("mlops:training.schedule", "rate(1 days)"), "mlops:training.schedule", "singular unit"),
    BadConfig("schedule-switch-not-a-bool", "dev", _set("mlops:training.scheduleEnabled", "sometimes"), "mlops:training.scheduleEnabled", "valid boolean"),
    BadConfig("schedule-empty", "dev", _set("mlops:training.schedule", ""), "mlops:training.schedule", "rate("),
    BadConfig("volume-size-zero", "dev", _set("mlops:training.volumeSizeGb", 0), "mlops:training.volumeSizeGb", "greater than or equal to 1"),
    BadConfig("baseline-job-not-a-bool", "dev", _set("mlops:training.baselineJob", "once"), "mlops:training.baselineJob", "valid boolean"),
    BadConfig("kms-window-too-short", "dev", _set("mlops:storage.kmsDeletionWindowDays", 3), "mlops:storage.kmsDeletionWindowDays", "greater than or equal to 7"),
    BadConfig("capacity-out-of-order", "staging", _set("mlops:serving.instanceCount", 5), "mlops:serving.instanceCount", "must lie between"),
    BadConfig("prod-force-destroy", "prod", _set("mlops:storage.forceDestroy", True), "mlops:storage.forceDestroy", "must be false in prod"),
    BadConfig("prod-unprotected", "prod", _set("mlops:storage.protectData", False), "mlops:storage.protectData", "must be true in prod"),
    BadConfig("prod-serverless", "prod", _set("mlops:serving.kind", "serverless"), "mlops:serving.kind", "must be 'instance' in prod"),
    BadConfig("model-named-two-ways", "dev", _set("mlops:serving.model.dataUri", "s3://churn-dev-artifacts/models/m.tar.gz"), "mlops:serving.model", "exactly one way: packageVersion, packageArn or dataUri (got packageVersion, dataUri)"),
    BadConfig("model-version-zero", "dev", _set("mlops:serving.model.packageVersion", 0), "mlops:serving.model.packageVersion", "greater than or equal to 1"),
    BadConfig("model-arn-of-a-group", "staging", _set("mlops:serving.model", {"packageArn": "arn:aws:sagemaker:eu-west-1:123456789012:model-package-group/churn"}), "mlops:serving.model.packageArn", "not a versioned model package ARN"),
    BadConfig("model-uri-not-an-archive", "dev", _set("mlops:serving.model", {"dataUri": "s3://churn-dev-artifacts/models/model.joblib"}), "mlops:serving.model.dataUri", "not an S3 URI of a model archive"),
    BadConfig("model-uri-outside-the-stack", "staging", _set("mlops:serving.model", {"dataUri": "s3://someone-elses-bucket/models/model.tar.gz"}), "mlops:serving.model.dataUri", "must be under s3://churn-staging-artifacts-<account>-eu-west-1/models/"),
    BadConfig("shadow-uri-outside-models", "staging", _set("mlops:serving.shadow", {"dataUri": "s3://churn-staging-artifacts-123456789012-eu-west-1/code/model.tar.gz"}), "mlops:serving.shadow.dataUri", "the serving role reads model archives only there"),
    BadConfig("model-unknown-way", "dev", _set("mlops:serving.model", {"version": 3}), "mlops:serving.model.version", "unknown setting"),
    BadConfig("serverless-isolated", "dev", _set("mlops:serving.networkIsolation", True), "mlops:serving.networkIsolation", "does not run serverless models network-isolated"),
    BadConfig("serverless-capture", "dev", _set("mlops:serving.dataCapturePercent", 20), "mlops:serving.dataCapturePercent", "serverless endpoints cannot capture data"),
    BadConfig("serverless-canary", "dev", _set("mlops:serving.deployment.strategy", "canary"), "mlops:serving.deployment.strategy", "must be all_at_once for a serverless endpoint"),
    BadConfig("serverless-shadow", "dev", _set("mlops:serving.shadow", {"packageVersion": 2}), "mlops:serving.shadow", "serverless endpoints have no shadow variants"),
    BadConfig("unknown-strategy", "prod", _set("mlops:serving.deployment.strategy", "bluegreen"), "mlops:serving.deployment.strategy", "'canary', 'linear' or 'all_at_once'"),
    BadConfig("canary-on-one-instance", "staging", _set("mlops:serving.deployment.strategy", "canary"), "mlops:serving.deployment.strategy", "a canary needs serving.instanceCount >= 2"),
    BadConfig("step-percent-replaced", "prod", _set("mlops:serving.deployment.stepPercent", 25), "mlops:serving.deployment.stepPercent", "was replaced by stepInstances: SageMaker moves traffic in whole instances"),
    BadConfig("canary-over-half", "prod", _set("mlops:serving.deployment.stepInstances", 2), "mlops:serving.deployment.stepInstances", "a canary of 2 of 2 instances is more than half the fleet, SageMaker's limit; at most 1"),
    BadConfig("linear-step-too-small", "prod", _both(_set("mlops:serving.instanceCount", 20), _set("mlops:serving.maxInstances", 20), _set("mlops:serving.deployment", {"strategy": "linear", "stepInstances": 1})), "mlops:serving.deployment.stepInstances", "a linear step of 1 of 20 instances is 5% of the fleet; SageMaker's LinearStepSize must be 10-50% of it: 2-10 instances"),
    BadConfig("linear-step-too-large", "prod", _set("mlops:serving.deployment", {"strategy": "linear", "stepInstances": 2}), "mlops:serving.deployment.stepInstances", "a linear step of 2 of 2 instances is 100% of the fleet"),
    BadConfig("linear-on-one-instance", "staging", _set("mlops:serving.deployment.strategy", "linear"), "mlops:serving.deployment.strategy", "a linear shift needs serving.instanceCount >= 2"),
    BadConfig("step-instances-zero", "prod", _set("mlops:serving.deployment.stepInstances", 0), "mlops:serving.deployment.stepInstances", "greater than or equal to 1"),
    BadConfig("deployment-deadline-too-short", "prod", _set("mlops:serving.deployment.maxMinutes", 20), "mlops:serving.deployment.maxMinutes", "must exceed the update's own waits (25 minutes"),
    BadConfig("prod-not-isolated", "prod", _set("mlops:serving.networkIsolation", False), "mlops:serving.networkIsolation", "must be true in prod"),
    BadConfig("prod-no-capture", "prod", _set("mlops:serving.dataCapturePercent", 0), "mlops:serving.dataCapturePercent", "at least 1 in prod"),
    BadConfig("cpu-threshold-over-100", "prod", _set("mlops:monitoring.cpuUtilizationPercent", 150), "mlops:monitoring.cpuUtilizationPercent", "less than or equal to 100"),
    BadConfig("drift-window-zero", "staging", _set("mlops:monitoring.driftWindowHours", 0), "mlops:monitoring.driftWindowHours", "greater than or equal to 1"),
    BadConfig("drift-instance-unknown", "staging", _set("mlops:monitoring.driftInstanceType", "ml.m5.huge"), "mlops:monitoring.driftInstanceType", "not a SageMaker processing job instance type"),
    BadConfig("retrain-switch-not-a-bool", "prod", _set("mlops:monitoring.retrainOnDrift", "sometimes"), "mlops:monitoring.retrainOnDrift", "valid boolean"),
    BadConfig("drift-schedule-bad", "staging", _set("mlops:monitoring.driftSchedule", "hourly"), "mlops:monitoring.driftSchedule", "not a schedule expression"),
    BadConfig("prod-single-instance", "prod", _set("mlops:serving.minInstances", 1), "mlops:serving.minInstances", "at least 2 in prod"),
    BadConfig("prod-nobody-alerted", "prod", _set("mlops:monitoring.alarmEmails", []), "mlops:monitoring.alarmEmails", "at least one address"),
    BadConfig("staging-auto-approve", "staging", _set("mlops:training.autoApprove", True), "mlops:training.autoApprove", "only dev may auto-approve"),
    BadConfig("project-namespace-used", "dev", _set("mlops-kit:environment", "dev"), "mlops-kit:environment", "'mlops:' namespace"),
]  # fmt: skip


@pytest.mark.parametrize("bad", BAD_CONFIGS, ids=lambda b: b.id)
def test_bad_config_gets_one_clear_message_naming_the_key(
    bad: BadConfig, raw_config: Callable[[str], Raw]
) -> None:
    raw = raw_config(bad.stack)
    bad.mutate(raw)

    with pytest.raises(ConfigError) as caught:
        settings_from_config(raw, project="mlops-kit", stack=bad.stack)

    assert len(caught.value.problems) == 1, caught.value.problems
    problem = caught.value.problems[0]
    assert problem.startswith(f"{bad.key}: "), problem
    assert bad.says in problem, problem
    assert f"stack '{bad.stack}'" in str(caught.value)


def test_every_problem_is_reported_at_once(raw_config: Callable[[str], Raw]) -> None:
    raw = raw_config("dev")
    _set("mlops:serving.dataCapturePercent", 101)(raw)
    _set("mlops:training.instanceType", "ml.nope")(raw)

    with pytest.raises(ConfigError) as caught:
        settings_from_config(raw, project="mlops-kit", stack="dev")

    keys = sorted(p.split(": ")[0] for p in caught.value.problems)
    assert keys == ["mlops:serving.dataCapturePercent", "mlops:training.instanceType"]


def test_stack_name_must_fit_resource_names(raw_config: Callable[[str], Raw]) -> None:
    with pytest.raises(ConfigError, match=r"stack name: stack name 'Team_A' cannot be used"):
        settings_from_config(raw_config("dev"), project="mlops-kit", stack="Team_A")


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_repo_stack_files_are_valid(stack: str, raw_config: Callable[[str], Raw]) -> None:
    settings = settings_from_config(raw_config(stack), project="mlops-kit", stack=stack)
    assert settings.environment is Environment(stack)
    assert settings.prefix == f"churn-{stack}"


def test_dev_is_cheap_and_prod_is_durable(raw_config: Callable[[str], Raw]) -> None:
    dev, staging, prod = (
        settings_from_config(raw_config(s), project="mlops-kit", stack=s)
        for s in ("dev", "staging", "prod")
    )
    # dev: nothing always on, data disposable, short retention
    assert dev.serving.kind is EndpointKind.SERVERLESS
    assert dev.storage.force_destroy and not dev.storage.protect_data
    # prod: protected data, longer retention, more capacity than anything else
    assert prod.storage.protect_data and not prod.storage.force_destroy
    assert prod.serving.kind is EndpointKind.INSTANCE and prod.serving.min_instances >= 2
    assert prod.monitoring.log_retention_days > staging.monitoring.log_retention_days
    assert staging.monitoring.log_retention_days > dev.monitoring.log_retention_days
    assert (
        prod.storage.noncurrent_version_expiration_days
        > dev.storage.noncurrent_version_expiration_days
    )
    assert prod.serving.max_instances > staging.serving.max_instances


def test_defaults_are_the_secure_choice() -> None:
    minimal = {
        "aws:region": "us-east-1",
        "mlops:environment": "staging",
        "mlops:serviceName": "svc",
    }
    settings = settings_from_config(minimal, project="mlops-kit", stack="qa")

    assert settings.storage.protect_data is True
    assert settings.storage.force_destroy is False
    assert settings.training.auto_approve is False
    assert settings.serving.kind is EndpointKind.INSTANCE


def test_settings_are_frozen(raw_config: Callable[[str], Raw]) -> None:
    settings = settings_from_config(raw_config("dev"), project="mlops-kit", stack="dev")
    with pytest.raises(ValueError, match="frozen"):
        settings.storage.force_destroy = False  # type: ignore[misc]


def test_a_stack_name_too_long_for_aws_is_named_briefly(raw_config: Callable[[str], Raw]) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_config(raw_config("dev"), project="mlops-kit", stack=LONG_STACK)
    assert str(caught.value).startswith(
        "invalid config for stack 'aaaaaaaaaaaaaaaaaaaaaaaa...' (300 characters):\n"
    )
    assert caught.value.problems == [LONG_STACK_SAYS]


# --- the stack file itself -----------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the repo's project and stack files, safe to break."""
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.staging.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    return tmp_path


@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda h: h.id)
def test_a_hostile_stack_file_is_refused_before_any_setting_is_read(
    project: Path, hostile: HostileFile
) -> None:
    (project / "Pulumi.dev.yaml").write_bytes(hostile.content)
    with pytest.raises(ProjectError) as caught:
        load_stack_config(project, "dev")
    assert str(caught.value).startswith(expected(hostile)), caught.value
    assert "\n" not in str(caught.value)


def test_a_stack_name_is_checked_before_it_becomes_a_file_name(project: Path) -> None:
    # 300 characters made Path.is_file() raise ENAMETOOLONG: a "program failure" before.
    with pytest.raises(ProjectError) as caught:
        load_stack_config(project, LONG_STACK)
    assert isinstance(caught.value, ConfigError)
    assert caught.value.problems == [LONG_STACK_SAYS]


@pytest.mark.parametrize(
    ("value", "read"),
    [
        ("123456789012", "123456789012"),  # plain digits: YAML's number is the same text
        ("'012345670123'", "012345670123"),  # quoted: text, leading zero and all
        ("'2024-01-01'", "2024-01-01"),
        ("!!str 2024-01-01", "2024-01-01"),
    ],
)
def test_unambiguous_scalars_read_as_written(project: Path, value: str, read: str) -> None:
    path = project / "Pulumi.dev.yaml"
    path.write_text(path.read_text() + f"  mlops:accountId: {value}\n")
    assert load_stack_config(project, "dev").values["mlops:accountId"] == read


def test_merge_keys_and_anchors_are_plain_yaml_and_still_read(project: Path) -> None:
    path = project / "Pulumi.dev.yaml"
    text = path.read_text().replace("  mlops:tags:\n", "  mlops:tags: &tags\n")
    path.write_text(text + "  pulumi:copy:\n    <<: *tags\n    extra: x\n")
    values = load_stack_config(project, "dev").values
    assert json.loads(values["pulumi:copy"]) == {
        "team": "ml-platform",
        "cost-center": "ml-dev",
        "extra": "x",
    }


def _commands(stack: str) -> dict[str, list[str]]:
    """Every command that reads a stack file, pointed at ``stack``. None gets as far as AWS:
    each reads and validates the file first."""
    decide = ["--approver", "ci", "--reason", "test", "--dry-run"]
    nowhere = ["--endpoint-url", "http://127.0.0.1:9"]
    return {
        "plan": ["plan", "--stack", stack],
        "promote --to": ["promote", "--to", stack, *decide, *nowhere],
        "promote --from": ["promote", "--to", "staging", "--from", stack, *decide, *nowhere],
        "rollback": ["rollback", "--stack", stack, *decide, *nowhere],
        "verify-endpoint": [
            "verify-endpoint",
            "--stack",
            stack,
            "--expected-config",
            "x",
            *nowhere,
        ],
        "pipeline run": ["pipeline", "run", "--stack", stack, *nowhere],
    }


@pytest.mark.parametrize("command", list(_commands("dev")))
@pytest.mark.parametrize("hostile", [*HOSTILE, None], ids=lambda h: h.id if h else "long-name")
def test_every_command_that_reads_a_stack_file_refuses_it_in_one_line(
    project: Path, command: str, hostile: HostileFile | None
) -> None:
    stack, gist = ("dev", hostile.gist) if hostile else (LONG_STACK, "(300 characters)")
    if hostile is not None:
        (project / "Pulumi.dev.yaml").write_bytes(hostile.content)
    args = [*_commands(stack)[command], "--project-dir", str(project)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.output.startswith("error: ") and result.output.count("error:") == 1
    assert gist in result.output, result.output
    assert "Traceback" not in result.output
