"""Register a trained model the way the pipeline's RegisterModel step does, then approve it.

In the cloud the training pipeline registers (`ModelBuilder.register` in a `ModelStep`)
and its PublishModelCard step publishes the card; there is no pipeline runtime here, so
this makes the same CreateModelPackage request (same image, environment, content types,
model-quality, bias and explainability reports, model-card metadata) against moto, then
runs publish_card in-process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from inference.packaging import build_model_archive
from infra.naming import BucketPurpose
from pipelines.spec import CONTENT_TYPES, RESPONSE_TYPES, SERVING_ENVIRONMENT
from promotion.aws import Clients, Stage
from promotion.registry import APPROVED, MODEL_CARD
from training import evaluate, publish_card
from training.packaging import FRAMEWORK_VERSION

PENDING = "PendingManualApproval"


@dataclass(frozen=True)
class Registered:
    arn: str
    model_data_url: str
    archive_sha256: str


def register(
    clients: Clients, stage: Stage, model_dir: Path, evaluation_dir: Path, label: str
) -> Registered:
    """``evaluation_dir``: what the evaluation step wrote (evaluation.json, the bias and
    explainability analyses, model_card.json); each report present is attached."""
    archive = build_model_archive(model_dir, model_dir.parent / "model.tar.gz")
    bucket = stage.bucket(BucketPurpose.ARTIFACTS)
    model_key = f"models/{label}/output/model.tar.gz"
    clients.s3.put_object(Bucket=bucket, Key=model_key, Body=archive.path.read_bytes())
    uploaded: dict[str, str] = {}
    for name in (
        evaluate.EVALUATION_FILE,
        evaluate.BIAS_FILE,
        evaluate.EXPLAINABILITY_FILE,
        evaluate.CARD_FILE,
    ):
        if (evaluation_dir / name).is_file():
            key = f"evaluation/{label}/{name}"
            clients.s3.put_object(Bucket=bucket, Key=key, Body=(evaluation_dir / name).read_bytes())
            uploaded[name] = f"s3://{bucket}/{key}"
    model_data_url = f"s3://{bucket}/{model_key}"

    def report(name: str) -> dict[str, str]:
        return {"ContentType": "application/json", "S3Uri": uploaded[name]}

    metrics: dict[str, object] = {"ModelQuality": {"Statistics": report(evaluate.EVALUATION_FILE)}}
    if evaluate.BIAS_FILE in uploaded:
        metrics["Bias"] = {"Report": report(evaluate.BIAS_FILE)}
    if evaluate.EXPLAINABILITY_FILE in uploaded:
        metrics["Explainability"] = {"Report": report(evaluate.EXPLAINABILITY_FILE)}
    card = uploaded.get(evaluate.CARD_FILE)
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
        ModelMetrics=metrics,
        **({"CustomerMetadataProperties": {MODEL_CARD: card}} if card else {}),
    )
    arn = response["ModelPackageArn"]
    if card:
        publish_card.run(
            publish_card.Options(
                card=card, model_package_arn=arn, card_name=f"{stage.model_package_group}-{label}"
            ),
            log=lambda _: None,
            sagemaker=clients.sagemaker,
            s3=clients.s3,
        )
    return Registered(arn, model_data_url, archive.sha256)


def approve(clients: Clients, arn: str, approver: str, reason: str) -> None:
    """The manual approval a reviewer gives in the registry (staging and prod need one)."""
    described = clients.sagemaker.describe_model_package(ModelPackageName=arn)
    metadata = described.get("CustomerMetadataProperties")
    clients.sagemaker.update_model_package(
        ModelPackageArn=arn,
        ModelApprovalStatus=APPROVED,
        ApprovalDescription=f"{approver}: {reason}",
        # Sent whole, as promotion does: moto replaces the map (dropping the model card's
        # key) when an update leaves it out, where SageMaker keeps it.
        **({"CustomerMetadataProperties": metadata} if metadata else {}),
    )


def _image(region: str) -> str:
    from pipelines import sdk

    return sdk.image_uri(region, FRAMEWORK_VERSION, "inference")
