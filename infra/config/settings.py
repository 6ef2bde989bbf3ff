"""Frozen, typed settings for one stack, validated before any resource is declared.

Stack files use camelCase keys under the ``mlops`` namespace (``mlops:serving.instanceType``);
the models here use snake_case attributes and accept the camelCase aliases. Each section
forbids unknown keys so a typo fails loudly instead of silently falling back to a default.

Defaults are the secure, durable choice. A stack that wants something cheaper or easier to
tear down (dev) must say so in its own file, e.g. ``forceDestroy: true``.
"""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    model_validator,
)
from pydantic.alias_generators import to_camel

from infra.config import validators as v
from infra.config.aws_catalog import JobKind
from infra.naming import BucketPurpose, bucket_name


class Environment(enum.StrEnum):
    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"


class EndpointKind(enum.StrEnum):
    SERVERLESS = "serverless"
    INSTANCE = "instance"


class ConfigKeyError(ValueError):
    """A cross-field rule failed; carries the config key the user has to change."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


TrainingInstanceType = Annotated[str, AfterValidator(v.instance_type(JobKind.TRAINING))]
ProcessingInstanceType = Annotated[str, AfterValidator(v.instance_type(JobKind.PROCESSING))]
EndpointInstanceType = Annotated[str, AfterValidator(v.instance_type(JobKind.ENDPOINT))]
LogRetentionDays = Annotated[int, AfterValidator(v.log_retention_days)]
ScheduleExpression = Annotated[str, AfterValidator(v.schedule_expression)]
Days = Annotated[int, Field(ge=1, le=36500)]
Percent = Annotated[int, Field(ge=0, le=100)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class _Section(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
    )


class BucketExpiry(_Section):
    """Days after which current object versions expire, per bucket; ``None`` keeps them."""

    data: Days | None = None
    artifacts: Days | None = None
    capture: Days | None = None
    access_logs: Days | None = None


class StorageSettings(_Section):
    force_destroy: bool = False
    protect_data: bool = True
    kms_deletion_window_days: Annotated[int, Field(ge=7, le=30)] = 30
    noncurrent_version_expiration_days: Days = 90
    abort_incomplete_multipart_upload_days: Days = 7
    expiration_days: BucketExpiry = BucketExpiry()


class TrainingSettings(_Section):
    instance_type: TrainingInstanceType = "ml.m5.large"
    processing_instance_type: ProcessingInstanceType = "ml.m5.large"
    instance_count: Annotated[int, Field(ge=1, le=100)] = 1
    # SageMaker's MaxRuntimeInSeconds allows up to 28 days.
    max_runtime_minutes: Annotated[int, Field(ge=1, le=28 * 24 * 60)] = 60
    # ML storage per job instance; encrypted with the stack's key.
    volume_size_gb: Annotated[int, Field(ge=1, le=16384)] = 30
    metric_name: Annotated[str, AfterValidator(v.metric_name)] = "roc_auc"
    metric_threshold: Fraction = 0.8
    # When EventBridge Scheduler starts the retraining pipeline.
    schedule: ScheduleExpression = "rate(7 days)"
    # None: on in staging and prod, off in dev (a dev stack should not bill on its own).
    schedule_enabled: bool | None = None
    auto_approve: bool = False
    # Train one model with an aws.sagemaker.TrainingJob when the stack is created, so a
    # new environment has a model before the pipeline first runs.
    baseline_job: bool = False


class ServingSettings(_Section):
    kind: EndpointKind = EndpointKind.INSTANCE
    instance_type: EndpointInstanceType = "ml.m5.large"
    instance_count: Annotated[int, Field(ge=1, le=100)] = 2
    min_instances: Annotated[int, Field(ge=1, le=100)] = 2
    max_instances: Annotated[int, Field(ge=1, le=100)] = 4
    target_invocations_per_instance: Annotated[int, Field(ge=1, le=100_000)] = 200
    serverless_memory_mb: Annotated[int, AfterValidator(v.serverless_memory_mb)] = 2048
    serverless_max_concurrency: Annotated[int, AfterValidator(v.serverless_max_concurrency)] = 5
    data_capture_percent: Percent = 100

    @model_validator(mode="after")
    def _capacity_is_ordered(self) -> ServingSettings:
        if self.kind is EndpointKind.INSTANCE and not (
            self.min_instances <= self.instance_count <= self.max_instances
        ):
            raise ConfigKeyError(
                "serving.instanceCount",
                f"must lie between serving.minInstances ({self.min_instances}) and "
                f"serving.maxInstances ({self.max_instances}); got {self.instance_count}",
            )
        return self


class MonitoringSettings(_Section):
    alarm_emails: tuple[EmailStr, ...] = ()
    log_retention_days: LogRetentionDays = 365
    # Thresholds are in the units people think in; CloudWatch's microseconds come later.
    latency_p99_ms: Annotated[float, Field(gt=0, le=3_600_000)] = 500.0
    error_rate_percent: Annotated[float, Field(gt=0, le=100)] = 1.0
    drift_psi_threshold: Annotated[float, Field(gt=0, le=10)] = 0.2
    drift_schedule: ScheduleExpression = "rate(1 day)"


class Settings(BaseModel):
    """Everything one stack needs to declare its resources."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    project: str
    stack: Annotated[str, AfterValidator(v.stack_name)]
    region: Annotated[str, AfterValidator(v.region)]
    environment: Environment
    service_name: Annotated[str, AfterValidator(v.service_name)]
    tags: Annotated[dict[str, str], AfterValidator(v.user_tags)] = Field(default_factory=dict)
    storage: StorageSettings = StorageSettings()
    training: TrainingSettings = TrainingSettings()
    serving: ServingSettings = ServingSettings()
    monitoring: MonitoringSettings = MonitoringSettings()

    @property
    def partition(self) -> str:
        return v.partition_of(self.region)

    @property
    def prefix(self) -> str:
        """Stem of every physical name: one service, one stack."""
        return f"{self.service_name}-{self.stack}"

    @property
    def is_prod(self) -> bool:
        return self.environment is Environment.PROD

    @property
    def retraining_schedule_enabled(self) -> bool:
        if self.training.schedule_enabled is not None:
            return self.training.schedule_enabled
        return self.environment is not Environment.DEV

    @property
    def default_tags(self) -> dict[str, str]:
        return {
            **self.tags,
            "project": self.project,
            "environment": self.environment.value,
            "stack": self.stack,
            "managed-by": "pulumi",
        }

    @model_validator(mode="after")
    def _environment_rules(self) -> Settings:
        _check_bucket_name_length(self)
        if self.is_prod:
            _check_prod_rules(self)
        if self.training.auto_approve and self.environment is not Environment.DEV:
            raise ConfigKeyError(
                "training.autoApprove",
                f"only dev may auto-approve models; {self.environment.value} models need a "
                "manual approval in the registry",
            )
        return self


