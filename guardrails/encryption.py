"""encryption-at-rest: customer-managed KMS wherever the kit's resources keep data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from guardrails.model import Context, Finding, Resource, as_list, is_set, linked, lookup, subject

BUCKET = "aws:s3/bucket:Bucket"
# The V2 token is pulumi-aws 6's name for the same resource; a team's program may still use it.
BUCKETS = (BUCKET, "aws:s3/bucketV2:BucketV2")
SSE_CONFIGS = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
TOPIC = "aws:sns/topic:Topic"
TRAINING_JOB = "aws:sagemaker/trainingJob:TrainingJob"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
SCHEDULE = "aws:scheduler/schedule:Schedule"


def instance_variants(props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Variants on provisioned instances (serverless ones have a serverlessConfig)."""
    variants = [
        *as_list(props.get("productionVariants")),
        *as_list(props.get("shadowProductionVariants")),
    ]
    return [v for v in variants if isinstance(v, Mapping) and not v.get("serverlessConfig")]


def capture_enabled(props: Mapping[str, Any]) -> bool:
    capture = props.get("dataCaptureConfig")
    # SageMaker enables capture when the block is given unless enableCapture says otherwise.
    return isinstance(capture, Mapping) and capture.get("enableCapture") is not False


def validate_resource(resource_type: str, props: Mapping[str, Any], context: Context) -> list[str]:
    who = subject(resource_type, context.name)
    required: list[tuple[str, str]] = []
    if resource_type == TOPIC:
        required = [("kmsMasterKeyId", "SNS topics must be encrypted with a KMS key")]
    elif resource_type == TRAINING_JOB:
        required = [
            ("resourceConfig.volumeKmsKeyId", "training volumes must be KMS-encrypted"),
            ("outputDataConfig.kmsKeyId", "training output must be KMS-encrypted"),
        ]
    elif resource_type == ENDPOINT_CONFIG:
        if capture_enabled(props):
            required.append(("dataCaptureConfig.kmsKeyId", "captured data must be KMS-encrypted"))
        if instance_variants(props):
            required.append(("kmsKeyArn", "instance storage volumes must be KMS-encrypted"))
    elif resource_type == SCHEDULE:
        required = [("kmsKeyArn", "schedule data must be encrypted with a customer KMS key")]
    return [
        f"{who}: {why} ({path} is not set)"
        for path, why in required
        if not is_set(lookup(props, path))
    ]


def _kms_rule(sse: Resource) -> bool:
    for rule in as_list(sse.props.get("rules")):
        default = (
            rule.get("applyServerSideEncryptionByDefault") if isinstance(rule, Mapping) else None
        )
        if isinstance(default, Mapping) and default.get("sseAlgorithm") in KMS_ALGORITHMS:
            return True
    return False


def validate_buckets(resources: Sequence[Resource], params: Mapping[str, Any]) -> list[Finding]:
    """In pulumi-aws 7 a bucket's default encryption is its own resource: look for it."""
    buckets = [r for r in resources if r.type in BUCKETS]
    encrypted: set[str] = set()
    for sse in (r for r in resources if r.type in SSE_CONFIGS and _kms_rule(r)):
        encrypted.update(b.urn for b in linked(sse, "bucket", buckets, "bucket"))
    return [
        Finding(
            b.urn,
            b.name,
            f"{subject(b.type, b.name)}: S3 buckets must default to SSE-KMS (no "
            "BucketServerSideEncryptionConfiguration with sseAlgorithm aws:kms targets it)",
        )
        for b in buckets
        if b.urn not in encrypted
    ]
