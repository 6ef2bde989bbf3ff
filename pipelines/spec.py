"""What a training pipeline definition is built from: plain, resolved values only.

The Pulumi component fills a ``TrainingPipelineSpec`` from stack settings and resource
outputs; the builder turns it into a definition. Nothing here knows about Pulumi or AWS
clients, so the same spec can be built in a test, a preview, or a CI check.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from training import explain
from training.metric_names import METRIC_KEYS
from training.paths import GIT_SHA_ENV
from training.search_space import Range


class Step(enum.StrEnum):
    PROCESS = "ValidateAndSplit"
    TRAIN = "Train"
    # In place of Train when the stack tunes: a Bayesian search of training jobs.
    TUNE = "Tune"
    EVALUATE = "Evaluate"
    CHECK = "CheckMetric"
    CHECK_BIAS = "CheckBias"
    REGISTER = "RegisterModel"
    PUBLISH_CARD = "PublishModelCard"
    FAIL = "MetricBelowThreshold"
    FAIL_BIAS = "BiasLimitExceeded"


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
# The training toolkit pip-installs the bundle's requirements.txt, dependencies and all. The
# bundled wheels are the whole closure beyond the image (training.bootstrap installs them
# with --no-deps for processing jobs), and smclarify declares s3fs, which the kit leaves
# out: pip takes PIP_NO_DEPS as --no-deps, so training jobs install exactly the wheels too.
TRAINING_JOB_ENVIRONMENT = {"PIP_NO_DEPS": "1"}
CONTENT_TYPES = ("text/csv", "application/json", "application/x-npy")
RESPONSE_TYPES = ("application/json", "text/csv")
SPLITS = ("train", "validation", "test")

# Where training jobs write model archives, in the artifacts bucket.
MODELS_KEY_PREFIX = "models"
# What the evaluate step writes into its output folder (training/evaluate.py), as the
# condition steps and the registry read it.
EVALUATION_FILE = "evaluation.json"
GATES_FILE = "gates.json"
BIAS_REPORT_FILE = "bias/analysis.json"
EXPLAINABILITY_REPORT_FILE = "explainability/analysis.json"
MODEL_CARD_FILE = "model_card.json"
# The registered version's customer metadata key holding its model card's S3 URI.
MODEL_CARD_METADATA_KEY = "mlops:model-card"


@dataclass(frozen=True)
class Facet:
    """A bias facet as the jobs take it: ``--facet name=value1,value2``."""

    name: str
    sensitive_values: tuple[str, ...]

    @property
    def argument(self) -> str:
        return f"{self.name}={','.join(self.sensitive_values)}"


@dataclass(frozen=True)
class BiasSpec:
    """Facets and limits (Clarify metric name -> largest allowed deviation), for the jobs."""

    facets: tuple[Facet, ...] = ()
    limits: tuple[tuple[str, float], ...] = ()

    def arguments(self) -> list[str]:
        """``--facet`` and ``--bias-limit`` flags, limits sorted so definitions are stable."""
        flags: list[str] = []
        for facet in self.facets:
            flags += ["--facet", facet.argument]
        for metric, limit in sorted(self.limits):
            flags += ["--bias-limit", f"{metric}={limit!r}"]
        return flags


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

    @property
    def training_environment(self) -> dict[str, str]:
        return {**self.job_environment, **TRAINING_JOB_ENVIRONMENT}


def job_environment(commit: str | None) -> dict[str, str]:
    """What every job gets, so its manifest names the commit of the code it ran."""
    return {} if commit is None else {GIT_SHA_ENV: commit}


@dataclass(frozen=True)
class TuningSpec:
    """A tuning step's search: its training jobs in all and at once, and their ranges."""

    max_jobs: int
    max_parallel_jobs: int
    # SageMaker's TrainingJobEarlyStoppingType: "Auto" or "Off".
    early_stopping: str
    ranges: tuple[Range, ...]


def objective_metric(metric_name: str) -> str:
    """The metric a tuning job maximises: the one train.py prints for the validation split."""
    return f"validation:{metric_name}"


def metric_regex(metric_name: str) -> str:
    """What picks the metric's value out of train.py's ``validation:<name>=<v>;`` lines.

    train.py prints fixed-point (``:.6f``), never an exponent; the ``;`` right after the
    digits means a value printed any other way (``1e-05``, ``nan``) matches nothing rather
    than a wrong number.
    """
    return f"{objective_metric(metric_name)}=([0-9.]+);"


@dataclass(frozen=True)
class VpcSpec:
    """Subnets and security groups a job runs in: SageMaker's VpcConfig.

    With one, a job's instances get network interfaces in the stack's private subnets and
    reach AWS through its VPC endpoints; a network-isolated job's S3 transfers go through
    the VPC too. None: SageMaker's own network.
    """

    subnets: tuple[str, ...]
    security_group_ids: tuple[str, ...]

    def as_request(self) -> dict[str, list[str]]:
        """The VpcConfig block of a Create*Job request."""
        return {"Subnets": list(self.subnets), "SecurityGroupIds": list(self.security_group_ids)}


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
    # Runs publish_card.py after registration; it calls the SageMaker API, so it has network.
    model_card_role_arn: str
    model_card_prefix: str
    # What the model card calls the model (the stack's service).
    model_name: str
    bias: BiasSpec = BiasSpec()
    explain_rows: int = 500
    background_rows: int = explain.DEFAULT_BACKGROUND_ROWS
    hyperparameters: dict[str, str] = field(default_factory=dict)
    # None: one training job (the Train step); else a tuning step searches these ranges.
    tuning: TuningSpec | None = None
    # Every step's VpcConfig; None: SageMaker's own network.
    vpc: VpcSpec | None = None

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
        return f"s3://{self.artifacts_bucket}/{MODELS_KEY_PREFIX}"
