"""The stack's KMS key policy."""

from __future__ import annotations

from collections.abc import Sequence

from infra.policies import Document, Statement, document


def key_policy(
    *,
    partition: str,
    region: str,
    account_id: str,
    log_source_bucket_arns: Sequence[str],
    log_group_arn_patterns: Sequence[str],
    extra_statements: Sequence[Statement] = (),
) -> Document:
    # In a key policy, "Resource": "*" means "this key".
    return document(
        {
            # AWS's default statement: without it the key can become unmanageable. It does
            # not grant use by itself; IAM policies (like the execution role's) must still
            # name this key.
            "Sid": "EnableIamPolicies",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            # The access-log bucket is SSE-KMS too; S3's log delivery needs a data key.
            "Sid": "AllowS3ServerAccessLogDelivery",
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": "kms:GenerateDataKey",
            "Resource": "*",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account_id},
                "ArnLike": {"aws:SourceArn": list(log_source_bucket_arns)},
            },
        },
        {
            # Log groups this stack creates (endpoint and kit logs) are encrypted with it.
            # AWS's documented statement also lists kms:Describe*, but no Describe action
            # carries an encryption context, so under this condition it never applies.
            "Sid": "AllowCloudWatchLogsForStackLogGroups",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.amazonaws.com"},
            "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
            "Resource": "*",
            "Condition": {
                "ArnLike": {"kms:EncryptionContext:aws:logs:arn": list(log_group_arn_patterns)}
            },
        },
        {
            # Alarms publish to the stack's KMS-encrypted alerts topic; AWS documents exactly
            # this grant for it. Which alarms may publish is the topic policy's job.
            "Sid": "AllowCloudWatchAlarmsToEncryptedTopic",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
        },
        *extra_statements,
    )
