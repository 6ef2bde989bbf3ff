"""Present a plan: a resource tree for people, and canonical JSON for machines and diffs."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from infra.plan.mocks import RecordedResource
from infra.plan.network_view import NetworkView, network_view
from infra.plan.runner import Plan

# The component the network summary hangs under (the stack's root when there is none).
ENVIRONMENT = "mlopskit:index:MlopsEnvironment"

# The inputs worth showing next to each resource in the tree, by type token.
KEY_SETTINGS: dict[str, tuple[str, ...]] = {
    "pulumi:providers:aws": ("region",),
    "aws:s3/bucket:Bucket": ("bucket", "forceDestroy"),
    "aws:kms/key:Key": ("enableKeyRotation", "deletionWindowInDays"),
    "aws:kms/alias:Alias": ("name",),
    "aws:iam/role:Role": ("name",),
    "aws:iam/rolePolicy:RolePolicy": ("name",),
    "aws:s3/bucketObjectv2:BucketObjectv2": ("key",),
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": ("modelPackageGroupName",),
    "aws:sagemaker/pipeline:Pipeline": ("pipelineName",),
    "aws:sagemaker/trainingJob:TrainingJob": ("trainingJobName", "resourceConfig.instanceType"),
    "aws:scheduler/schedule:Schedule": ("scheduleExpression", "state"),
    "aws:sagemaker/model:Model": (
        "primaryContainer.modelPackageName",
        "primaryContainer.modelDataUrl",
        "enableNetworkIsolation",
    ),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": (
        "namePrefix",
        "productionVariants.0.instanceType",
        "productionVariants.0.initialInstanceCount",
        "productionVariants.0.serverlessConfig.memorySizeInMb",
        "dataCaptureConfig.initialSamplingPercentage",
    ),
    "aws:sagemaker/endpoint:Endpoint": (
        "name",
        "deploymentConfig.blueGreenUpdatePolicy.trafficRoutingConfiguration.type",
    ),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("name", "threshold"),
    "aws:appautoscaling/target:Target": ("resourceId", "minCapacity", "maxCapacity"),
    "aws:s3/bucketVersioning:BucketVersioning": ("versioningConfiguration.status",),
    "aws:s3/bucketLogging:BucketLogging": ("targetPrefix",),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": ("rule.objectOwnership",),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        "rules.0.applyServerSideEncryptionByDefault.sseAlgorithm",
        "rules.0.bucketKeyEnabled",
    ),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": (
        "blockPublicAcls",
        "blockPublicPolicy",
        "ignorePublicAcls",
        "restrictPublicBuckets",
    ),
    "aws:ec2/vpc:Vpc": ("cidrBlock",),
    "aws:ec2/subnet:Subnet": ("availabilityZone", "cidrBlock"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": ("vpcEndpointType", "serviceName"),
    "aws:ec2/flowLog:FlowLog": ("trafficType", "logDestinationType"),
}


def to_json(plan: Plan) -> str:
    """Canonical JSON: sorted keys, no timestamps, resources ordered by URN."""
    document = {
        "project": plan.project,
        "stack": plan.stack,
        "resourceCount": len(plan.resources),
        "countsByType": dict(sorted(Counter(r.type for r in plan.resources).items())),
        "resources": [_resource_json(plan, r) for r in plan.resources],
        "outputs": plan.outputs,
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _resource_json(plan: Plan, resource: RecordedResource) -> dict[str, Any]:
    return {
        "urn": resource.urn,
        "type": resource.type,
        "name": resource.name,
        "parent": _name_of(plan, resource.parent),
        "provider": resource.provider.split("::")[-1] or None,
        "custom": resource.custom,
        "options": {
            "protect": resource.protect,
            "retainOnDelete": resource.retain_on_delete,
            "deleteBeforeReplace": resource.delete_before_replace,
            "replaceOnChanges": list(resource.replace_on_changes),
            "dependsOn": [_name_of(plan, urn) for urn in resource.depends_on],
        },
        "inputs": _decode_json_strings(resource.inputs),
    }


def _name_of(plan: Plan, urn: str) -> str | None:
    if not urn:
        return None
    try:
        found = plan.by_urn(urn)
    except KeyError:
        return urn.split("::")[-1]  # the root stack
    return f"{found.type}::{found.name}"


def _decode_json_strings(value: Any) -> Any:
    """Policies travel as JSON strings; expand them so the plan JSON shows real structure."""
    if isinstance(value, dict):
        return {k: _decode_json_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_json_strings(v) for v in value]
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def to_rich(plan: Plan) -> RenderableType:
    root = Tree(f"[bold]{plan.project}[/] / stack [bold cyan]{plan.stack}[/]")
    declared = {r.urn for r in plan.resources}
    children: dict[str, list[RecordedResource]] = {}
    for resource in plan.resources:
        # Top-level components hang off the stack itself, which the plan does not list.
        parent = resource.parent if resource.parent in declared else ""
        children.setdefault(parent, []).append(resource)
    network = network_view(plan)
    environments = [r for r in plan.resources if r.type == ENVIRONMENT]
    if not network.empty and not environments:
        _add_network(root, network)

    def add(node: Tree, parent_urn: str) -> None:
        for child in children.get(parent_urn, []):
            branch = node.add(_label(child, network))
            if child.type == ENVIRONMENT and not network.empty:
                _add_network(branch, network)
            for step, placement in network.steps.get(child.urn, ()):
                branch.add(f"step [bold]{escape(step)}[/]  {_placed(str(placement))}")
            add(branch, child.urn)

    add(root, "")

    counts = Table(title="Resources by type", show_edge=False)
    counts.add_column("type")
    counts.add_column("count", justify="right")
    for type_token, count in sorted(Counter(r.type for r in plan.resources).items()):
        counts.add_row(type_token, str(count))
    counts.add_row("[bold]total[/]", f"[bold]{len(plan.resources)}[/]")
    return Group(root, "", counts)


def _add_network(node: Tree, network: NetworkView) -> None:
    """The network in a few lines: what a reviewer checks before reading each resource."""
    branch = node.add("[bold blue]network[/]")
    for vpc in network.vpcs:
        flow_logs = ", ".join(vpc.flow_logs) or "none"
        line = branch.add(
            f"vpc [bold]{escape(vpc.name)}[/]  {escape(vpc.cidr)}  flow logs {escape(flow_logs)}"
        )
        for subnet in vpc.subnets:
            line.add(f"subnet {escape(subnet.name)}  {escape(subnet.zone)}  {escape(subnet.cidr)}")
        for endpoint in vpc.endpoints:
            line.add(f"endpoint {endpoint.kind.lower()} {escape(endpoint.service)}")
        for group in vpc.groups:
            line.add(f"security group {escape(group.summary())}")
    if network.outside_subnets or network.outside_groups:
        line = branch.add("vpc not declared by this stack (network.mode existing)")
        line.add(f"subnets {escape(', '.join(network.outside_subnets) or 'none')}")
        line.add(f"security groups {escape(', '.join(network.outside_groups) or 'none')}")


def _placed(text: str) -> str:
    colour = "cyan" if text.startswith("in VPC") else "yellow"
    return f"[{colour}]{escape(text)}[/]"


def _label(resource: RecordedResource, network: NetworkView | None = None) -> str:
    kind = "[magenta]" if not resource.custom else "[green]"
    parts = [f"{kind}{resource.type}[/] [bold]{resource.name}[/]"]
    for path in KEY_SETTINGS.get(resource.type, ()):
        value = _lookup(resource.inputs, path)
        if value is not None:
            # Escaped: Rich would take "[unknown]" for markup and drop it.
            parts.append(f"{path.split('.')[-1]}={escape(str(value))}")
    placement = network.placements.get(resource.urn) if network is not None else None
    if placement is not None:
        parts.append(_placed(str(placement)))
    if resource.protect:
        parts.append("[yellow]protected[/]")
    if resource.retain_on_delete:
        parts.append("[yellow]retained on delete[/]")
    return "  ".join(parts)


def _lookup(inputs: dict[str, Any], path: str) -> Any:
    value: Any = inputs
    for part in path.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return None
    return value
