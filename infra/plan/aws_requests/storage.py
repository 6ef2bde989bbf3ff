"""S3 and KMS resources -> the requests the provider sends.

Sources (hashicorp/terraform-provider-aws, internal/service/...):
s3/bucket.go (resourceBucketCreate: CreateBucket, then PutBucketTagging; provider versions that
tag on create send the same Tag shape in CreateBucketConfiguration), s3/object.go
(resourceObjectUpload: PutObject), s3/bucket_lifecycle_configuration.go,
s3/bucket_logging.go, s3/bucket_ownership_controls.go, s3/bucket_policy.go,
s3/bucket_public_access_block.go, s3/bucket_server_side_encryption_configuration.go,
s3/bucket_versioning.go (one Put* each), kms/key.go (resourceKeyCreate: CreateKey, then
EnableKeyRotation; ScheduleKeyDeletion on delete), kms/alias.go (CreateAlias).
"""

from __future__ import annotations

from urllib.parse import urlencode

from infra.plan.aws_requests.inputs import Context, Inputs, Params, Request, request

# The key's ID comes back from CreateKey; any ID of the real form stands in for it in the
# requests that follow (a local stack swaps in the real one).
PENDING_KEY_ID = "00000000-0000-0000-0000-000000000000"
# Every resource: the provider (Pulumi AWS v7) lets a resource pick its own region.
REGION = "selects the regional endpoint; never a request field"


