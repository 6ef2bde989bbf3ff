"""Storage guardrails, checked on the planned resources of every stack."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pulumi
import pulumi_aws as aws
from conftest import BUCKET, KMS_KEY, PlannedStack

from infra.components.storage import Storage, StorageArgs
from infra.config.settings import StorageSettings
from infra.naming import Naming
from infra.plan.mocks import RecordedResource
from infra.plan.project import StackConfig
from infra.plan.runner import plan_config

SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
PUBLIC_ACCESS = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
ALIAS = "aws:kms/alias:Alias"
SECURE_BUCKET = "mlopskit:storage:SecureBucket"


def _buckets(stack: PlannedStack) -> dict[str, RecordedResource]:
    return {b.name.removeprefix("storage-"): b for b in stack.all(BUCKET)}


def test_four_buckets_named_by_service_stack_account_and_region(stack: PlannedStack) -> None:
    names = {purpose: b.inputs["bucket"] for purpose, b in _buckets(stack).items()}
    assert names == {
        purpose: f"churn-{stack.stack}-{purpose}-123456789012-eu-west-1"
        for purpose in ("data", "artifacts", "capture", "access-logs")
    }


def test_kms_key_rotates_has_alias_and_explicit_policy(stack: PlannedStack) -> None:
    key = stack.one(KMS_KEY, "storage")
    assert key.inputs["enableKeyRotation"] is True
    assert stack.one(ALIAS, "storage").inputs["name"] == f"alias/churn-{stack.stack}"

    statements = {s["Sid"]: s for s in stack.document(key)["Statement"]}
    assert set(statements) == {
        "EnableIamPolicies",
        "AllowS3ServerAccessLogDelivery",
        "AllowCloudWatchLogsForStackLogGroups",
        "AllowCloudWatchAlarmsToEncryptedTopic",
    }
    alarms = statements["AllowCloudWatchAlarmsToEncryptedTopic"]
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert set(alarms["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    delivery = statements["AllowS3ServerAccessLogDelivery"]
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    sources = delivery["Condition"]["ArnLike"]["aws:SourceArn"]
    assert sorted(sources) == sorted(
        f"arn:aws:s3:::{b.inputs['bucket']}"
        for purpose, b in _buckets(stack).items()
        if purpose != "access-logs"
    )


def test_every_bucket_uses_sse_kms_with_the_stack_key_and_bucket_key(stack: PlannedStack) -> None:
    key_arn = stack.outputs["kmsKeyArn"]
    for bucket in stack.all(BUCKET):
        (rule,) = stack.sibling(bucket, SSE).inputs["rules"]
        default = rule["applyServerSideEncryptionByDefault"]
        assert default == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key_arn}, bucket.name
        assert rule["bucketKeyEnabled"] is True, bucket.name


def test_every_bucket_is_versioned_private_and_acl_free(stack: PlannedStack) -> None:
    for bucket in stack.all(BUCKET):
        versioning = stack.sibling(bucket, VERSIONING).inputs["versioningConfiguration"]
        assert versioning["status"] == "Enabled", bucket.name
        block = stack.sibling(bucket, PUBLIC_ACCESS).inputs
        for flag in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        ):
            assert block[flag] is True, (bucket.name, flag)
        ownership = stack.sibling(bucket, OWNERSHIP).inputs["rule"]["objectOwnership"]
        assert ownership == "BucketOwnerEnforced", bucket.name


def test_every_bucket_policy_denies_plain_http_and_foreign_encryption(stack: PlannedStack) -> None:
    key_arn = stack.outputs["kmsKeyArn"]
    for bucket in stack.all(BUCKET):
        arn = f"arn:aws:s3:::{bucket.inputs['bucket']}"
        policy = stack.sibling(bucket, BUCKET_POLICY)
        statements = {s["Sid"]: s for s in stack.document(policy)["Statement"]}

        tls = statements["DenyInsecureTransport"]
        assert tls["Effect"] == "Deny" and tls["Principal"] == "*" and tls["Action"] == "s3:*"
        assert tls["Resource"] == [arn, f"{arn}/*"]
        assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        # Only an explicit key header is tested: header-less uploads get the bucket default.
        assert statements["DenyOtherKmsKeys"]["Condition"] == {
            "StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn},
            "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "false"},
        }
        # The policy must be applied after the public access block, or S3 may reject it.
        assert stack.sibling(bucket, PUBLIC_ACCESS).urn in policy.depends_on


def test_data_buckets_log_to_the_access_log_bucket_which_accepts_only_them(
    stack: PlannedStack,
) -> None:
    buckets = _buckets(stack)
    log_bucket = buckets.pop("access-logs")
    for purpose, bucket in buckets.items():
        logging = stack.sibling(bucket, LOGGING).inputs
        assert logging["targetBucket"] == log_bucket.inputs["bucket"]
        assert logging["targetPrefix"] == f"{purpose}/"
    # S3 advises against a log bucket logging into itself (it would log its own deliveries).
    assert not [r for r in stack.children_of(log_bucket.parent) if r.type == LOGGING]

    policy = stack.document(stack.sibling(log_bucket, BUCKET_POLICY))
    (delivery,) = [s for s in policy["Statement"] if s["Sid"] == "AllowS3ServerAccessLogDelivery"]
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert sorted(delivery["Condition"]["ArnLike"]["aws:SourceArn"]) == sorted(
        f"arn:aws:s3:::{b.inputs['bucket']}" for b in buckets.values()
    )


def test_lifecycle_cleans_up_versions_and_uploads(stack: PlannedStack) -> None:
    for bucket in stack.all(BUCKET):
        rules = {r["id"]: r for r in stack.sibling(bucket, LIFECYCLE).inputs["rules"]}
        housekeeping = rules["housekeeping"]
        assert housekeeping["status"] == "Enabled"
        assert housekeeping["noncurrentVersionExpiration"]["noncurrentDays"] >= 1
        assert housekeeping["abortIncompleteMultipartUpload"]["daysAfterInitiation"] >= 1


def _expiry_days(stack: PlannedStack) -> dict[str, int | None]:
    result: dict[str, int | None] = {}
    for purpose, bucket in _buckets(stack).items():
        rules = {r["id"]: r for r in stack.sibling(bucket, LIFECYCLE).inputs["rules"]}
        current = rules.get("expire-current-versions")
        result[purpose] = current["expiration"]["days"] if current else None
    return result


def test_expiry_follows_each_stack_config(plan_of: Callable[[str], PlannedStack]) -> None:
    assert _expiry_days(plan_of("dev")) == {
        "data": 30,
        "artifacts": None,
        "capture": 14,
        "access-logs": 30,
    }
    # prod never expires training data or models; captures and logs are kept far longer.
    assert _expiry_days(plan_of("prod")) == {
        "data": None,
        "artifacts": None,
        "capture": 400,
        "access-logs": 731,
    }


def test_prod_data_is_protected_and_dev_data_is_disposable(
    plan_of: Callable[[str], PlannedStack],
) -> None:
    prod, dev = plan_of("prod"), plan_of("dev")
    for resource in [*prod.all(BUCKET), prod.one(KMS_KEY, "storage")]:
        assert resource.protect and resource.retain_on_delete, resource.name
    for bucket in prod.all(BUCKET):
        assert bucket.inputs["forceDestroy"] is False

    for resource in [*dev.all(BUCKET), dev.one(KMS_KEY, "storage")]:
        assert not resource.protect and not resource.retain_on_delete, resource.name
    for bucket in dev.all(BUCKET):
        assert bucket.inputs["forceDestroy"] is True

    assert prod.one(KMS_KEY, "storage").inputs["deletionWindowInDays"] == 30
    assert dev.one(KMS_KEY, "storage").inputs["deletionWindowInDays"] == 7


def test_bucket_children_hang_off_their_secure_bucket_component(stack: PlannedStack) -> None:
    storage = stack.one("mlopskit:storage:Storage", "storage")
    for component in stack.all(SECURE_BUCKET):
        assert component.parent == storage.urn
        child_types = {r.type for r in stack.children_of(component.urn)}
        assert {BUCKET, SSE, VERSIONING, PUBLIC_ACCESS, OWNERSHIP, BUCKET_POLICY, LIFECYCLE} <= (
            child_types
        )


def test_storage_component_alone_uses_secure_defaults(tmp_path: Path) -> None:
    """The component under mocks on its own, as another program would use it."""

    def program() -> None:
        provider = aws.Provider("aws", region="us-east-1")
        Storage(
            "storage",
            StorageArgs(
                settings=StorageSettings(),
                naming=Naming(prefix="fraud-qa", region="us-east-1", partition="aws"),
                account_id="210987654321",
            ),
            opts=pulumi.ResourceOptions(providers={"aws": provider}),
        )

    config = StackConfig("p", "qa", tmp_path / "Pulumi.qa.yaml", {"aws:region": "us-east-1"}, ())
    planned = PlannedStack(plan_config(config, program=program))

    buckets = planned.all(BUCKET)
    assert sorted(b.inputs["bucket"] for b in buckets) == sorted(
        f"fraud-qa-{p}-210987654321-us-east-1"
        for p in ("data", "artifacts", "capture", "access-logs")
    )
    # Defaults are durable: protected, retained, never force-destroyed, nothing expires.
    for bucket in buckets:
        assert bucket.protect and bucket.retain_on_delete
        assert bucket.inputs["forceDestroy"] is False
        rules = planned.sibling(bucket, LIFECYCLE).inputs["rules"]
        assert [r["id"] for r in rules] == ["housekeeping"]
    assert planned.one(KMS_KEY, "storage").protect
