"""Bucket policies: TLS only, KMS only, and (for the log bucket) S3 log delivery."""

from __future__ import annotations

from collections.abc import Sequence

from infra.policies import Document, Statement, document


def secure_bucket_policy(
    *,
    bucket_arn: str,
    kms_key_arn: str,
    extra_statements: Sequence[Statement] = (),
) -> Document:
    objects = f"{bucket_arn}/*"

    def deny_every_request(sid: str, condition: dict[str, dict[str, str]]) -> Statement:
        return {
            "Sid": sid,
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, objects],
            "Condition": condition,
        }

    return document(
        deny_every_request("DenyInsecureTransport", {"Bool": {"aws:SecureTransport": "false"}}),
        deny_every_request("DenyOutdatedTls", {"NumericLessThan": {"s3:TlsVersion": "1.2"}}),
        # Uploads without an encryption header get the bucket default (this stack's key);
        # an explicit header must not downgrade to SSE-S3 or point at another key. Each deny
        # tests its header only when present (Null false): a negated operator, or an
        # ...IfExists one, is true for an absent key, which would deny every header-less
        # upload, S3's own access-log delivery among them.
        {
            "Sid": "DenyNonKmsEncryptionHeader",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": objects,
            "Condition": {
                "StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"},
                "Null": {"s3:x-amz-server-side-encryption": "false"},
            },
        },
        {
            "Sid": "DenyOtherKmsKeys",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": objects,
            "Condition": {
                "StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": kms_key_arn},
                "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "false"},
            },
        },
        *extra_statements,
    )


def log_delivery_statement(
    *, log_bucket_arn: str, source_bucket_arns: Sequence[str], account_id: str
) -> Statement:
    """Lets S3 server access logging write into the log bucket, only for our own buckets."""
    return {
        "Sid": "AllowS3ServerAccessLogDelivery",
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": f"{log_bucket_arn}/*",
        "Condition": {
            "ArnLike": {"aws:SourceArn": list(source_bucket_arns)},
            "StringEquals": {"aws:SourceAccount": account_id},
        },
    }
