"""Register a trained model the way the pipeline's RegisterModel step does, then approve it.

In the cloud the training pipeline registers (`ModelBuilder.register` in a `ModelStep`);
there is no pipeline runtime here, so this makes the same CreateModelPackage request
(same image, environment, content types and model-quality metrics) against moto.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from inference.packaging import build_model_archive
from infra.naming import BucketPurpose
from pipelines.spec import CONTENT_TYPES, RESPONSE_TYPES, SERVING_ENVIRONMENT
from promotion.aws import Clients, Stage
from promotion.registry import APPROVED
from training.packaging import FRAMEWORK_VERSION

PENDING = "PendingManualApproval"


@dataclass(frozen=True)
class Registered:
    arn: str
    model_data_url: str
    archive_sha256: str


def register(
    clients: Clients, stage: Stage, model_dir: Path, evaluation: Path, label: str
) -> Registered:
    archive = build_model_archive(model_dir, model_dir.parent / "model.tar.gz")
    bucket = stage.bucket(BucketPurpose.ARTIFACTS)
    model_key = f"models/{label}/output/model.tar.gz"
    evaluation_key = f"evaluation/{label}/evaluation.json"
    clients.s3.put_object(Bucket=bucket, Key=model_key, Body=archive.path.read_bytes())
    clients.s3.put_object(Bucket=bucket, Key=evaluation_key, Body=evaluation.read_bytes())
    model_data_url = f"s3://{bucket}/{model_key}"
    response = clients.sagemaker.create_model_package(
        ModelPackageGroupName=stage.model_package_group,
        ModelPackageDescription=f"{label}: trained on this machine by the demo",
        ModelApprovalStatus=PENDING,
        InferenceSpecification={
            "Containers": [
                {
                    "Image": _image(stage.settings.region),
                    "ModelDataUrl": model_data_url,
                    "Environment": dict(SERVING_ENVIRONMENT),
                }
            ],
            "SupportedContentTypes": list(CONTENT_TYPES),
            "SupportedResponseMIMETypes": list(RESPONSE_TYPES),
        },
        ModelMetrics={
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"s3://{bucket}/{evaluation_key}",
                }
            }
        },
    )
    return Registered(response["ModelPackageArn"], model_data_url, archive.sha256)


def approve(clients: Clients, arn: str, approver: str, reason: str) -> None:
    """The manual approval a reviewer gives in the registry (staging and prod need one)."""
    clients.sagemaker.update_model_package(
        ModelPackageArn=arn,
        ModelApprovalStatus=APPROVED,
        ApprovalDescription=f"{approver}: {reason}",
    )


def _image(region: str) -> str:
    from pipelines import sdk

    return sdk.image_uri(region, FRAMEWORK_VERSION, "inference")
