"""A training pipeline spec with placeholder resources, to build definitions without a plan."""

from __future__ import annotations

from pipelines.spec import ApprovalStatus, CodeLocation, TrainingPipelineSpec, TuningSpec

KEY = "arn:aws:kms:eu-west-1:123456789012:key/k"
ARTIFACTS = "churn-t-artifacts"


def pipeline_spec(tuning: TuningSpec | None) -> TrainingPipelineSpec:
    return TrainingPipelineSpec(
        region="eu-west-1",
        pipeline_name="churn-t-training",
        model_package_group="churn-t-models",
        processing_role_arn="arn:aws:iam::123456789012:role/churn-t-processing-job",
        training_role_arn="arn:aws:iam::123456789012:role/churn-t-training-job",
        kms_key_arn=KEY,
        data_bucket="churn-t-data",
        artifacts_bucket=ARTIFACTS,
        code=CodeLocation(f"s3://{ARTIFACTS}/code/sourcedir-1.tar.gz", f"s3://{ARTIFACTS}/r.py"),
        default_input_uri="s3://churn-t-data/raw/mlc_churn/v1",
        image_uri="141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3",
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
    )
