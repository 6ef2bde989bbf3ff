"""The jobs a SageMaker pipeline definition starts: encrypted at rest and in transit, isolated.

A pipeline's processing and training steps are jobs no Pulumi resource declares, so the
rules the kit applies to its own training job are read off each step of the definition
(nested condition branches included): the stack's key on volumes and outputs, inter-container
traffic encryption, and network isolation unless the step is one that must reach AWS.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from guardrails.model import UNKNOWN, Context, as_document, as_list, is_set, lookup, subject

PIPELINE = "aws:sagemaker/pipeline:Pipeline"
TRAINING_JOB = "aws:sagemaker/trainingJob:TrainingJob"
# Steps that need the network, by name, and why; the kit's pipelines define them
# (pipelines/). Each still encrypts in transit and at rest.
NETWORK_ACCESS_STEPS: dict[str, str] = {
    "DetectDrift": "lists capture hour prefixes in S3, reads the registry, publishes metrics",
    "DetectAttributionDrift": "lists capture in S3, reads the registry, publishes metrics",
    "MeasureQuality": "lists capture and labels in S3, reads the registry, publishes metrics",
    "PublishModelCard": "calls SageMaker's CreateModelCard",
}
_JOB_STEPS = ("Processing", "Training")


def job_steps(definition: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Processing and training steps, those in condition branches too."""

    def walk(steps: Any) -> Iterator[Mapping[str, Any]]:
        for step in as_list(steps):
            if not isinstance(step, Mapping):
                continue
            if step.get("Type") in _JOB_STEPS:
                yield step
            arguments = step.get("Arguments")
            if step.get("Type") == "Condition" and isinstance(arguments, Mapping):
                yield from walk(arguments.get("IfSteps"))
                yield from walk(arguments.get("ElseSteps"))

    yield from walk(definition.get("Steps"))


def _definition(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    # Unknown until apply (built from other resources' outputs): nothing to read yet.
    return as_document(props.get("pipelineDefinition")) if resource_type == PIPELINE else None


def _where(resource_type: str, context: Context, step: Mapping[str, Any]) -> str:
    return f"{subject(resource_type, context.name)}: step {step.get('Name')}"


def validate_encryption_at_rest(
    resource_type: str, props: Mapping[str, Any], context: Context
) -> list[str]:
    definition = _definition(resource_type, props)
    if definition is None:
        return []
    found = []
    for step in job_steps(definition):
        arguments = step.get("Arguments") or {}
        if step["Type"] == "Processing":
            required = [("ProcessingResources.ClusterConfig.VolumeKmsKeyId", "job volumes")]
            # A job without outputs writes nothing SageMaker could encrypt for it.
            if as_list(lookup(arguments, "ProcessingOutputConfig.Outputs")):
                required.append(("ProcessingOutputConfig.KmsKeyId", "job outputs"))
        else:
            required = [
                ("ResourceConfig.VolumeKmsKeyId", "job volumes"),
                ("OutputDataConfig.KmsKeyId", "job outputs"),
            ]
        found += [
            f"{_where(resource_type, context, step)}: {what} must be KMS-encrypted "
            f"({path} is not set)"
            for path, what in required
            if not is_set(lookup(arguments, path))
        ]
    return found


def validate_in_transit(
    resource_type: str, props: Mapping[str, Any], context: Context
) -> list[str]:
    """Traffic between a job's instances is encrypted (Security Hub's SageMaker controls)."""
    if resource_type == TRAINING_JOB:
        if props.get("enableInterContainerTrafficEncryption") in (True, UNKNOWN):
            return []
        return [
            f"{subject(resource_type, context.name)}: training jobs must set "
            "enableInterContainerTrafficEncryption true"
        ]
    definition = _definition(resource_type, props)
    if definition is None:
        return []
    found = []
    for step in job_steps(definition):
        arguments = step.get("Arguments") or {}
        path = (
            "NetworkConfig.EnableInterContainerTrafficEncryption"
            if step["Type"] == "Processing"
            else "EnableInterContainerTrafficEncryption"
        )
        if lookup(arguments, path) is not True:
            found.append(
                f"{_where(resource_type, context, step)}: inter-container traffic must be "
                f"encrypted ({path} is not true)"
            )
    return found


def validate_isolation(resource_type: str, props: Mapping[str, Any], context: Context) -> list[str]:
    definition = _definition(resource_type, props)
    if definition is None:
        return []
    allowed = set(as_list(context.params.get("networkAccessSteps")))
    found = []
    for step in job_steps(definition):
        if step.get("Name") in allowed:
            continue
        arguments = step.get("Arguments") or {}
        path = (
            "NetworkConfig.EnableNetworkIsolation"
            if step["Type"] == "Processing"
            else "EnableNetworkIsolation"
        )
        if lookup(arguments, path) is not True:
            found.append(
                f"{_where(resource_type, context, step)}: pipeline jobs must set {path} true "
                "(only the steps in networkAccessSteps may reach the network)"
            )
    return found
