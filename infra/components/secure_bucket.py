"""One S3 bucket with every guardrail the kit requires, as a single component."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.policies import Statement
from infra.policies.bucket import secure_bucket_policy


@dataclass(frozen=True)
class Lifecycle:
    noncurrent_version_expiration_days: int
    abort_incomplete_multipart_upload_days: int
    current_version_expiration_days: int | None = None


@dataclass(frozen=True)
class SecureBucketArgs:
    bucket_name: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    lifecycle: Lifecycle
    force_destroy: bool
    protect: bool
    # None only for the access-log bucket itself: S3 advises against logging a log bucket
    # into itself (every delivery would create another log record).
    access_log_bucket: pulumi.Input[str] | None
    access_log_prefix: str = ""
    extra_policy_statements: Sequence[pulumi.Input[Statement]] = field(default_factory=tuple)


class SecureBucket(pulumi.ComponentResource):
    """SSE-KMS with bucket key, versioning, public access blocked, TLS-only policy,
    server access logging and lifecycle housekeeping."""

    bucket: aws.s3.Bucket
    name: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: SecureBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlopskit:storage:SecureBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.bucket = aws.s3.Bucket(
            name,
            bucket=args.bucket_name,
            force_destroy=args.force_destroy,
            # protect blocks `pulumi destroy` and replacements; retain_on_delete keeps the
            # data in AWS even if the resource is removed from the program.
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.protect, retain_on_delete=args.protect
            ),
        )
        bucket_id = self.bucket.id

        # ACLs off: access is decided by policies alone (required for policy-based log delivery).
        ownership = aws.s3.BucketOwnershipControls(
            name,
            bucket=bucket_id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        public_access = aws.s3.BucketPublicAccessBlock(
            name,
            bucket=bucket_id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        versioning = aws.s3.BucketVersioning(
            name,
            bucket=bucket_id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                status="Enabled"
            ),
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            name,
            bucket=bucket_id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms",
                        kms_master_key_id=args.kms_key_arn,
                    ),
                    # One data key per bucket instead of per object: far fewer KMS calls.
                    bucket_key_enabled=True,
                )
            ],
            opts=child,
        )
        policy = pulumi.Output.all(
            self.bucket.arn, args.kms_key_arn, *args.extra_policy_statements
        ).apply(
            lambda values: json.dumps(
                secure_bucket_policy(
                    bucket_arn=values[0], kms_key_arn=values[1], extra_statements=values[2:]
                )
            )
        )
        aws.s3.BucketPolicy(
            name,
            bucket=bucket_id,
            policy=policy,
            # S3 rejects a policy write while the public access block is still being applied.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access, ownership]),
        )
        if args.access_log_bucket is not None:
            aws.s3.BucketLogging(
                name,
                bucket=bucket_id,
                target_bucket=args.access_log_bucket,
                target_prefix=args.access_log_prefix,
                target_object_key_format=aws.s3.BucketLoggingTargetObjectKeyFormatArgs(
                    partitioned_prefix=aws.s3.BucketLoggingTargetObjectKeyFormatPartitionedPrefixArgs(
                        partition_date_source="EventTime"
                    )
                ),
                opts=child,
            )
        aws.s3.BucketLifecycleConfiguration(
            name,
            bucket=bucket_id,
            rules=_lifecycle_rules(args.lifecycle),
            # Noncurrent-version rules only make sense once versioning is on.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )

        self.name = self.bucket.bucket
        self.arn = self.bucket.arn
        self.register_outputs({"name": self.name, "arn": self.arn})


def _lifecycle_rules(
    lifecycle: Lifecycle,
) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
    whole_bucket = aws.s3.BucketLifecycleConfigurationRuleFilterArgs()
    rules = [
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="housekeeping",
            status="Enabled",
            filter=whole_bucket,
            abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=lifecycle.abort_incomplete_multipart_upload_days
            ),
            noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=lifecycle.noncurrent_version_expiration_days
            ),
            # S3 forbids Days and ExpiredObjectDeleteMarker in one rule; this one cleans up
            # delete markers left behind once their noncurrent versions are gone.
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                expired_object_delete_marker=True
            ),
        )
    ]
    if lifecycle.current_version_expiration_days is not None:
        rules.append(
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-current-versions",
                status="Enabled",
                filter=whole_bucket,
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                    days=lifecycle.current_version_expiration_days
                ),
            )
        )
    return rules
