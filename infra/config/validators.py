"""Single-value checks used by the settings models.

Each raises ``ValueError`` with a message that says what is allowed; the loader prefixes it
with the config key, so messages here never repeat the key themselves.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable

from infra.config import aws_catalog
from infra.config.aws_catalog import JobKind
from training.metric_names import METRIC_KEYS

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy, retentionInDays).
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

# Metrics the evaluation step writes; the registry gate compares one of them to a threshold.
METRIC_NAMES = tuple(METRIC_KEYS)

# Tag keys the kit sets itself on every resource; config may not override them.
RESERVED_TAG_KEYS = ("project", "environment", "stack", "managed-by")
# AWS allows 50 tags per resource; leave room for ours.
MAX_USER_TAGS = 50 - len(RESERVED_TAG_KEYS)

_SERVICE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,18}[a-z0-9]$")
_STACK_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}[a-z0-9]$|^[a-z0-9]$")
_RATE = re.compile(r"^rate\((?P<value>[1-9]\d*) (?P<unit>minutes?|hours?|days?)\)$")
_CRON = re.compile(r"^cron\((?P<fields>[^()]+)\)$")
# arn:<partition>:sagemaker:<region>:<account>:model-package/<group>/<version>
MODEL_PACKAGE_ARN = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/"
    r"(?P<group>[a-zA-Z0-9](?:-*[a-zA-Z0-9]){0,62})/(?P<version>[1-9]\d*)$"
)
_S3_TARBALL = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/\S+\.tar\.gz$")


def instance_type(kind: JobKind) -> Callable[[str], str]:
    def check(value: str) -> str:
        allowed = aws_catalog.instance_types(kind)
        if value in allowed:
            return value
        close = difflib.get_close_matches(value, sorted(allowed), n=3, cutoff=0.75)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        examples = ", ".join(sorted(allowed)[:4])
        raise ValueError(
            f"{value!r} is not a SageMaker {kind.label} instance type.{hint} "
            f"Allowed: the {len(allowed)} values of botocore's {kind.value} enum "
            f"(e.g. {examples}, ...)"
        )

    return check


def region(value: str) -> str:
    regions = aws_catalog.sagemaker_regions()
    if value in regions:
        return value
    close = difflib.get_close_matches(value, sorted(regions), n=3, cutoff=0.7)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(
        f"{value!r} is not a region where SageMaker is available.{hint} "
        f"Allowed: {', '.join(sorted(r for r, p in regions.items() if p == 'aws'))} "
        "(and the aws-cn / aws-us-gov regions)"
    )


def partition_of(region_name: str) -> str:
    return aws_catalog.sagemaker_regions()[region_name]


def service_name(value: str) -> str:
    if not _SERVICE_NAME.match(value):
        raise ValueError(
            f"{value!r} is not a valid service name: use 2-20 lowercase letters, digits and "
            "hyphens, starting with a letter (it becomes part of bucket and role names)"
        )
    return value


def stack_name(value: str) -> str:
    if not _STACK_NAME.match(value):
        raise ValueError(
            f"stack name {value!r} cannot be used in AWS resource names: use up to 32 "
            "lowercase letters, digits and hyphens"
        )
    return value


def log_retention_days(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        raise ValueError(
            f"{value} is not a CloudWatch Logs retention period; allowed: "
            f"{', '.join(map(str, LOG_RETENTION_DAYS))}"
        )
    return value


def metric_name(value: str) -> str:
    if value not in METRIC_NAMES:
        raise ValueError(
            f"{value!r} is not an evaluation metric; allowed: {', '.join(METRIC_NAMES)}"
        )
    return value


_ACCOUNT_ID = re.compile(r"^\d{12}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")


def categorical_feature(value: str) -> str:
    from training.dataset import CATEGORICAL_FEATURES

    if value not in CATEGORICAL_FEATURES:
        raise ValueError(
            f"'{value}' is not a categorical feature of the model; one of "
            f"{', '.join(CATEGORICAL_FEATURES)}"
        )
    return value


# EC2's ID formats: a type prefix and 8 (older) or 17 hex digits.
_EC2_ID = "^{kind}-(?:[0-9a-f]{{8}}|[0-9a-f]{{17}})$"


def ec2_id(kind: str, what: str) -> Callable[[str], str]:
    pattern = re.compile(_EC2_ID.format(kind=kind))

    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(
                f"{value!r} is not {what} ID ({kind}- and 8 or 17 lowercase hex digits)"
            )
        return value

    return check


def private_cidr(value: str) -> str:
    """A VPC CIDR block: RFC 1918 space, /16 to /24 (AWS allows /16 to /28; the kit
    needs room for a /28-or-larger subnet per availability zone)."""
    try:
        network = ipaddress.IPv4Network(value)
    except ValueError as exc:
        raise ValueError(
            f"{value!r} is not an IPv4 CIDR block such as 10.20.0.0/16 ({exc})"
        ) from None
    if not network.is_private:
        raise ValueError(f"{value} is not private address space (RFC 1918)")
    if not 16 <= network.prefixlen <= 24:
        raise ValueError(f"{value}: the VPC's prefix must be /16 to /24, got /{network.prefixlen}")
    return value


def account_id(value: str) -> str:
    if not _ACCOUNT_ID.match(value):
        raise ValueError(f"{value!r} is not an AWS account ID (12 digits)")
    return value


def role_arn(value: str) -> str:
    if not _ROLE_ARN.match(value):
        raise ValueError(f"{value!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
    return value


def model_package_arn(value: str) -> str:
    if not MODEL_PACKAGE_ARN.match(value):
        raise ValueError(
            f"{value!r} is not a versioned model package ARN "
            "(arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>)"
        )
    return value


def model_data_uri(value: str) -> str:
    if not _S3_TARBALL.match(value):
        raise ValueError(
            f"{value!r} is not an S3 URI of a model archive (s3://bucket/.../*.tar.gz)"
        )
    return value


def serverless_memory_mb(value: int) -> int:
    low, high = aws_catalog.numeric_limits("ProductionVariantServerlessConfig", "MemorySizeInMB")
    allowed = list(range(low, high + 1, 1024))
    if value not in allowed:
        raise ValueError(f"{value} MB is not a serverless memory size; allowed: {allowed}")
    return value


def job_runtime_minutes(value: int) -> int:
    """The pipeline's processing steps run under the training runtime too, and
    CreateProcessingJob allows less (MaxRuntimeInSeconds up to 9 days) than training (28)."""
    low, high = aws_catalog.numeric_limits("ProcessingStoppingCondition", "MaxRuntimeInSeconds")
    if not low <= value * 60 <= high:
        raise ValueError(
            f"must be 1-{high // 60} minutes ({high // 86400} days): the pipeline's processing "
            f"steps share this limit and SageMaker processing jobs stop at {high} seconds; "
            f"got {value}"
        )
    return value


def serverless_max_concurrency(value: int) -> int:
    low, high = aws_catalog.numeric_limits("ProductionVariantServerlessConfig", "MaxConcurrency")
    if not low <= value <= high:
        raise ValueError(f"{value} is outside the serverless concurrency range {low}-{high}")
    return value


def user_tags(tags: dict[str, str]) -> dict[str, str]:
    if len(tags) > MAX_USER_TAGS:
        raise ValueError(
            f"{len(tags)} tags given; at most {MAX_USER_TAGS} fit next to the kit's own "
            f"{len(RESERVED_TAG_KEYS)} (AWS allows 50 per resource)"
        )
    # botocore's patterns: \p{Z} admits spaces but, unlike \s, no tabs or line breaks.
    key_chars, value_chars = aws_catalog.tag_patterns()
    for key, value in tags.items():
        if key in RESERVED_TAG_KEYS:
            reserved = ", ".join(RESERVED_TAG_KEYS)
            raise ValueError(f"tag key {key!r} is set by the kit itself; reserved: {reserved}")
        if key.lower().startswith("aws:"):
            raise ValueError(f"tag key {key!r} uses the 'aws:' prefix, which AWS reserves")
        if not 1 <= len(key) <= 128 or not key_chars.fullmatch(key):
            raise ValueError(
                f"tag key {key!r} must be 1-128 characters of letters, digits, spaces and _.:/=+-@"
            )
        if len(value) > 256 or not value_chars.fullmatch(value):
            raise ValueError(
                f"tag {key!r} has value {value!r}; values must be at most 256 characters of "
                "letters, digits, spaces and _.:/=+-@"
            )
    return tags


def schedule_expression(value: str) -> str:
    """EventBridge Scheduler's rate() or cron() forms; one-time at() makes no sense here."""
    rate = _RATE.match(value)
    if rate:
        singular = not rate["unit"].endswith("s")
        if (rate["value"] == "1") != singular:
            raise ValueError(
                f"{value!r}: use a singular unit for 1 and a plural one otherwise, "
                "e.g. rate(1 day) or rate(7 days)"
            )
        return value
    cron = _CRON.match(value)
    if cron:
        fields = cron["fields"].split()
        if len(fields) != 6:
            raise ValueError(
                f"{value!r}: cron() takes 6 fields (minutes hours day-of-month month "
                f"day-of-week year); got {len(fields)}"
            )
        if "?" not in (fields[2], fields[4]):
            raise ValueError(
                f"{value!r}: one of day-of-month or day-of-week must be '?', "
                "e.g. cron(0 3 ? * MON *)"
            )
        return value
    raise ValueError(
        f"{value!r} is not a schedule expression; use rate(N units) or cron(6 fields), "
        "e.g. rate(7 days) or cron(0 3 ? * MON *)"
    )


_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
# CloudWatch evaluates an alarm over at most one day (EvaluationPeriods x Period).
MAX_ALARM_PERIOD_SECONDS = 86400


def schedule_period_seconds(expression: str) -> int:
    """How often a schedule fires, as an alarm period: rate() exactly, cron() as daily."""
    rate = _RATE.match(expression)
    if rate is None:
        return MAX_ALARM_PERIOD_SECONDS
    seconds = int(rate["value"]) * _UNIT_SECONDS[rate["unit"].rstrip("s")]
    return min(seconds, MAX_ALARM_PERIOD_SECONDS)