def _check_prod_rules(settings: Settings) -> None:
    storage, serving = settings.storage, settings.serving
    if storage.force_destroy:
        raise ConfigKeyError(
            "storage.forceDestroy",
            "must be false in prod: prod buckets are never emptied by `pulumi destroy`",
        )
    if not storage.protect_data:
        raise ConfigKeyError(
            "storage.protectData",
            "must be true in prod: prod data buckets and the KMS key are protected from deletion",
        )
    if serving.kind is not EndpointKind.INSTANCE:
        raise ConfigKeyError(
            "serving.kind",
            "must be 'instance' in prod: serverless endpoints have cold starts and no "
            "multi-AZ instance floor",
        )
    if serving.min_instances < 2:
        raise ConfigKeyError(
            "serving.minInstances",
            f"must be at least 2 in prod so the endpoint spans availability zones; "
            f"got {serving.min_instances}",
        )
    if not settings.monitoring.alarm_emails:
        raise ConfigKeyError(
            "monitoring.alarmEmails",
            "prod needs at least one address: an alarm nobody receives is not monitoring",
        )


def _check_bucket_name_length(settings: Settings) -> None:
    # {prefix}-{purpose}-{12-digit account}-{region}; S3 bucket names stop at 63 characters.
    longest = max(
        len(bucket_name(settings.prefix, purpose, "0" * 12, settings.region))
        for purpose in BucketPurpose
    )
    if longest > 63:
        raise ConfigKeyError(
            "serviceName",
            f"'{settings.service_name}' with stack '{settings.stack}' makes bucket names "
            f"{longest} characters long; S3 allows 63. Shorten serviceName (or the stack name) "
            f"by {longest - 63}",
        )
