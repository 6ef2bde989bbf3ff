"""Physical names and S3 layout, derived in one place from the stack's settings.

Bucket names are deterministic and carry the account ID and region, so the same stack can
be stamped into many accounts without colliding in S3's global namespace, and so other
accounts (and people) can predict them. Because they are computed from plain strings, the
KMS key policy can name the buckets before the buckets exist.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi

if TYPE_CHECKING:
    from infra.config.settings import ModelRef


class BucketPurpose(enum.StrEnum):
    DATA = "data"
    ARTIFACTS = "artifacts"
    CAPTURE = "capture"
    ACCESS_LOGS = "access-logs"

    @property
    def camel(self) -> str:
        head, *rest = self.value.split("-")
        return head + "".join(part.title() for part in rest)


# Key prefixes inside each bucket. IAM write grants name these, not whole buckets.
class DataPrefix(enum.StrEnum):
    RAW = "raw/"
    VALIDATED = "validated/"
    PROCESSED = "processed/"


class ArtifactPrefix(enum.StrEnum):
    # Code bundles are uploaded by Pulumi only; jobs may read them but never overwrite them.
    CODE = "code/"
    MODELS = "models/"
    EVALUATION = "evaluation/"


class CapturePrefix(enum.StrEnum):
    DATA_CAPTURE = "datacapture/"
    # Labels for captured predictions, in Model Monitor's ground-truth format (mlops label).
    GROUND_TRUTH = "groundtruth/"
    MONITORING = "monitoring/"


# Batch inference (`<prefix>-batch`): inputs under the data bucket, each run's outputs under
# the artifacts bucket, batch capture manifests under the capture bucket. Not members of the
# prefix enums above: those enums grant the execution role writes wherever they point.
BATCH_INPUT_PREFIX = "batch/input/"
BATCH_OUTPUT_PREFIX = "batch/output/"
BATCH_CAPTURE_PREFIX = "batchcapture/"


class Variant(enum.StrEnum):
    """Endpoint variant names; autoscaling and alarms address the variant by name."""

    PRIMARY = "primary"
    SHADOW = "shadow"


class EndpointAlarm(enum.StrEnum):
    """Alarms on the endpoint; a blue/green update rolls back when any of them fires."""

    ERROR_RATE_5XX = "5xx-rate"
    ERROR_RATE_4XX = "4xx-rate"
    LATENCY_P99 = "latency-p99"


# The alarm that the drift job reported no records: monitoring's health, not the model's.
DRIFT_SILENT_ALARM = "drift-silent"
# Model Monitor's other three monitors, as alarms named <endpoint>-<suffix>.
QUALITY_ALARM = "quality"
BIAS_DRIFT_ALARM = "bias-drift"
ATTRIBUTION_DRIFT_ALARM = "attribution-drift"
# The quality job reported no labelled predictions: labels are late or missing (operations).
QUALITY_SILENT_ALARM = "quality-silent"
# Alarms about monitoring itself: they alert people, and never block a promotion.
SILENT_ALARMS = (DRIFT_SILENT_ALARM, QUALITY_SILENT_ALARM)
# SageMaker names each endpoint's log group after the endpoint, under this path.
ENDPOINT_LOG_GROUPS = "/aws/sagemaker/Endpoints"


# Roles of the jobs that run in the stack's VPC and touch its buckets only from there.
# Not the serving and batch execution roles: AWS does not document that endpoint and batch
# data capture is written through the model's VPC, so requiring the S3 endpoint could stop it.
IN_VPC_JOB_ROLES = (
    "processing-job",
    "training-job",
    "model-card-job",
    "drift-job",
    "attribution-job",
    "quality-job",
)


def endpoint_name(prefix: str) -> str:
    return f"{prefix}-endpoint"


def drift_silent_alarm_name(prefix: str) -> str:
    return f"{endpoint_name(prefix)}-{DRIFT_SILENT_ALARM}"


def silent_alarm_names(prefix: str) -> tuple[str, ...]:
    """The endpoint's alarms that report monitoring's silence, not the model's behaviour."""
    return tuple(f"{endpoint_name(prefix)}-{suffix}" for suffix in SILENT_ALARMS)


def endpoint_alarm_name(prefix: str, alarm: EndpointAlarm) -> str:
    # Starts with the endpoint name, so one AlarmNamePrefix finds all of an endpoint's alarms.
    return f"{endpoint_name(prefix)}-{alarm}"


def sagemaker_arn(partition: str, region: str, account_id: str, resource: str) -> str:
    return f"arn:{partition}:sagemaker:{region}:{account_id}:{resource}"


def bucket_name(prefix: str, purpose: BucketPurpose, account_id: str, region: str) -> str:
    return f"{prefix}-{purpose}-{account_id}-{region}"


