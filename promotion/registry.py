"""The model registry as promotion reads and writes it: model packages and their records."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.config.validators import MODEL_PACKAGE_ARN

APPROVED = "Approved"
REJECTED = "Rejected"
# Customer metadata keys the kit writes; SageMaker allows 50 keys of up to 128 characters.
PROMOTED_FROM = "mlops:promoted-from"
MODEL_DATA_SHA256 = "mlops:model-data-sha256"
DECIDED_BY = "mlops:decided-by"
DECIDED_AT = "mlops:decided-at"
DECISION = "mlops:decision"
# The S3 URI of the version's model card (SageMaker's model card JSON); the training
# pipeline's RegisterModel step sets it, and promotion refuses a version without one.
MODEL_CARD = "mlops:model-card"
# botocore's limits: metadata values are short and from a small character set; free text
# (who decided and why) belongs in the 1024-character descriptions.
METADATA_VALUE_LIMIT = 256
DESCRIPTION_LIMIT = 1024
_METADATA_UNSAFE = re.compile(r"[^\w\s.:/=+\-@]", re.UNICODE)


class RegistryError(Exception):
    """The registry does not hold what promotion needs (a package, a version, metrics)."""


@dataclass(frozen=True)
class ModelPackage:
    arn: str
    group: str
    version: int
    status: str
    image: str
    model_data_url: str
    statistics_uri: str | None
    description: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    environment: Mapping[str, str] = field(default_factory=dict)
    content_types: tuple[str, ...] = ()
    response_types: tuple[str, ...] = ()
    # Clarify's bias and explainability analysis.json (ModelMetrics.Bias / .Explainability).
    bias_report: str | None = None
    explainability_report: str | None = None

    @classmethod
    def from_description(cls, described: Mapping[str, Any]) -> ModelPackage:
        spec = described.get("InferenceSpecification") or {}
        containers = spec.get("Containers") or [{}]
        container = containers[0]
        metrics = described.get("ModelMetrics") or {}
        statistics = (metrics.get("ModelQuality") or {}).get("Statistics") or {}
        return cls(
            arn=described["ModelPackageArn"],
            group=described.get("ModelPackageGroupName", ""),
            version=int(described.get("ModelPackageVersion") or 0),
            status=described.get("ModelApprovalStatus", ""),
            image=container.get("Image", ""),
            model_data_url=container.get("ModelDataUrl", ""),
            statistics_uri=statistics.get("S3Uri"),
            description=described.get("ModelPackageDescription", ""),
            metadata=dict(described.get("CustomerMetadataProperties") or {}),
            environment=dict(container.get("Environment") or {}),
            content_types=tuple(spec.get("SupportedContentTypes") or ()),
            response_types=tuple(spec.get("SupportedResponseMIMETypes") or ()),
            bias_report=_report_uri(metrics, "Bias"),
            explainability_report=_report_uri(metrics, "Explainability"),
        )


def _report_uri(metrics: Mapping[str, Any], section: str) -> str | None:
    uri = ((metrics.get(section) or {}).get("Report") or {}).get("S3Uri")
    return str(uri) if uri else None


def group_and_version(arn: str) -> tuple[str, int]:
    match = MODEL_PACKAGE_ARN.match(arn)
    if match is None:
        raise RegistryError(f"{arn!r} is not a versioned model package ARN")
    return match["group"], int(match["version"])


class Registry:
    def __init__(self, sagemaker: Any) -> None:
        self._sagemaker = sagemaker

    def describe(self, arn: str) -> ModelPackage:
        try:
            described = self._sagemaker.describe_model_package(ModelPackageName=arn)
        except self._sagemaker.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("ValidationException", "ResourceNotFound"):
                raise RegistryError(f"no model package {arn} in the registry") from None
            raise
        return ModelPackage.from_description(described)

    def versions(self, group: str, status: str | None = None) -> Iterator[tuple[int, str]]:
        """(version, ARN) of every package in ``group``, optionally with one approval status."""
        request: dict[str, Any] = {"ModelPackageGroupName": group, "MaxResults": 100}
        if status is not None:
            request["ModelApprovalStatus"] = status
        while True:
            page = self._sagemaker.list_model_packages(**request)
            for summary in page.get("ModelPackageSummaryList", []):
                arn = summary["ModelPackageArn"]
                yield int(summary.get("ModelPackageVersion") or group_and_version(arn)[1]), arn
            if not page.get("NextToken"):
                return
            request["NextToken"] = page["NextToken"]

    def latest_approved(self, group: str, below: int | None = None) -> ModelPackage | None:
        candidates = sorted(
            (version, arn)
            for version, arn in self.versions(group, APPROVED)
            if below is None or version < below
        )
        return self.describe(candidates[-1][1]) if candidates else None

    def promoted_copy(self, group: str, source_arn: str, sha256: str) -> ModelPackage | None:
        """The copy in ``group`` of ``source_arn`` with this archive: a promotion's
        idempotency key. The lowest version, so runs that raced into copies all settle on
        the same one."""
        for _, arn in sorted(self.versions(group)):
            package = self.describe(arn)
            if (
                package.metadata.get(PROMOTED_FROM) == source_arn
                and package.metadata.get(MODEL_DATA_SHA256) == sha256
            ):
                return package
        return None

    def create_copy(
        self,
        group: str,
        source: ModelPackage,
        *,
        model_data_url: str,
        statistics_uri: str | None,
        description: str,
        metadata: Mapping[str, str],
        bias_uri: str | None = None,
        explainability_uri: str | None = None,
    ) -> str:
        request: dict[str, Any] = {
            "ModelPackageGroupName": group,
            "ModelPackageDescription": _clip(description, DESCRIPTION_LIMIT),
            "ModelApprovalStatus": APPROVED,
            "InferenceSpecification": {
                "Containers": [
                    {
                        "Image": source.image,
                        "ModelDataUrl": model_data_url,
                        "Environment": dict(source.environment),
                    }
                ],
                "SupportedContentTypes": list(source.content_types),
                "SupportedResponseMIMETypes": list(source.response_types),
            },
            "CustomerMetadataProperties": _metadata(metadata),
        }
        metrics: dict[str, Any] = {}
        if statistics_uri:
            metrics["ModelQuality"] = {"Statistics": _json_source(statistics_uri)}
        if bias_uri:
            metrics["Bias"] = {"Report": _json_source(bias_uri)}
        if explainability_uri:
            metrics["Explainability"] = {"Report": _json_source(explainability_uri)}
        if metrics:
            request["ModelMetrics"] = metrics
        arn: str = self._sagemaker.create_model_package(**request)["ModelPackageArn"]
        return arn

    def record(
        self, package: ModelPackage, status: str, description: str, metadata: Mapping[str, str]
    ) -> None:
        """Set the approval status with who, when and why (merged into existing metadata)."""
        self._sagemaker.update_model_package(
            ModelPackageArn=package.arn,
            ModelApprovalStatus=status,
            ApprovalDescription=_clip(description, DESCRIPTION_LIMIT),
            # Sent whole: some implementations replace the map instead of merging into it.
            CustomerMetadataProperties=_metadata({**package.metadata, **metadata}),
        )


def _json_source(uri: str) -> dict[str, str]:
    return {"ContentType": "application/json", "S3Uri": uri}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _metadata(values: Mapping[str, str]) -> dict[str, str]:
    return {
        key: _METADATA_UNSAFE.sub("-", value)[:METADATA_VALUE_LIMIT] or "-"
        for key, value in values.items()
    }
