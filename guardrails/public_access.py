"""no-public-buckets: every bucket blocks public access and refuses plain HTTP."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from guardrails.encryption import BUCKETS
from guardrails.model import Finding, Resource, as_document, as_list, linked, subject

PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
BLOCK_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def _denies_plain_http(policy: Resource) -> bool:
    document = as_document(policy.props.get("policy"))
    if document is None:
        return False
    for statement in as_list(document.get("Statement")):
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Deny":
            continue
        condition = statement.get("Condition")
        bool_test = condition.get("Bool") if isinstance(condition, Mapping) else None
        if (
            isinstance(bool_test, Mapping)
            and str(bool_test.get("aws:SecureTransport")).lower() == "false"
        ):
            return True
    return False


def validate_buckets(resources: Sequence[Resource], params: Mapping[str, Any]) -> list[Finding]:
    buckets = [r for r in resources if r.type in BUCKETS]
    blocked: set[str] = set()
    for block in (r for r in resources if r.type == PUBLIC_ACCESS_BLOCK):
        if all(block.props.get(flag) is True for flag in BLOCK_FLAGS):
            blocked.update(b.urn for b in linked(block, "bucket", buckets, "bucket"))
    tls_only: set[str] = set()
    for policy in (r for r in resources if r.type == BUCKET_POLICY and _denies_plain_http(r)):
        tls_only.update(b.urn for b in linked(policy, "bucket", buckets, "bucket"))

    findings: list[Finding] = []
    for bucket in buckets:
        who = subject(bucket.type, bucket.name)
        if bucket.urn not in blocked:
            findings.append(
                Finding(
                    bucket.urn,
                    bucket.name,
                    f"{who}: buckets must have a BucketPublicAccessBlock with all of "
                    f"{', '.join(BLOCK_FLAGS)} true",
                )
            )
        if bucket.urn not in tls_only:
            findings.append(
                Finding(
                    bucket.urn,
                    bucket.name,
                    f"{who}: buckets must have a BucketPolicy that denies requests with "
                    "aws:SecureTransport false (TLS only)",
                )
            )
    return findings
