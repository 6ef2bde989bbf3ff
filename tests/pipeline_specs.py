"""Pipeline specs with placeholder resources, to build definitions without a plan."""

from __future__ import annotations

from inference.batch_contract import BadRows
from pipelines.batch_pipeline import BatchPipelineSpec, TransformSpec
from pipelines.drift_pipeline import AttributionSpec, DriftPipelineSpec
from pipelines.quality_pipeline import QualityPipelineSpec
from pipelines.spec import (
    ApprovalStatus,
    BiasSpec,
    CodeLocation,
    Facet,
    TrainingPipelineSpec,
    TuningSpec,
    VpcSpec,
)

KEY = "arn:aws:kms:eu-west-1:123456789012:key/k"
ARTIFACTS = "churn-t-artifacts"
ACCOUNT_ROLE = "arn:aws:iam::123456789012:role/churn-t"
IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
CODE = CodeLocation(f"s3://{ARTIFACTS}/code/sourcedir-1.tar.gz", f"s3://{ARTIFACTS}/r.py")
PACKAGE = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-t-models/3"
CAPTURE = "s3://churn-t-capture/datacapture/churn-t/AllTraffic/"
REPORTS = "s3://churn-t-capture/monitoring/churn-t"


def pipeline_spec(tuning: TuningSpec | None, vpc: VpcSpec | None = None) -> TrainingPipelineSpec:
    return TrainingPipelineSpec(
        region="eu-west-1",
        pipeline_name="churn-t-training",
        model_package_group="churn-t-models",
        processing_role_arn="arn:aws:iam::123456789012:role/churn-t-processing-job",
        training_role_arn="arn:aws:iam::123456789012:role/churn-t-training-job",
        kms_key_arn=KEY,
        data_bucket="churn-t-data",
        artifacts_bucket=ARTIFACTS,
        code=CODE,
        default_input_uri="s3://churn-t-data/raw/mlc_churn/v1",
        image_uri=IMAGE,
        processing_instance_type="ml.m5.large",
        training_instance_type="ml.m5.large",
        serving_instance_types=("ml.m5.large",),
        training_instance_count=1,
        max_runtime_seconds=3600,
        volume_size_gb=30,
        metric_name="f1",
        metric_threshold=0.5,
        approval_status=ApprovalStatus.PENDING,
        model_card_role_arn="arn:aws:iam::123456789012:role/churn-t-model-card-job",
        model_card_prefix="churn-t-models-",
        model_name="churn",
        hyperparameters={"learning_rate": "0.1", "max_iter": "200", "seed": "42"},
        tuning=tuning,
        vpc=vpc,
    )


def drift_spec(instance_count: int = 1, vpc: VpcSpec | None = None) -> DriftPipelineSpec:
    """The drift pipeline with its attribution step."""
    return DriftPipelineSpec(
        region="eu-west-1",
        pipeline_name="churn-t-drift",
        role_arn=f"{ACCOUNT_ROLE}-drift-job",
        kms_key_arn=KEY,
        artifacts_bucket=ARTIFACTS,
        capture_uri=CAPTURE,
        report_prefix=REPORTS,
        code=CODE,
        image_uri=IMAGE,
        instance_type="ml.m5.large",
        volume_size_gb=30,
        max_runtime_seconds=7200,
        endpoint_name="churn-t",
        baseline=PACKAGE,
        metrics_namespace="MLOpsKit/churn-t",
        psi_threshold=0.2,
        window_hours=24,
        attribution=AttributionSpec(
            role_arn=f"{ACCOUNT_ROLE}-attribution-job",
            ndcg_threshold=0.9,
            max_rows=200,
            background_rows=50,
        ),
        instance_count=instance_count,
        vpc=vpc,
    )


def quality_spec(instance_count: int = 1, vpc: VpcSpec | None = None) -> QualityPipelineSpec:
    return QualityPipelineSpec(
        region="eu-west-1",
        pipeline_name="churn-t-quality",
        role_arn=f"{ACCOUNT_ROLE}-quality-job",
        kms_key_arn=KEY,
        artifacts_bucket=ARTIFACTS,
        capture_uri=CAPTURE,
        ground_truth_uri="s3://churn-t-capture/groundtruth/churn-t/",
        report_prefix=REPORTS,
        code=CODE,
        image_uri=IMAGE,
        instance_type="ml.m5.large",
        volume_size_gb=30,
        max_runtime_seconds=7200,
        endpoint_name="churn-t",
        baseline=PACKAGE,
        metrics_namespace="MLOpsKit/churn-t",
        window_hours=24,
        label_delay_hours=24,
        alpha=0.01,
        min_labels=200,
        min_drop=0.02,
        bias=BiasSpec((Facet("state", ("CA",)),), ()),
        instance_count=instance_count,
        vpc=vpc,
    )


def batch_spec(bad_rows: BadRows, vpc: VpcSpec | None = None) -> BatchPipelineSpec:
    """ERRORS adds the split step after the transform; FAIL has the transform alone."""
    return BatchPipelineSpec(
        region="eu-west-1",
        pipeline_name="churn-t-batch",
        role_arn=f"{ACCOUNT_ROLE}-execution",
        kms_key_arn=KEY,
        artifacts_bucket=ARTIFACTS,
        model_name="churn-t-batch-model",
        input_uri="s3://churn-t-data/batch/input/",
        output_uri=f"s3://{ARTIFACTS}/batch/output/",
        transform=TransformSpec(
            instance_type="ml.m5.large",
            instance_count=1,
            max_payload_mb=6,
            max_concurrent_transforms=0,
            content_type="text/csv",
            bad_rows=bad_rows,
        ),
        code=CODE,
        image_uri=IMAGE,
        split_instance_type="ml.t3.medium",
        volume_size_gb=30,
        max_runtime_seconds=3600,
        vpc=vpc,
    )
