"""Storage for one ML service: a customer-managed KMS key and four secure buckets."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components.secure_bucket import Lifecycle, SecureBucket, SecureBucketArgs
from infra.config.settings import StorageSettings
from infra.naming import ENDPOINT_LOG_GROUPS, BucketPurpose, Naming
from infra.policies import Statement
from infra.policies.bucket import endpoint_only_statement, log_delivery_statement
from infra.policies.key import key_policy
from infra.policies.sharing import artifacts_read_statement, key_decrypt_statement

# Buckets whose server access logs go to the access-log bucket.
LOGGED_PURPOSES = (BucketPurpose.DATA, BucketPurpose.ARTIFACTS, BucketPurpose.CAPTURE)


@dataclass(frozen=True)
class EndpointOnly:
    """Roles the data buckets serve only through one S3 gateway endpoint (aws:SourceVpce)."""

    endpoint_id: pulumi.Input[str]
    role_arns: pulumi.Input[Sequence[str]]


@dataclass(frozen=True)
class StorageArgs:
    settings: StorageSettings
    naming: Naming
    account_id: pulumi.Input[str]
    # Roles in other accounts that may read model archives (a shared tooling registry).
    consumer_role_arns: Sequence[str] = ()
    # network.requireS3Endpoint: the in-VPC job roles reach the buckets only through it.
    endpoint_only: EndpointOnly | None = None


class Storage(pulumi.ComponentResource):
    key: aws.kms.Key
    buckets: dict[BucketPurpose, SecureBucket]

    def __init__(
        self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlopskit:storage:Storage", name, None, opts)
        settings, naming = args.settings, args.naming

        names = {purpose: naming.bucket(purpose, args.account_id) for purpose in BucketPurpose}
        logged_arns = pulumi.Output.all(*(naming.bucket_arn(names[p]) for p in LOGGED_PURPOSES))
        log_groups = [
            f"arn:{naming.partition}:logs:{naming.region}:{{account}}:log-group:{pattern}"
            for pattern in (
                f"{ENDPOINT_LOG_GROUPS}/{naming.prefix}-*",
                f"/mlops/{naming.prefix}/*",
            )
        ]

        self.key = aws.kms.Key(
            name,
            description=f"Encrypts data, models, captures and logs of {naming.prefix}",
            enable_key_rotation=True,
            deletion_window_in_days=settings.kms_deletion_window_days,
            policy=pulumi.Output.all(pulumi.Output.from_input(args.account_id), logged_arns).apply(
                lambda values: json.dumps(
                    key_policy(
                        partition=naming.partition,
                        region=naming.region,
                        account_id=values[0],
                        log_source_bucket_arns=values[1],
                        log_group_arn_patterns=[g.format(account=values[0]) for g in log_groups],
                        extra_statements=(
                            [key_decrypt_statement(naming.region, args.consumer_role_arns)]
                            if args.consumer_role_arns
                            else []
                        ),
                    )
                )
            ),
            opts=pulumi.ResourceOptions(
                parent=self, protect=settings.protect_data, retain_on_delete=settings.protect_data
            ),
        )
        aws.kms.Alias(
            name,
            name=naming.kms_alias,
            target_key_id=self.key.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )

        expiry = settings.expiration_days
        expiration_by_purpose = {
            BucketPurpose.DATA: expiry.data,
            BucketPurpose.ARTIFACTS: expiry.artifacts,
            BucketPurpose.CAPTURE: expiry.capture,
            BucketPurpose.ACCESS_LOGS: expiry.access_logs,
        }

        def bucket(
            purpose: BucketPurpose,
            access_log_bucket: pulumi.Input[str] | None,
            extra_policy_statements: list[pulumi.Input[Statement]] | None = None,
        ) -> SecureBucket:
            return SecureBucket(
                f"{name}-{purpose}",
                SecureBucketArgs(
                    bucket_name=names[purpose],
                    kms_key_arn=self.key.arn,
                    lifecycle=Lifecycle(
                        noncurrent_version_expiration_days=settings.noncurrent_version_expiration_days,
                        abort_incomplete_multipart_upload_days=settings.abort_incomplete_multipart_upload_days,
                        current_version_expiration_days=expiration_by_purpose[purpose],
                    ),
                    force_destroy=settings.force_destroy,
                    protect=settings.protect_data,
                    access_log_bucket=access_log_bucket,
                    access_log_prefix=f"{purpose}/",
                    extra_policy_statements=extra_policy_statements or [],
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )

        access_logs = bucket(
            BucketPurpose.ACCESS_LOGS,
            access_log_bucket=None,
            extra_policy_statements=[
                pulumi.Output.all(
                    naming.bucket_arn(names[BucketPurpose.ACCESS_LOGS]),
                    logged_arns,
                    pulumi.Output.from_input(args.account_id),
                ).apply(
                    lambda v: log_delivery_statement(
                        log_bucket_arn=v[0], source_bucket_arns=v[1], account_id=v[2]
                    )
                )
            ],
        )
        self.buckets = {BucketPurpose.ACCESS_LOGS: access_logs}
        for purpose in LOGGED_PURPOSES:
            shared: list[pulumi.Input[Statement]] = []
            if purpose is BucketPurpose.ARTIFACTS and args.consumer_role_arns:
                shared.append(
                    naming.bucket_arn(names[purpose]).apply(
                        lambda arn: artifacts_read_statement(arn, args.consumer_role_arns)
                    )
                )
            if args.endpoint_only is not None:
                only = args.endpoint_only
                shared.append(
                    pulumi.Output.all(
                        naming.bucket_arn(names[purpose]), only.endpoint_id, only.role_arns
                    ).apply(lambda v: endpoint_only_statement(v[0], v[1], v[2]))
                )
            self.buckets[purpose] = bucket(
                purpose, access_log_bucket=access_logs.bucket.id, extra_policy_statements=shared
            )

        self.key_arn = self.key.arn
        self.register_outputs(
            {
                "keyArn": self.key.arn,
                **{f"{purpose.camel}Bucket": b.name for purpose, b in self.buckets.items()},
            }
        )

    def bucket(self, purpose: BucketPurpose) -> SecureBucket:
        return self.buckets[purpose]
