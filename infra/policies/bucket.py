"""Bucket policies: TLS only, KMS only, (for the log bucket) S3 log delivery, and (with
network.requireS3Endpoint) the in-VPC job roles only through the stack's S3 endpoint."""

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


def endpoint_only_statement(
    bucket_arn: str, endpoint_id: str, principal_arns: Sequence[str]
) -> Statement:
    """Refuses the named in-VPC job roles any access to the bucket that does not come
    through the stack's S3 gateway endpoint, as S3's "Controlling access from VPC endpoints
    with bucket policies" does with aws:SourceVpce (a request from outside the endpoint
    lacks the key, and a negated operator is then true, so it is denied too).

    It names roles instead of denying everyone: Pulumi, the mlops CLI, SageMaker Pipelines
    evaluating a condition step's property file (as the pipeline role) and the hosting
    platform writing data capture all reach S3 from outside the VPC, and would be locked
    out. aws:PrincipalArn is the role's ARN for its sessions (IAM's global condition keys:
    "For IAM roles, the request context returns the ARN of the role"), so every job of a
    listed role is held to the endpoint, whatever its session name."""
    if not endpoint_id.startswith("vpce-"):
        raise ValueError(
            f"an S3 endpoint ID looks like vpce-0123456789abcdef0, not {endpoint_id!r}"
        )
    if not principal_arns:
        raise ValueError("endpoint_only_statement needs at least one role ARN to hold to it")
    return {
        "Sid": "DenyJobRolesOutsideTheS3Endpoint",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {
            "StringNotEquals": {"aws:SourceVpce": endpoint_id},
            "ArnEquals": {"aws:PrincipalArn": list(principal_arns)},
        },
    }
