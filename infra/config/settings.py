"""Frozen, typed settings for one stack, validated before any resource is declared.

Stack files use camelCase keys under the ``mlops`` namespace (``mlops:serving.instanceType``);
the models here use snake_case attributes and accept the camelCase aliases. Each section
forbids unknown keys so a typo fails loudly instead of silently falling back to a default.

Defaults are the secure, durable choice. A stack that wants something cheaper or easier to
tear down (dev) must say so in its own file, e.g. ``forceDestroy: true``.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    model_validator,
)
from pydantic.alias_generators import to_camel

from inference import batch_contract

# What a batch job does with a row the model cannot score: the contract's own policy.
from inference.batch_contract import BadRows
from infra.config import validators as v
from infra.config.aws_catalog import JobKind
from infra.naming import ArtifactPrefix, BucketPurpose, bucket_name
from training import bias, explain, search_space


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
TransformInstanceType = Annotated[str, AfterValidator(v.instance_type(JobKind.TRANSFORM))]
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


class TuningRange(_Section):
    """One hyperparameter's search range (``mlops:training.tuning.ranges.<name>``)."""

    min: float
    max: float
    scale: search_space.Scale = search_space.Scale.AUTO


def _default_ranges() -> dict[str, TuningRange]:
    return {
        r.name: TuningRange(min=r.low, max=r.high, scale=r.scale)
        for r in search_space.DEFAULT_RANGES
    }


class EarlyStopping(enum.StrEnum):
    """SageMaker's TrainingJobEarlyStoppingType."""

    AUTO = "Auto"
    OFF = "Off"


class TuningSettings(_Section):
    """A tuning step (Bayesian search) in place of the pipeline's single training job."""

    enabled: bool = False
    # Training jobs in all, and at once; each is billed like the single training job.
    max_jobs: Annotated[int, Field(ge=1, le=500)] = 20
    max_parallel_jobs: Annotated[int, Field(ge=1, le=100)] = 2
    early_stopping: EarlyStopping = EarlyStopping.AUTO
    ranges: dict[str, TuningRange] = Field(default_factory=_default_ranges)

    @property
    def search_ranges(self) -> tuple[search_space.Range, ...]:
        return tuple(
            search_space.Range(name, r.min, r.max, r.scale) for name, r in self.ranges.items()
        )

    @model_validator(mode="after")
    def _usable(self) -> TuningSettings:
        if not self.ranges:
            raise ConfigKeyError("training.tuning.ranges", "needs at least one range to search")
        problems = search_space.check(self.search_ranges)
        if problems:
            raise ConfigKeyError("training.tuning.ranges", "; ".join(problems))
        if self.max_parallel_jobs > self.max_jobs:
            raise ConfigKeyError(
                "training.tuning.maxParallelJobs",
                f"is {self.max_parallel_jobs}, more than maxJobs {self.max_jobs}",
            )
        return self


class TrainingSettings(_Section):
    instance_type: TrainingInstanceType = "ml.m5.large"
    processing_instance_type: ProcessingInstanceType = "ml.m5.large"
    instance_count: Annotated[int, Field(ge=1, le=100)] = 1
    # Training and processing steps alike; processing jobs allow up to 9 days.
    max_runtime_minutes: Annotated[int, AfterValidator(v.job_runtime_minutes)] = 60
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
    tuning: TuningSettings = TuningSettings()


class BatchContentType(enum.StrEnum):
    """The contract's input formats, as a type stack files are validated against."""

    CSV = batch_contract.CSV
    JSON_LINES = batch_contract.JSON_LINES


