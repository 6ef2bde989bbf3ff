"""What a training pipeline definition is built from: plain, resolved values only.

The Pulumi component fills a ``TrainingPipelineSpec`` from stack settings and resource
outputs; the builder turns it into a definition. Nothing here knows about Pulumi or AWS
clients, so the same spec can be built in a test, a preview, or a CI check.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from training.metric_names import METRIC_KEYS
from training.paths import GIT_SHA_ENV


class Step(enum.StrEnum):
    PROCESS = "ValidateAndSplit"
    TRAIN = "Train"
    EVALUATE = "Evaluate"
    CHECK = "CheckMetric"
    REGISTER = "RegisterModel"
    FAIL = "MetricBelowThreshold"


class Parameter(enum.StrEnum):
    INPUT_DATA = "InputDataUri"
    PROCESSING_INSTANCE_TYPE = "ProcessingInstanceType"
    TRAINING_INSTANCE_TYPE = "TrainingInstanceType"
    METRIC_THRESHOLD = "MetricThreshold"
    APPROVAL_STATUS = "ModelApprovalStatus"


class ApprovalStatus(enum.StrEnum):
    PENDING = "PendingManualApproval"
    APPROVED = "Approved"
    REJECTED = "Rejected"


# Container paths: where processing jobs find the bundle and write their outputs.
PROCESSING_ROOT = "/opt/ml/processing"
BUNDLE_DIR = f"{PROCESSING_ROOT}/input/bundle"
# Training jobs get the bundle as the "code" channel; the training toolkit unpacks a local
# sourcedir.tar.gz itself (sagemaker_training.files.download_and_extract), so network-
# isolated jobs never fetch code from S3.
TRAINING_CODE_CHANNEL = "code"
SOURCEDIR_NAME = "sourcedir.tar.gz"
RUNNER_NAME = "bundle_runner.py"
TRAINING_SUBMIT_DIRECTORY = f"/opt/ml/input/data/{TRAINING_CODE_CHANNEL}/{SOURCEDIR_NAME}"
# The model archive carries its handler as code/inference.py (see training.train). At start
# the image's server pip-installs that folder as a package (sagemaker-containers'
# modules.import_module). By default pip builds it in an isolated environment, which needs
# setuptools from an index: in a network-isolated container the endpoint never comes up.
# So pip stays offline and builds with the image's own setuptools. pip reads
# PIP_NO_BUILD_ISOLATION inverted: "false" turns build isolation off.
SERVING_ENVIRONMENT = {
    "SAGEMAKER_PROGRAM": "inference.py",
    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
    "PIP_NO_INDEX": "1",
    "PIP_NO_BUILD_ISOLATION": "false",
}
CONTENT_TYPES = ("text/csv", "application/json", "application/x-npy")
RESPONSE_TYPES = ("application/json", "text/csv")
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class CodeLocation:
    """Where Pulumi uploaded the code, by content hash: the URIs change exactly when it does."""

    sourcedir_uri: str
    runner_uri: str
    # The last commit that changed the bundled code (None outside a git checkout).
    commit: str | None = None

    @property
    def job_environment(self) -> dict[str, str]:
        return job_environment(self.commit)


def job_environment(commit: str | None) -> dict[str, str]:
    """What every job gets, so its manifest names the commit of the code it ran."""
    return {} if commit is None else {GIT_SHA_ENV: commit}


@dataclass(frozen=True)
class TrainingPipelineSpec:
    region: str
    pipeline_name: str
    model_package_group: str
    processing_role_arn: str
    training_role_arn: str
    kms_key_arn: str
    data_bucket: str
    artifacts_bucket: str
    code: CodeLocation
    default_input_uri: str
    image_uri: str
    processing_instance_type: str
    training_instance_type: str
    serving_instance_types: tuple[str, ...]
    training_instance_count: int
    max_runtime_seconds: int
    volume_size_gb: int
    metric_name: str
    metric_threshold: float
    approval_status: ApprovalStatus
    hyperparameters: dict[str, str] = field(default_factory=dict)

    @property
    def metric_json_path(self) -> str:
        """Where the metric sits in evaluation.json (Model Monitor's model-quality layout)."""
        return f"binary_classification_metrics.{METRIC_KEYS[self.metric_name]}.value"

    @property
    def processed_prefix(self) -> str:
        return f"s3://{self.data_bucket}/processed"

    @property
    def evaluation_prefix(self) -> str:
        return f"s3://{self.artifacts_bucket}/evaluation"

    @property
    def models_prefix(self) -> str:
        return f"s3://{self.artifacts_bucket}/models"
