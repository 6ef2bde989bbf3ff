"""Pulumi mocks that stand in for AWS, and a monitor that records what the program declares.

The mocks return outputs the way AWS would shape them (ARNs, IDs), derived only from the
resource's type, name and inputs, so the plan is the same on every run.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import Mocks, rpc
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs

from infra.config import aws_catalog

REPO_ROOT = Path(__file__).resolve().parents[2]
# The account the plan pretends to run in, unless the stack config names one.
PLAN_ACCOUNT_ID = "123456789012"
# rpc's marker for a secret value in deserialized properties.
_SECRET_SIG = rpc._special_sig_key
_SECRET_VALUE = rpc._special_secret_sig


# SageMaker resource type -> (input holding its name, ARN resource type). SageMaker ARNs
# carry the name in lower case.
_SAGEMAKER_NAMED = {
    "aws:sagemaker/pipeline:Pipeline": ("pipelineName", "pipeline"),
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": (
        "modelPackageGroupName",
        "model-package-group",
    ),
    "aws:sagemaker/trainingJob:TrainingJob": ("trainingJobName", "training-job"),
    "aws:sagemaker/model:Model": ("name", "model"),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": ("name", "endpoint-config"),
    "aws:sagemaker/endpoint:Endpoint": ("name", "endpoint"),
}


class UnmockedCallError(Exception):
    """The program invoked a data source the offline plan does not know how to answer."""


@dataclass(frozen=True)
class RecordedResource:
    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    provider: str
    protect: bool
    retain_on_delete: bool
    delete_before_replace: bool
    replace_on_changes: tuple[str, ...]
    depends_on: tuple[str, ...]
    inputs: dict[str, Any]


class AwsMocks(Mocks):
    def __init__(
        self,
        *,
        region: str,
        account_id: str = PLAN_ACCOUNT_ID,
        stack_outputs: Callable[[str], dict[str, Any]] | None = None,
    ) -> None:
        self.region = region
        self.account_id = account_id
        self.stack_outputs = stack_outputs
        self.partition = aws_catalog.sagemaker_regions().get(region, "aws")

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        outputs = dict(args.inputs)
        physical_id = f"{args.name}-id"
        if args.typ == "pulumi:pulumi:StackReference":
            if self.stack_outputs is None:
                raise UnmockedCallError(f"no outputs for StackReference {args.name}")
            referenced = args.inputs.get("name", args.name)
            outputs = {
                "name": referenced,
                "outputs": self.stack_outputs(referenced),
                "secretOutputNames": [],
            }
            return referenced, outputs
        if args.typ == "aws:s3/bucket:Bucket":
            physical_id = args.inputs.get("bucket", args.name)
            outputs["arn"] = f"arn:{self.partition}:s3:::{physical_id}"
            outputs["bucket"] = physical_id
        elif args.typ == "aws:kms/key:Key":
            key_id = mock_key_id(args.name)
            physical_id = key_id
            outputs["keyId"] = key_id
            outputs["arn"] = (
                f"arn:{self.partition}:kms:{self.region}:{self.account_id}:key/{key_id}"
            )
        elif args.typ == "aws:iam/role:Role":
            role_name = args.inputs.get("name", args.name)
            physical_id = role_name
            outputs["arn"] = f"arn:{self.partition}:iam::{self.account_id}:role/{role_name}"
            outputs["uniqueId"] = (
                f"AROA{uuid.uuid5(uuid.NAMESPACE_URL, role_name).hex[:17].upper()}"
            )
        elif args.typ in _SAGEMAKER_NAMED:
            name_input, arn_type = _SAGEMAKER_NAMED[args.typ]
            physical_id = args.inputs.get(name_input) or _generated_name(args)
            outputs[name_input] = physical_id
            outputs["arn"] = (
                f"arn:{self.partition}:sagemaker:{self.region}:{self.account_id}:"
                f"{arn_type}/{physical_id.lower()}"
            )
        elif args.typ in _EC2_ID_PREFIXES:
            # EC2 IDs in EC2's own format (prefix, 17 hex digits), so requests that carry
            # them (VpcConfig, aws:SourceVpce) meet the same patterns as in AWS.
            prefix, arn_type = _EC2_ID_PREFIXES[args.typ]
            physical_id = mock_ec2_id(prefix, args.name)
            outputs["arn"] = (
                f"arn:{self.partition}:ec2:{self.region}:{self.account_id}:{arn_type}/{physical_id}"
            )
            if args.inputs.get("vpcEndpointType") == "Gateway":
                # The AWS-managed prefix list of the service's addresses (S3's, here).
                outputs["prefixListId"] = mock_ec2_id("pl", args.inputs.get("serviceName", ""))
        elif args.typ == "aws:scheduler/schedule:Schedule":
            physical_id = args.inputs.get("name", args.name)
            group = args.inputs.get("groupName", "default")
            outputs["arn"] = (
                f"arn:{self.partition}:scheduler:{self.region}:{self.account_id}:"
                f"schedule/{group}/{physical_id}"
            )
        elif args.typ == "aws:cloudwatch/metricAlarm:MetricAlarm":
            physical_id = args.inputs.get("name", args.name)
            outputs["arn"] = (
                f"arn:{self.partition}:cloudwatch:{self.region}:{self.account_id}:"
                f"alarm:{physical_id}"
            )
        elif args.typ == "aws:cloudwatch/eventRule:EventRule":
            physical_id = args.inputs.get("name", args.name)
            outputs["arn"] = (
                f"arn:{self.partition}:events:{self.region}:{self.account_id}:rule/{physical_id}"
            )
        elif args.typ.startswith("aws:"):
            service = args.typ.split(":")[1].split("/")[0]
            resource_name = args.inputs.get("name", args.name)
            outputs.setdefault(
                "arn",
                f"arn:{self.partition}:{service}:{self.region}:{self.account_id}:{resource_name}",
            )
        return physical_id, outputs

    def call(self, args: MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": self.account_id,
                "arn": f"arn:{self.partition}:iam::{self.account_id}:user/offline-plan",
                "userId": "AIDAOFFLINEPLAN",
                "id": self.account_id,
            }
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": self.partition, "id": self.partition}
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region}
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return mock_availability_zones(self.region)
        raise UnmockedCallError(
            f"the offline plan has no answer for data source {args.token}; "
            "add it to infra/plan/mocks.py"
        )


# Pulumi type -> EC2's ID prefix and ARN resource type for it.
_EC2_ID_PREFIXES = {
    "aws:ec2/vpc:Vpc": ("vpc", "vpc"),
    "aws:ec2/subnet:Subnet": ("subnet", "subnet"),
    "aws:ec2/securityGroup:SecurityGroup": ("sg", "security-group"),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": ("sg", "security-group"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": ("vpce", "vpc-endpoint"),
    "aws:ec2/routeTable:RouteTable": ("rtb", "route-table"),
    "aws:ec2/flowLog:FlowLog": ("fl", "vpc-flow-log"),
}


def mock_ec2_id(prefix: str, name: str) -> str:
    """The ID the plan gives the EC2 resource named ``name``: stable across runs."""
    return f"{prefix}-{uuid.uuid5(uuid.NAMESPACE_URL, f'ec2/{name}').hex[:17]}"


# Zones the plan pretends every region has: as many as a network may ask for (six).
MOCK_ZONES = 6
_DIRECTIONS = {
    "north": "n", "south": "s", "east": "e", "west": "w", "central": "c",
    "northeast": "ne", "northwest": "nw", "southeast": "se", "southwest": "sw",
}  # fmt: skip


def mock_availability_zones(region: str) -> dict[str, Any]:
    """getAvailabilityZones' answer: zone names <region>a, b, ... and zone IDs in AWS's
    form (eu-west-1 -> euw1-az1), the same on every run."""
    area, *rest = region.split("-")
    short = area + "".join(_DIRECTIONS.get(part, part) for part in rest)
    names = [f"{region}{chr(ord('a') + i)}" for i in range(MOCK_ZONES)]
    return {
        "id": region,
        "names": names,
        "zoneIds": [f"{short}-az{i + 1}" for i in range(MOCK_ZONES)],
        "groupNames": [region],
        "state": "available",
    }


def mock_key_id(name: str) -> str:
    """The KMS key ID the plan gives the key named ``name`` (a local stack keeps it)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"kms/{name}"))