@dataclass(frozen=True)
class Naming:
    prefix: str
    region: str
    partition: str

    def bucket(self, purpose: BucketPurpose, account_id: pulumi.Input[str]) -> pulumi.Output[str]:
        return pulumi.Output.from_input(account_id).apply(
            lambda account: bucket_name(self.prefix, purpose, account, self.region)
        )

    def bucket_arn(self, bucket_name: pulumi.Input[str]) -> pulumi.Output[str]:
        return pulumi.Output.concat(f"arn:{self.partition}:s3:::", bucket_name)

    def role(self, purpose: str) -> str:
        return f"{self.prefix}-{purpose}"

    @property
    def training_pipeline(self) -> str:
        return f"{self.prefix}-training"

    @property
    def model_package_group(self) -> str:
        return f"{self.prefix}-models"

    def model_package_group_arn(self, account_id: str) -> str:
        return sagemaker_arn(
            self.partition,
            self.region,
            account_id,
            f"model-package-group/{self.model_package_group}",
        )

    def model_package_arn(self, account_id: str, version: int) -> str:
        return sagemaker_arn(
            self.partition,
            self.region,
            account_id,
            f"model-package/{self.model_package_group}/{version}",
        )

    def served_model(self, model: ModelRef, account_id: str) -> str:
        """The served model as the drift job finds its baseline: package ARN or archive URI
        (a version in this stack's own registry; a shared registry names its own ARNs)."""
        if model.package_version is not None:
            return self.model_package_arn(account_id, model.package_version)
        return model.package_arn or model.data_uri or ""

    @property
    def retraining_schedule(self) -> str:
        return f"{self.prefix}-retraining"

    @property
    def endpoint(self) -> str:
        return endpoint_name(self.prefix)

    def endpoint_alarm(self, alarm: EndpointAlarm) -> str:
        return endpoint_alarm_name(self.prefix, alarm)

    def capture_uri(self, capture_bucket: str, endpoint: str | None = None) -> str:
        """The primary variant's data capture: SageMaker writes
        <destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/ under the capture prefix."""
        name = endpoint or self.endpoint
        return f"s3://{capture_bucket}/{CapturePrefix.DATA_CAPTURE}{name}/{Variant.PRIMARY}/"

    def ground_truth_uri(self, capture_bucket: str, endpoint: str | None = None) -> str:
        """Where labels for the endpoint's predictions go: <this>/yyyy/mm/dd/hh/*.jsonl."""
        name = endpoint or self.endpoint
        return f"s3://{capture_bucket}/{CapturePrefix.GROUND_TRUTH}{name}/"

    @property
    def endpoint_log_group(self) -> str:
        return f"{ENDPOINT_LOG_GROUPS}/{self.endpoint}"

    @property
    def alerts_topic(self) -> str:
        return f"{self.prefix}-alerts"

    @property
    def drift_pipeline(self) -> str:
        return f"{self.prefix}-drift"

    @property
    def drift_schedule(self) -> str:
        return f"{self.prefix}-drift"

    @property
    def drift_alarm(self) -> str:
        return f"{self.endpoint}-drift"

    @property
    def quality_pipeline(self) -> str:
        return f"{self.prefix}-quality"

    @property
    def quality_schedule(self) -> str:
        return f"{self.prefix}-quality"

    @property
    def quality_alarm(self) -> str:
        return f"{self.endpoint}-{QUALITY_ALARM}"

    @property
    def batch_pipeline(self) -> str:
        return f"{self.prefix}-batch"

    @property
    def batch_schedule(self) -> str:
        return f"{self.prefix}-batch"

    def batch_input_uri(self, data_bucket: str) -> str:
        return f"s3://{data_bucket}/{BATCH_INPUT_PREFIX}"

    def batch_output_uri(self, artifacts_bucket: str) -> str:
        """Each run writes below <this>/<execution id>/ (pipelines/batch_pipeline.py)."""
        return f"s3://{artifacts_bucket}/{BATCH_OUTPUT_PREFIX}"

    def batch_capture_uri(self, capture_bucket: str) -> str:
        """DataCaptureConfig's DestinationS3Uri: SageMaker adds input/ and output/ below."""
        return f"s3://{capture_bucket}/{BATCH_CAPTURE_PREFIX}{self.batch_pipeline}"

    @property
    def model_card_prefix(self) -> str:
        """Model cards are named <group>-<pipeline execution id>, one per registration."""
        return f"{self.model_package_group}-"

    @property
    def dashboard(self) -> str:
        return self.prefix

    @property
    def retrain_rule(self) -> str:
        return f"{self.prefix}-retrain-on-drift"

    @property
    def kms_alias(self) -> str:
        return f"alias/{self.prefix}"

    @property
    def metrics_namespace(self) -> str:
        return f"MLOpsKit/{self.prefix}"