class BatchSettings(_Section):
    """Batch transform of the stack's registry version over an S3 prefix (``mlops batch``)."""

    enabled: bool = False
    instance_type: TransformInstanceType = "ml.m5.large"
    instance_count: Annotated[int, Field(ge=1, le=100)] = 1
    # SageMaker's MaxPayloadInMB: a mini-batch's size, 1-100 MB (6 MB matches real-time).
    max_payload_mb: Annotated[int, Field(ge=1, le=100)] = 6
    # Requests in flight per instance; 0 lets SageMaker choose.
    max_concurrent_transforms: Annotated[int, Field(ge=0, le=64)] = 0
    content_type: BatchContentType = BatchContentType.CSV
    bad_rows: BadRows = BadRows.ERRORS
    # When the batch pipeline runs on its own; None: on demand only (`mlops batch`).
    schedule: ScheduleExpression | None = None
    # Batch inputs are captured in data-capture format, so the drift and quality jobs read
    # them as they read endpoint traffic.
    capture: bool = True
    max_runtime_minutes: Annotated[int, Field(ge=1, le=5 * 24 * 60)] = 240


class NetworkMode(enum.StrEnum):
    # The stack declares its own VPC: private subnets, VPC endpoints, flow logs.
    CREATE = "create"
    # The platform's VPC: subnets and security groups given by ID, endpoints managed there.
    EXISTING = "existing"
    # RELAXED: jobs and models run on SageMaker's own network (isolated where they can be).
    NONE = "none"


SubnetId = Annotated[str, AfterValidator(v.ec2_id("subnet", "a subnet"))]
SecurityGroupId = Annotated[str, AfterValidator(v.ec2_id("sg", "a security group"))]
VpcEndpointId = Annotated[str, AfterValidator(v.ec2_id("vpce", "a VPC endpoint"))]


class NetworkSettings(_Section):
    """Where SageMaker jobs and models run: the stack's private VPC, the platform's, or none.

    In a VPC, every job and model gets subnets and security groups (SageMaker's VpcConfig)
    and reaches AWS only through VPC endpoints: there is no internet or NAT gateway.
    """

    mode: NetworkMode = NetworkMode.CREATE
    # create: the VPC's address space, split into one private subnet per zone.
    cidr: Annotated[str, AfterValidator(v.private_cidr)] = "10.20.0.0/16"
    availability_zones: Annotated[int, Field(ge=2, le=6)] = 2
    flow_log_retention_days: LogRetentionDays = 365
    # existing: at least two subnets (in different zones: SageMaker spreads endpoint
    # instances over the model's subnets) and the groups the jobs use; VpcConfig's limits.
    subnet_ids: Annotated[tuple[SubnetId, ...], Field(max_length=16)] = ()
    security_group_ids: Annotated[tuple[SecurityGroupId, ...], Field(max_length=5)] = ()
    # The buckets refuse the stack's in-VPC job roles any request that does not come
    # through the S3 gateway endpoint (aws:SourceVpce): stolen job credentials are useless
    # outside the VPC. existing mode names the endpoint in s3EndpointId.
    require_s3_endpoint: bool = False
    s3_endpoint_id: VpcEndpointId | None = None
    # SageMaker Serverless Inference cannot run in a VPC: a serverless endpoint in a VPC
    # stack needs this true, saying its model runs outside the VPC.
    serverless_outside_vpc: bool = False

    @property
    def private(self) -> bool:
        return self.mode is not NetworkMode.NONE

    @model_validator(mode="after")
    def _complete(self) -> NetworkSettings:
        existing = self.mode is NetworkMode.EXISTING
        if existing:
            if len(set(self.subnet_ids)) < 2:
                raise ConfigKeyError(
                    "network.subnetIds",
                    "existing mode needs at least two distinct subnets, in different "
                    f"availability zones; got {list(self.subnet_ids)}",
                )
            if len(set(self.subnet_ids)) != len(self.subnet_ids):
                raise ConfigKeyError("network.subnetIds", "names a subnet twice")
            if not self.security_group_ids:
                raise ConfigKeyError(
                    "network.securityGroupIds",
                    "existing mode needs 1-5 security groups for the jobs and models",
                )
            if len(set(self.security_group_ids)) != len(self.security_group_ids):
                raise ConfigKeyError("network.securityGroupIds", "names a group twice")
            if self.require_s3_endpoint and self.s3_endpoint_id is None:
                raise ConfigKeyError(
                    "network.s3EndpointId",
                    "requireS3Endpoint in existing mode needs the VPC's S3 gateway endpoint "
                    "ID (vpce-...), the one the buckets will require",
                )
        else:
            for key, given in (
                ("subnetIds", self.subnet_ids),
                ("securityGroupIds", self.security_group_ids),
                ("s3EndpointId", self.s3_endpoint_id),
            ):
                if given:
                    raise ConfigKeyError(
                        f"network.{key}",
                        f"is only for mode 'existing'; mode is '{self.mode.value}'",
                    )
        if self.mode is NetworkMode.NONE and self.require_s3_endpoint:
            raise ConfigKeyError(
                "network.requireS3Endpoint",
                "needs a VPC (mode 'create' or 'existing'); mode is 'none'",
            )
        return self