def bucket(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    i.provider_only("forceDestroy", "read on delete: the provider empties the bucket first")
    name = ctx.name(i, "bucket")
    create: Params = {
        "Bucket": name,
        "ObjectLockEnabledForBucket": i.get("objectLockEnabled"),
        # us-east-1 is the one region S3 refuses as a LocationConstraint.
        "CreateBucketConfiguration": (
            {"LocationConstraint": ctx.region} if ctx.region != "us-east-1" else None
        ),
    }
    requests = [request("s3", "CreateBucket", create)]
    tags = ctx.tag_list(i)
    if tags:
        requests.append(
            request("s3", "PutBucketTagging", {"Bucket": name, "Tagging": {"TagSet": tags}})
        )
    return requests


def bucket_object(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    tags = ctx.tags(i)
    params: Params = {
        "Bucket": i.get("bucket"),
        "Key": i.get("key"),
        # The file's bytes; the plan records the asset, not its content.
        "Body": b"" if i.get("source") is not None else i.get("content"),
        "ContentType": i.get("contentType"),
        "ServerSideEncryption": i.get("serverSideEncryption"),
        "SSEKMSKeyId": i.get("kmsKeyId"),
        "BucketKeyEnabled": i.get("bucketKeyEnabled"),
        "CacheControl": i.get("cacheControl"),
        "StorageClass": i.get("storageClass"),
        "Tagging": urlencode(sorted(tags.items())) if tags else None,
    }
    return [request("s3", "PutObject", params)]


def lifecycle(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    rules = i.blocks("rules", _lifecycle_rule)
    params = {
        "Bucket": i.get("bucket"),
        "ExpectedBucketOwner": i.get("expectedBucketOwner"),
        "LifecycleConfiguration": {"Rules": rules},
    }
    return [request("s3", "PutBucketLifecycleConfiguration", params)]


def _lifecycle_rule(r: Inputs) -> Params:
    return {
        "ID": r.get("id"),
        "Status": r.get("status"),
        "Filter": r.block(
            "filter",
            lambda f: {
                "Prefix": f.get("prefix"),
                "ObjectSizeGreaterThan": f.get("objectSizeGreaterThan"),
                "ObjectSizeLessThan": f.get("objectSizeLessThan"),
            },
        ),
        "Expiration": r.block(
            "expiration",
            lambda e: {
                "Days": e.get("days"),
                "Date": e.get("date"),
                "ExpiredObjectDeleteMarker": e.get("expiredObjectDeleteMarker"),
            },
        ),
        "NoncurrentVersionExpiration": r.block(
            "noncurrentVersionExpiration",
            lambda e: {
                "NoncurrentDays": e.get("noncurrentDays"),
                "NewerNoncurrentVersions": e.get("newerNoncurrentVersions"),
            },
        ),
        "AbortIncompleteMultipartUpload": r.block(
            "abortIncompleteMultipartUpload",
            lambda a: {"DaysAfterInitiation": a.get("daysAfterInitiation")},
        ),
    }


def logging(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    enabled = {
        "TargetBucket": i.get("targetBucket"),
        "TargetPrefix": i.get("targetPrefix"),
        "TargetObjectKeyFormat": i.block(
            "targetObjectKeyFormat",
            lambda f: {
                "PartitionedPrefix": f.block(
                    "partitionedPrefix",
                    lambda p: {"PartitionDateSource": p.get("partitionDateSource")},
                ),
                "SimplePrefix": f.block("simplePrefix", lambda _: {}),
            },
        ),
    }
    params = {"Bucket": i.get("bucket"), "BucketLoggingStatus": {"LoggingEnabled": enabled}}
    return [request("s3", "PutBucketLogging", params)]


def ownership(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    rule = i.block("rule", lambda r: {"ObjectOwnership": r.get("objectOwnership")})
    params = {"Bucket": i.get("bucket"), "OwnershipControls": {"Rules": [rule]}}
    return [request("s3", "PutBucketOwnershipControls", params)]


def bucket_policy(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    params = {"Bucket": i.get("bucket"), "Policy": i.get("policy")}
    return [request("s3", "PutBucketPolicy", params)]


def public_access_block(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    config = {
        "BlockPublicAcls": i.get("blockPublicAcls"),
        "IgnorePublicAcls": i.get("ignorePublicAcls"),
        "BlockPublicPolicy": i.get("blockPublicPolicy"),
        "RestrictPublicBuckets": i.get("restrictPublicBuckets"),
    }
    params = {"Bucket": i.get("bucket"), "PublicAccessBlockConfiguration": config}
    return [request("s3", "PutPublicAccessBlock", params)]


def encryption(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    rules = i.blocks(
        "rules",
        lambda r: {
            "ApplyServerSideEncryptionByDefault": r.block(
                "applyServerSideEncryptionByDefault",
                lambda d: {
                    "SSEAlgorithm": d.get("sseAlgorithm"),
                    "KMSMasterKeyID": d.get("kmsMasterKeyId"),
                },
            ),
            "BucketKeyEnabled": r.get("bucketKeyEnabled"),
        },
    )
    params = {
        "Bucket": i.get("bucket"),
        "ExpectedBucketOwner": i.get("expectedBucketOwner"),
        "ServerSideEncryptionConfiguration": {"Rules": rules},
    }
    return [request("s3", "PutBucketEncryption", params)]


def versioning(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    config = i.block(
        "versioningConfiguration",
        lambda v: {"Status": v.get("status"), "MFADelete": v.get("mfaDelete")},
    )
    params = {
        "Bucket": i.get("bucket"),
        "ExpectedBucketOwner": i.get("expectedBucketOwner"),
        "VersioningConfiguration": config,
    }
    return [request("s3", "PutBucketVersioning", params)]


def kms_key(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    create: Params = {
        "Description": i.get("description"),
        "Policy": i.get("policy"),
        "KeyUsage": i.get("keyUsage"),
        "KeySpec": i.get("customerMasterKeySpec"),
        "MultiRegion": i.get("multiRegion"),
        "BypassPolicyLockoutSafetyCheck": i.get("bypassPolicyLockoutSafetyCheck"),
        "CustomKeyStoreId": i.get("customKeyStoreId"),
        "XksKeyId": i.get("xksKeyId"),
        "Tags": ctx.tag_list(i, "TagKey", "TagValue"),
    }
    key_id = PENDING_KEY_ID
    requests = [request("kms", "CreateKey", create)]
    if i.get("enableKeyRotation"):
        rotation = {"KeyId": key_id, "RotationPeriodInDays": i.get("rotationPeriodInDays")}
        requests.append(request("kms", "EnableKeyRotation", rotation))
    window = i.get("deletionWindowInDays")
    if window is not None:
        deletion = {"KeyId": key_id, "PendingWindowInDays": window}
        requests.append(request("kms", "ScheduleKeyDeletion", deletion, when="on delete"))
    i.provider_only("isEnabled", "EnableKey/DisableKey after create; absent means enabled")
    return requests


def kms_alias(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    params = {"AliasName": ctx.name(i), "TargetKeyId": i.get("targetKeyId")}
    return [request("kms", "CreateAlias", params)]


MAPPINGS = {
    "aws:s3/bucket:Bucket": bucket,
    "aws:s3/bucketObjectv2:BucketObjectv2": bucket_object,
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": lifecycle,
    "aws:s3/bucketLogging:BucketLogging": logging,
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": ownership,
    "aws:s3/bucketPolicy:BucketPolicy": bucket_policy,
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": public_access_block,
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        encryption
    ),
    "aws:s3/bucketVersioning:BucketVersioning": versioning,
    "aws:kms/key:Key": kms_key,
    "aws:kms/alias:Alias": kms_alias,
}
