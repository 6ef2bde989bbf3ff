"""Facts about AWS read from botocore's bundled data, so validation needs no network.

botocore ships the SageMaker service model (instance-type enums, numeric limits) and the
endpoint rule set (which partitions and regions offer SageMaker). Reading them here keeps
the allowed values in step with the installed SDK instead of a list we would have to curate.
"""

from __future__ import annotations

import enum
import re
from functools import cache
from typing import Any

import botocore.session

from infra.aws_session import isolated_botocore_session
from infra.config.java_regex import compile_pattern


class JobKind(enum.Enum):
    """Which SageMaker API an instance type is used for; each has its own enum in botocore."""

    TRAINING = "TrainingInstanceType"
    PROCESSING = "ProcessingInstanceType"
    ENDPOINT = "ProductionVariantInstanceType"
    TRANSFORM = "TransformInstanceType"

    @property
    def label(self) -> str:
        return {
            JobKind.TRAINING: "training job",
            JobKind.PROCESSING: "processing job",
            JobKind.ENDPOINT: "endpoint (production variant)",
            JobKind.TRANSFORM: "batch transform",
        }[self]


@cache
def _session() -> botocore.session.Session:
    # Only botocore's bundled data is read: the user's AWS_PROFILE or config must not matter.
    return isolated_botocore_session()


@cache
def service_model(service: str) -> Any:
    """botocore's model of one AWS service (its operations and request shapes)."""
    return _session().get_service_model(service)


def _sagemaker_model() -> Any:
    return service_model("sagemaker")


@cache
def tag_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(key, value) patterns every tag must match: SageMaker's Tag shape, which IAM shares
    (the other services the kit tags check only lengths)."""
    tag = _sagemaker_model().shape_for("Tag")
    key, value = (tag.members[m].metadata["pattern"] for m in ("Key", "Value"))
    return compile_pattern(key), compile_pattern(value)


@cache
def instance_types(kind: JobKind) -> frozenset[str]:
    shape = _sagemaker_model().shape_for(kind.value)
    return frozenset(shape.enum)


@cache
def numeric_limits(shape_name: str, member: str) -> tuple[int, int]:
    """(min, max) of an integer member, e.g. serverless MemorySizeInMB."""
    meta = _sagemaker_model().shape_for(shape_name).members[member].metadata
    return int(meta["min"]), int(meta["max"])


@cache
def sagemaker_regions() -> dict[str, str]:
    """Region -> partition, for every region where botocore knows a SageMaker endpoint."""
    session = _session()
    regions: dict[str, str] = {}
    for partition in session.get_available_partitions():
        for region in session.get_available_regions("sagemaker", partition_name=partition):
            regions[region] = partition
    return regions


_SIZE = re.compile(r"^ml\.[a-z0-9-]+\.(?:(?P<n>\d+)?xlarge|(?P<named>large|medium))$")


def vcpus(instance_type: str) -> int:
    """vCPUs of an ml.* instance, from its size: SageMaker sums CPUUtilization over them.

    Sizes map to vCPUs the same way across the families SageMaker hosts on (large = 2,
    xlarge = 4, Nxlarge = 4N); medium is taken as 2 (t2/t3).
    """
    match = _SIZE.match(instance_type)
    if match is None:
        raise ValueError(f"cannot tell the vCPUs of {instance_type!r} from its size")
    if match["named"]:
        return 2
    return 4 * int(match["n"] or 1)
