"""What the monitoring jobs know about the served model, from a model package or from files.

A model package ARN resolves, with one DescribeModelPackage, to its ``ModelDataUrl`` and the
reports its registration attached: ``ModelMetrics.ModelQuality.Statistics`` (evaluation.json),
``ModelMetrics.Bias.Report`` and ``ModelMetrics.Explainability.Report`` (Clarify's analysis
JSON). Any other source (a model directory, a ``model.tar.gz``, local or ``s3://``) is the
model itself, and its reports, if any, must be named by the caller.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MODEL_PACKAGE_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:([a-z0-9-]+):\d{12}:model-package/.+")


class ServedModelError(Exception):
    """The served model cannot be described; a caller error (exit code 2)."""


@dataclass(frozen=True)
class ServedModel:
    source: str
    # The model archive (or directory) to load; the source itself unless it is a package.
    model_data: str
    quality_statistics: str | None = None
    bias_report: str | None = None
    explainability_report: str | None = None
    package_arn: str | None = None


def is_model_package(source: str) -> bool:
    return MODEL_PACKAGE_ARN.match(source) is not None


def from_description(source: str, described: Mapping[str, Any]) -> ServedModel:
    containers = (described.get("InferenceSpecification") or {}).get("Containers") or []
    urls = [c["ModelDataUrl"] for c in containers if c.get("ModelDataUrl")]
    if not urls:
        raise ServedModelError(f"{source}: the model package has no ModelDataUrl")
    metrics = described.get("ModelMetrics") or {}

    def uri(section: str, report: str) -> str | None:
        value = (metrics.get(section) or {}).get(report) or {}
        return str(value["S3Uri"]) if value.get("S3Uri") else None

    return ServedModel(
        source=source,
        model_data=str(urls[0]),
        quality_statistics=uri("ModelQuality", "Statistics"),
        bias_report=uri("Bias", "Report"),
        explainability_report=uri("Explainability", "Report"),
        package_arn=str(described.get("ModelPackageArn") or source),
    )


def resolve(
    source: str, *, region: str | None = None, endpoint_url: str | None = None
) -> ServedModel:
    """The served model behind ``source``; only a package ARN calls AWS."""
    match = MODEL_PACKAGE_ARN.match(source)
    if match is None:
        return ServedModel(source=source, model_data=source)
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client(
        "sagemaker", region_name=region or match.group(1), endpoint_url=endpoint_url
    )
    try:
        described = client.describe_model_package(ModelPackageName=source)
    except (ClientError, BotoCoreError) as exc:
        raise ServedModelError(f"{source}: cannot describe the model package: {exc}") from None
    return from_description(source, described)