class TrafficShift(enum.StrEnum):
    """How a blue/green update moves traffic to the new fleet (SageMaker TrafficRoutingConfig)."""

    CANARY = "canary"
    LINEAR = "linear"
    ALL_AT_ONCE = "all_at_once"


class ModelRef(_Section):
    """Which model a stack serves: exactly one of the three ways to name it.

    ``packageVersion`` is a version in this stack's own registry (what ``mlops promote``
    writes); ``packageArn`` names any registered package; ``dataUri`` serves a raw
    ``model.tar.gz`` under the stack's artifacts bucket, for bootstrapping.
    """

    package_version: Annotated[int, Field(ge=1)] | None = None
    package_arn: Annotated[str, AfterValidator(v.model_package_arn)] | None = None
    data_uri: Annotated[str, AfterValidator(v.model_data_uri)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ModelRef:
        given = [
            name
            for name, value in (
                ("packageVersion", self.package_version),
                ("packageArn", self.package_arn),
                ("dataUri", self.data_uri),
            )
            if value is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "name the model exactly one way: packageVersion, packageArn or dataUri"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


class DeploymentSettings(_Section):
    """Blue/green update of the endpoint, rolled back by the endpoint's alarms."""

    # None: canary on instance endpoints, all at once on serverless ones.
    strategy: TrafficShift | None = None
    # Instances of the new fleet that take traffic first (canary), or that each linear step
    # adds. Said in instances because that is how traffic moves: a share of the fleet is
    # rounded to whole instances, so 25% of 2 instances would be 1 instance, half the
    # traffic. The share follows from serving.instanceCount (see ServingSettings).
    step_instances: Annotated[int, Field(ge=1, le=100)] = 1
    # Bake time per step, watched by the rollback alarms (WaitIntervalInSeconds 0-3600).
    wait_minutes: Annotated[int, Field(ge=0, le=60)] = 10
    # How long the old fleet stays up after the shift (TerminationWaitInSeconds 0-3600).
    termination_wait_minutes: Annotated[int, Field(ge=0, le=60)] = 5
    # Whole update deadline; the provider allows 600-14400 s.
    max_minutes: Annotated[int, Field(ge=10, le=240)] = 120

    @model_validator(mode="before")
    @classmethod
    def _step_percent_was_replaced(cls, data: Any) -> Any:
        if isinstance(data, dict) and {"stepPercent", "step_percent"} & data.keys():
            raise ConfigKeyError(
                "serving.deployment.stepPercent",
                "was replaced by stepInstances: SageMaker moves traffic in whole instances, "
                "so a percentage is rounded (25% of 2 instances ran as 1 instance, half the "
                "traffic); give the number of instances instead",
            )
        return data


class ServingSettings(_Section):
    # None: the stack declares no endpoint yet (e.g. before the first model is registered).
    model: ModelRef | None = None
    # A second model that receives a copy of live traffic; its responses are discarded.
    shadow: ModelRef | None = None
    shadow_percent: Annotated[int, Field(ge=1, le=100)] = 100
    deployment: DeploymentSettings = DeploymentSettings()
    kind: EndpointKind = EndpointKind.INSTANCE
    # SageMaker cannot isolate serverless models; a serverless stack must say false here.
    network_isolation: bool = True
    instance_type: EndpointInstanceType = "ml.m5.large"
    instance_count: Annotated[int, Field(ge=1, le=100)] = 2
    min_instances: Annotated[int, Field(ge=1, le=100)] = 2
    max_instances: Annotated[int, Field(ge=1, le=100)] = 4
    target_invocations_per_instance: Annotated[int, Field(ge=1, le=100_000)] = 200
    serverless_memory_mb: Annotated[int, AfterValidator(v.serverless_memory_mb)] = 2048
    serverless_max_concurrency: Annotated[int, AfterValidator(v.serverless_max_concurrency)] = 5
    data_capture_percent: Percent = 100
    # AWS refuses to change the instance type of an autoscaled variant: switch this off,
    # change the type, switch it back on.
    autoscaling: bool = True
    scale_in_cooldown_seconds: Annotated[int, Field(ge=0, le=3600)] = 300
    scale_out_cooldown_seconds: Annotated[int, Field(ge=0, le=3600)] = 60

    @property
    def traffic_shift(self) -> TrafficShift:
        if self.deployment.strategy is not None:
            return self.deployment.strategy
        if self.kind is EndpointKind.INSTANCE:
            return TrafficShift.CANARY
        return TrafficShift.ALL_AT_ONCE

    @property
    def traffic_steps(self) -> int:
        """Baking steps of an update: canary then the rest, one per linear step, or one."""
        if self.traffic_shift is TrafficShift.LINEAR:
            return -(-self.instance_count // self.deployment.step_instances)
        return 2 if self.traffic_shift is TrafficShift.CANARY else 1

    @model_validator(mode="after")
    def _capacity_is_ordered(self) -> ServingSettings:
        if self.kind is EndpointKind.INSTANCE:
            self._check_traffic_steps()
        deployment = self.deployment
        needed = self.traffic_steps * deployment.wait_minutes + deployment.termination_wait_minutes
        if deployment.max_minutes <= needed:
            raise ConfigKeyError(
                "serving.deployment.maxMinutes",
                f"must exceed the update's own waits ({needed} minutes: {self.traffic_steps} "
                f"baking step(s) of {deployment.wait_minutes} plus "
                f"{deployment.termination_wait_minutes} before the old fleet ends); "
                f"got {deployment.max_minutes}",
            )
        if self.kind is EndpointKind.INSTANCE and not (
            self.min_instances <= self.instance_count <= self.max_instances
        ):
            raise ConfigKeyError(
                "serving.instanceCount",
                f"must lie between serving.minInstances ({self.min_instances}) and "
                f"serving.maxInstances ({self.max_instances}); got {self.instance_count}",
            )
        return self

    def _check_traffic_steps(self) -> None:
        # SageMaker's limits on CanarySize and LinearStepSize, in instances of the new fleet.
        count, step = self.instance_count, self.deployment.step_instances
        shift = self.traffic_shift
        if shift is TrafficShift.CANARY and count < 2:
            raise ConfigKeyError(
                "serving.deployment.strategy",
                "a canary needs serving.instanceCount >= 2 (SageMaker caps it at half the "
                "fleet); use all_at_once for a single instance",
            )
        if shift is TrafficShift.CANARY and step > count // 2:
            raise ConfigKeyError(
                "serving.deployment.stepInstances",
                f"a canary of {step} of {count} instances is more than half the fleet, "
                f"SageMaker's limit; at most {count // 2}",
            )
        if shift is TrafficShift.LINEAR:
            low, high = -(-count // 10), count // 2
            if low > high:
                raise ConfigKeyError(
                    "serving.deployment.strategy",
                    "a linear shift needs serving.instanceCount >= 2 (each step is 10-50% of "
                    "the fleet); use all_at_once for a single instance",
                )
            if not low <= step <= high:
                raise ConfigKeyError(
                    "serving.deployment.stepInstances",
                    f"a linear step of {step} of {count} instances is "
                    f"{100 * step / count:.0f}% of the fleet; SageMaker's LinearStepSize must "
                    f"be 10-50% of it: {low}-{high} instances",
                )


class MonitoringSettings(_Section):
    alarm_emails: tuple[EmailStr, ...] = ()
    log_retention_days: LogRetentionDays = 365
    # Thresholds are in the units people think in; CloudWatch's microseconds come later.
    latency_p99_ms: Annotated[float, Field(gt=0, le=3_600_000)] = 500.0
    error_rate_percent: Annotated[float, Field(gt=0, le=100)] = 1.0
    # 4XX means the caller's request was refused; a model that rejects valid input shows here.
    client_error_rate_percent: Annotated[float, Field(gt=0, le=100)] = 5.0
    # Share of the fleet's CPU (SageMaker sums CPUUtilization over vCPUs) and of memory.
    cpu_utilization_percent: Annotated[float, Field(gt=0, le=100)] = 80.0
    memory_utilization_percent: Annotated[float, Field(gt=0, le=100)] = 85.0
    drift_psi_threshold: Annotated[float, Field(gt=0, le=10)] = 0.2
    drift_schedule: ScheduleExpression = "rate(1 day)"
    # The captured traffic each drift run compares with the training baseline.
    drift_window_hours: Annotated[int, Field(ge=1, le=24 * 14)] = 24
    drift_instance_type: ProcessingInstanceType = "ml.m5.large"
    # Processing instances the drift and quality jobs spread capture files over
    # (ShardedByS3Key); a merge step combines their counts into one verdict.
    drift_instance_count: Annotated[int, Field(ge=1, le=100)] = 1
    quality_instance_count: Annotated[int, Field(ge=1, le=100)] = 1
    # None: the drift schedule runs wherever traffic is captured.
    drift_schedule_enabled: bool | None = None
    # None: on in dev and staging; off in prod, where a human decides to retrain. The rule
    # also follows the quality alarm: a significant quality drop retrains like drift does.
    retrain_on_drift: bool | None = None
    # Model quality (concept drift): captured predictions joined with labels (mlops label).
    # None: the quality schedule runs wherever the drift schedule does.
    quality_schedule_enabled: bool | None = None
    quality_schedule: ScheduleExpression = "rate(1 day)"
    quality_window_hours: Annotated[int, Field(ge=1, le=24 * 14)] = 24
    # Labels arrive late: a window is judged only once this many hours have passed after it.
    label_delay_hours: Annotated[int, Field(ge=0, le=24 * 14)] = 24
    # Fewer labelled predictions in a window than this: reported, never judged.
    quality_min_labels: Annotated[int, Field(ge=1, le=1_000_000)] = 200
    # A metric is flagged only when its drop is significant (one-sided, Holm-corrected at
    # this level) and at least this large in absolute terms.
    quality_alpha: Annotated[float, Field(gt=0, le=0.5)] = 0.01
    quality_min_drop: Annotated[float, Field(gt=0, le=1)] = 0.05


class BiasMetric(enum.StrEnum):
    """Clarify's names: pre-training (labels only) and post-training (predictions) metrics."""

    CI = "CI"
    DPL = "DPL"
    KL = "KL"
    JS = "JS"
    DPPL = "DPPL"
    DI = "DI"
    DCACC = "DCAcc"
    RD = "RD"
    AD = "AD"


class BiasFacet(_Section):
    # A categorical input feature; the sensitive values form the facet's group (Clarify's d).
    name: Annotated[str, AfterValidator(v.categorical_feature)]
    sensitive_values: Annotated[
        tuple[Annotated[str, Field(min_length=1, max_length=256)], ...],
        Field(min_length=1, max_length=100),
    ]


class BiasSettings(_Section):
    """Bias metrics at evaluation and on live traffic, and the limits that gate a model."""

    facets: Annotated[tuple[BiasFacet, ...], Field(max_length=10)] = tuple(
        BiasFacet(name=facet.name, sensitive_values=facet.sensitive_values)
        for facet in bias.DEFAULT_FACETS
    )
    # A metric's deviation from its fair value (|value|; |DI - 1| for DI) above its limit
    # stops registration, refuses promotion, and raises the live bias alarm. None: report only.
    limits: dict[BiasMetric, Annotated[float, Field(gt=0, le=100)]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _facets_are_distinct(self) -> BiasSettings:
        names = [facet.name for facet in self.facets]
        if len(set(names)) != len(names):
            raise ConfigKeyError("bias.facets", f"names a feature twice: {names}")
        return self


class ExplainabilitySettings(_Section):
    """Kernel SHAP at evaluation (Clarify's method) and attribution drift on live traffic."""

    # Test rows explained at evaluation, and the background rows SHAP averages over: the
    # cost is rows x background x 256 model calls, so one summary row (Clarify's default
    # baseline: the data's centre) keeps 300 rows to seconds.
    explain_rows: Annotated[int, Field(ge=10, le=100_000)] = explain.DEFAULT_EXPLAIN_ROWS
    background_rows: Annotated[int, Field(ge=1, le=1_000)] = explain.DEFAULT_BACKGROUND_ROWS
    # Captured rows explained per drift run (a seeded uniform sample of the window).
    live_rows: Annotated[int, Field(ge=10, le=100_000)] = 500
    # Model Monitor's feature-attribution drift check: NDCG of the live feature ranking
    # against the baseline's below this fires the alarm (0.90 is Clarify's default).
    ndcg_threshold: Annotated[float, Field(gt=0, lt=1)] = 0.9


AccountId = Annotated[str, AfterValidator(v.account_id)]
RoleName = Annotated[str, Field(pattern=r"^[\w+=,.@-]{1,64}$")]


class Consumer(_Section):
    """An account whose roles may read this stack's registry and pull its model archives."""

    account_id: AccountId
    # Role names in that account, e.g. its serving role and its deploy (CI) role.
    role_names: Annotated[tuple[RoleName, ...], Field(min_length=1)]


class SharingSettings(_Section):
    """Makes this stack the shared (tooling) registry for other accounts."""

    consumers: tuple[Consumer, ...] = ()

    def role_arns(self, partition: str) -> list[str]:
        return sorted(
            f"arn:{partition}:iam::{c.account_id}:role/{name}"
            for c in self.consumers
            for name in c.role_names
        )


class SharedRegistrySettings(_Section):
    """Serve versions from a shared (tooling) stack's registry instead of this stack's own."""

    # The tooling stack, as `pulumi.StackReference` names it: org/project/stack.
    stack: Annotated[str, Field(pattern=r"^([\w.-]+/){0,2}[\w.-]+$")]


class Settings(BaseModel):
    """Everything one stack needs to declare its resources."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    project: str
    stack: Annotated[str, AfterValidator(v.stack_name)]
    region: Annotated[str, AfterValidator(v.region)]
    environment: Environment
    service_name: Annotated[str, AfterValidator(v.service_name)]
    # The account this stack deploys to; `pulumi up` refuses any other (see infra.provider).
    account_id: Annotated[str, AfterValidator(v.account_id)] | None = None
    # A role to assume in that account (e.g. from a CI or tooling account).
    assume_role_arn: Annotated[str, AfterValidator(v.role_arn)] | None = None
    tags: Annotated[dict[str, str], AfterValidator(v.user_tags)] = Field(default_factory=dict)
    storage: StorageSettings = StorageSettings()
    training: TrainingSettings = TrainingSettings()
    serving: ServingSettings = ServingSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    bias: BiasSettings = BiasSettings()
    explainability: ExplainabilitySettings = ExplainabilitySettings()
    batch: BatchSettings = BatchSettings()
    network: NetworkSettings = NetworkSettings()
    sharing: SharingSettings = SharingSettings()
    shared_registry: SharedRegistrySettings | None = None

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
    def retrain_on_drift(self) -> bool:
        if self.monitoring.retrain_on_drift is not None:
            return self.monitoring.retrain_on_drift
        return not self.is_prod

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
        if self.serving.kind is EndpointKind.SERVERLESS:
            _check_serverless(self.serving)
            _check_serverless_network(self)
        _check_model_archives(self)
        if self.account_id and any(c.account_id == self.account_id for c in self.sharing.consumers):
            raise ConfigKeyError(
                "sharing.consumers",
                f"names this stack's own account {self.account_id}; sharing is for other "
                "accounts (this account's roles get access through their own IAM policies)",
            )
        if self.assume_role_arn and self.account_id:
            role_account = self.assume_role_arn.split(":")[4]
            if role_account != self.account_id:
                raise ConfigKeyError(
                    "assumeRoleArn",
                    f"is in account {role_account}, but accountId is {self.account_id}: the "
                    "role to assume must be in the account the stack deploys to",
                )
        if self.training.auto_approve and self.environment is not Environment.DEV:
            raise ConfigKeyError(
                "training.autoApprove",
                f"only dev may auto-approve models; {self.environment.value} models need a "
                "manual approval in the registry",
            )
        return self


def _check_model_archives(settings: Settings) -> None:
    """A raw archive must sit where the serving role may read: this stack's models/."""
    bucket = re.escape(settings.prefix) + r"-artifacts-\d{12}-" + re.escape(settings.region)
    readable = re.compile(rf"^s3://{bucket}/{ArtifactPrefix.MODELS}")
    for key, ref in (
        ("serving.model", settings.serving.model),
        ("serving.shadow", settings.serving.shadow),
    ):
        if ref is not None and ref.data_uri is not None and not readable.match(ref.data_uri):
            raise ConfigKeyError(
                f"{key}.dataUri",
                f"must be under s3://{settings.prefix}-artifacts-<account>-{settings.region}/"
                f"{ArtifactPrefix.MODELS}: the serving role reads model archives only there",
            )


def _check_serverless(serving: ServingSettings) -> None:
    # What SageMaker Serverless Inference does not support; relaxing a secure default
    # has to be written in the stack file, not implied by the endpoint kind.
    unsupported = {
        "serving.networkIsolation": (
            serving.network_isolation,
            "must be false for a serverless endpoint: SageMaker does not run serverless "
            "models network-isolated. Write `networkIsolation: false` to accept that",
        ),
        "serving.dataCapturePercent": (
            serving.data_capture_percent > 0,
            "must be 0 for a serverless endpoint: serverless endpoints cannot capture data "
            "(use kind 'instance' to monitor drift on live traffic)",
        ),
        "serving.shadow": (
            serving.shadow is not None,
            "needs serving.kind 'instance': serverless endpoints have no shadow variants",
        ),
        "serving.deployment.strategy": (
            serving.deployment.strategy not in (None, TrafficShift.ALL_AT_ONCE),
            "must be all_at_once for a serverless endpoint; canary and linear shifts "
            "need instances",
        ),
    }
    for key, (violated, message) in unsupported.items():
        if violated:
            raise ConfigKeyError(key, message)


def _check_serverless_network(settings: Settings) -> None:
    # AWS: "Serverless Inference does not support ... VPC configuration". The model would
    # run outside the stack's VPC, so the stack file has to say it accepts that.
    network = settings.network
    if (
        network.private
        and settings.serving.model is not None
        and not network.serverless_outside_vpc
    ):
        raise ConfigKeyError(
            "network.serverlessOutsideVpc",
            "a serverless endpoint cannot run in a VPC (SageMaker Serverless Inference does "
            "not support VpcConfig): use serving.kind 'instance', or write "
            "`serverlessOutsideVpc: true` to accept that its model runs outside the VPC "
            "while the stack's jobs stay inside",
        )


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
    if not serving.network_isolation:
        raise ConfigKeyError(
            "serving.networkIsolation", "must be true in prod: prod models run without network"
        )
    if serving.data_capture_percent < 1:
        raise ConfigKeyError(
            "serving.dataCapturePercent",
            "must be at least 1 in prod: drift detection reads the captured traffic",
        )
    if not settings.network.private:
        raise ConfigKeyError(
            "network.mode",
            "must be 'create' or 'existing' in prod: prod jobs and models run in a VPC "
            "with no route to the internet",
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