def _generated_name(args: MockResourceArgs) -> str:
    return generated_name(args.typ, args.name, args.inputs.get("namePrefix"))


def generated_name(type_token: str, name: str, name_prefix: str | None = None) -> str:
    """What the provider would generate for an unnamed resource, but the same on every run.

    Pulumi auto-names as ``<logical name>-<7 random chars>``; Terraform's ``name_prefix``
    appends a 26-digit unique ID.
    """
    digest = uuid.uuid5(uuid.NAMESPACE_URL, f"{type_token}/{name}").int
    if name_prefix:
        return f"{name_prefix}{digest % 10**26:026d}"
    return f"{name}-{digest % 16**7:07x}"


class RecordingMonitor(MockMonitor):
    """MockMonitor that also keeps each registration's parent, provider and options."""

    def __init__(self, mocks: Mocks) -> None:
        super().__init__(mocks)
        self.recorded: list[RecordedResource] = []
        self.stack_outputs: dict[str, Any] = {}

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        try:
            return self._register(request)
        finally:
            _close_worker_loop()

    def Invoke(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        try:
            return super().Invoke(request)  # type: ignore[no-untyped-call]
        finally:
            _close_worker_loop()

    def _register(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type == "pulumi:pulumi:Stack":
            return response
        self.recorded.append(
            _recorded(
                request,
                response.urn,
                _deserialize(request.object),
                custom=request.custom,
                protect=request.protect,
                retain_on_delete=request.retainOnDelete,
                delete_before_replace=request.deleteBeforeReplace,
                replace_on_changes=tuple(request.replaceOnChanges),
            )
        )
        return response

    def ReadResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        # Reads (StackReference is one) are part of what the program depends on.
        try:
            response = super().ReadResource(request)  # type: ignore[no-untyped-call]
        finally:
            _close_worker_loop()
        self.recorded.append(
            _recorded(request, response.urn, _deserialize(request.properties), custom=True)
        )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        if request.urn.split("::")[2] == "pulumi:pulumi:Stack":
            self.stack_outputs = _deserialize(request.outputs)
        return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]


def _recorded(
    request: Any,
    urn: str,
    inputs: dict[str, Any],
    *,
    custom: bool,
    protect: bool = False,
    retain_on_delete: bool = False,
    delete_before_replace: bool = False,
    replace_on_changes: tuple[str, ...] = (),
) -> RecordedResource:
    return RecordedResource(
        urn=urn,
        type=request.type,
        name=request.name,
        parent=request.parent,
        custom=custom,
        provider=request.provider,
        protect=protect,
        retain_on_delete=retain_on_delete,
        delete_before_replace=delete_before_replace,
        replace_on_changes=replace_on_changes,
        depends_on=tuple(sorted(request.dependencies)),
        inputs=inputs,
    )


def _close_worker_loop() -> None:
    """Close the event loop MockMonitor opens on an executor thread for each call.

    Left open, those loops are finalized at some later garbage collection, after their
    self-pipe is gone, and asyncio reports an "Invalid file descriptor" error then.
    """
    if threading.current_thread() is threading.main_thread():
        return
    try:
        loop = asyncio.get_event_loop()
    except RuntimeError:
        return
    if not loop.is_running():
        loop.close()
        asyncio.set_event_loop(None)


def _deserialize(struct: Any) -> dict[str, Any]:
    plain: dict[str, Any] = _plain(rpc.deserialize_properties(struct, keep_unknowns=True))
    return plain


def _plain(value: Any) -> Any:
    """JSON-ready form of a deserialized property: secrets masked, unknowns marked."""
    if isinstance(value, dict):
        if value.get(_SECRET_SIG) == _SECRET_VALUE:
            # The plan must never print or store a secret's value.
            return "[secret]"
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        # The wire format has only doubles; show 30, not 30.0, for counts and days.
        return int(value)
    if value == rpc.UNKNOWN:
        return "[unknown]"
    if isinstance(value, pulumi.Asset | pulumi.Archive):
        return {"asset": type(value).__name__, **{k: _plain(v) for k, v in _asset_fields(value)}}
    return value


def _asset_fields(value: pulumi.Asset | pulumi.Archive) -> list[tuple[str, Any]]:
    fields = ("path", "text", "uri", "assets")
    found = [(f, getattr(value, f)) for f in fields if getattr(value, f, None) is not None]
    return [(f, _portable_path(v) if f == "path" else v) for f, v in found]


def _portable_path(path: str) -> str:
    # Files the stack builds live in this checkout; show them relative to it, so the plan
    # is the same on every machine.
    try:
        return Path(path).resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return path
