"""One pipeline execution's processing steps as their containers see them, without SageMaker.

A planned definition's steps are walked in dependency order. Each step's container arguments
are resolved as one execution sees them (parameters at their defaults, a sample execution id,
step properties as sample URIs), and its /opt/ml paths moved under a local folder per
instance. Before a step runs, its S3 inputs that earlier steps of the same execution wrote
(the run's shard scratch files) are downloaded there as SageMaker does; after it, its outputs are
uploaded. S3 is moto's, so the jobs' own writers (monitoring.shards) can be used.

Where the files land: an S3Prefix input naming one object puts it at LocalPath/<its name>;
naming a prefix, the objects below it at LocalPath/<key after the prefix> (the SageMaker
Python SDK's local mode does the same: sagemaker.local.utils.download_folder).
"""

from __future__ import annotations

import graphlib
import posixpath
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from guardrails.pipeline_jobs import job_steps
from pipelines.shard_steps import SHARDS_FOLDER

EXECUTION_ID = "0a1b2c3d4e5f"
SAMPLE_PACKAGE = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-staging-models/1"
CONTAINER_ROOT = "/opt/ml/"


def resolved(value: Any, parameters: Mapping[str, Any]) -> Any:
    """A definition value as one execution sees it: parameters at their defaults, step
    properties and execution variables as sample values of their kind."""
    if isinstance(value, dict) and "Get" in value:
        reference = value["Get"]
        if reference.startswith("Parameters."):
            return str(parameters[reference.removeprefix("Parameters.")])
        if reference.endswith("ModelPackageArn"):
            return SAMPLE_PACKAGE
        if reference.startswith("Execution."):
            return EXECUTION_ID
        return "s3://bucket/step/output"
    if isinstance(value, dict) and "Std:Join" in value:
        join = value["Std:Join"]
        return join["On"].join(resolved(v, parameters) for v in join["Values"])
    return str(value)


def in_order(definition: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The definition's job steps, each after the steps it depends on."""
    steps = {step["Name"]: step for step in job_steps(definition)}
    graph = graphlib.TopologicalSorter(
        {name: [d for d in step.get("DependsOn", []) if d in steps] for name, step in steps.items()}
    )
    return [steps[name] for name in graph.static_order()]


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


class Execution:
    """The run's S3 (a moto client) and each step instance's local /opt/ml."""

    def __init__(self, root: Path, parameters: Mapping[str, Any], s3: Any) -> None:
        self.root = root
        self.parameters = parameters
        self.s3 = s3

    def value(self, raw: Any) -> str:
        text: str = resolved(raw, self.parameters)
        return text

    def local(self, step: Mapping[str, Any], instance: int, path: str) -> str:
        """``path`` inside step ``step``'s instance ``instance`` (1-based), if it is one."""
        if not path.startswith(CONTAINER_ROOT):
            return path
        return str(self.root / step["Name"] / f"algo-{instance}" / path.lstrip("/"))

    def arguments(self, step: Mapping[str, Any], instance: int = 1) -> list[str]:
        raw = step["Arguments"]["AppSpecification"].get("ContainerArguments", [])
        return [self.local(step, instance, self.value(a)) for a in raw]

    def instances(self, step: Mapping[str, Any]) -> int:
        count: int = step["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"]
        return count

    def inputs(self, step: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        for item in step["Arguments"].get("ProcessingInputs", []):
            yield self.value(item["S3Input"]["S3Uri"]), item["S3Input"]

    def scratch(self, uri: str) -> bool:
        """Whether ``uri`` is one of this execution's shard scratch files, which only its
        own list and summarise steps write (pipelines/shard_steps.py)."""
        return f"/{EXECUTION_ID}/{SHARDS_FOLDER}/" in uri

    def keys(self, uri: str) -> list[str]:
        bucket, prefix = _split(uri)
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    def download(self, step: Mapping[str, Any], instance: int) -> None:
        """Put the step's S3Prefix scratch inputs where SageMaker would; each must have been
        written by an earlier step (a ManifestFile input is the capture its manifest lists).
        Other inputs (code, data, step outputs) are not needed to parse arguments."""
        for uri, s3_input in self.inputs(step):
            if not self.scratch(uri):
                continue
            bucket, prefix = _split(uri)
            keys = self.keys(uri)
            assert keys, f"{step['Name']} reads {uri}, which no earlier step wrote"
            if s3_input["S3DataType"] == "ManifestFile":
                assert keys == [prefix], f"{step['Name']}: no manifest at {uri}"
                continue
            folder = Path(self.local(step, instance, s3_input["LocalPath"]))
            for key in keys:
                relative = key[len(prefix) :].lstrip("/") or posixpath.basename(key)
                target = folder / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    def upload(self, step: Mapping[str, Any], instance: int) -> None:
        """Upload what the instance left in its output folders, as at the end of the job."""
        for output in step["Arguments"].get("ProcessingOutputConfig", {}).get("Outputs", []):
            s3_output = output["S3Output"]
            target = self.value(s3_output["S3Uri"])
            bucket, prefix = _split(target)
            folder = Path(self.local(step, instance, s3_output["LocalPath"]))
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                self.ensure_bucket(target)
                key = posixpath.join(prefix, path.relative_to(folder).as_posix())
                self.s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())

    def ensure_bucket(self, uri: str) -> None:
        bucket, _ = _split(uri)
        if bucket not in {b["Name"] for b in self.s3.list_buckets().get("Buckets", [])}:
            region = self.s3.meta.region_name
            self.s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}
            )
