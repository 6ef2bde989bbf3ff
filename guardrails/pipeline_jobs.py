"""The jobs a SageMaker pipeline definition starts: encrypted at rest and in transit, isolated.

A pipeline's processing and training steps are jobs no Pulumi resource declares, so the
rules the kit applies to its own training job are read off each step of the definition
(nested condition branches included): the stack's key on volumes and outputs, inter-container
traffic encryption, and network isolation unless the step is one that must reach AWS. A tuning
step's training jobs are held to a training step's rules, read off its job definition(s). A
transform step's job keeps the stack's key on its volume, output and batch capture; its
model's isolation is checked where the model is declared (guardrails/isolation.py).
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
    # A sharded run's first step (pipelines/shard_steps.py): with an empty window it is the
    # whole job, so it needs what the job needs. Its Summarise* step is isolated, and its
    # merge keeps the job's own step name.
    "ListDriftWindow": "lists capture in S3, copies the served model's baseline, may publish",
    "ListQualityWindow": "lists capture and labels in S3, may publish metrics",
    "PublishModelCard": "calls SageMaker's CreateModelCard",
}
_JOB_STEPS = ("Processing", "Training")
TRANSFORM_STEP = "Transform"
# CreateTransformJob fields that hold data at rest (botocore's shape names).
TRANSFORM_KEYS = (
    ("TransformResources.VolumeKmsKeyId", "transform volumes"),
    ("TransformOutput.KmsKeyId", "transform output"),
)


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


def job_requests(definition: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any], str, Any]]:
    """(step, "Processing" or "Training", the job's request) for every job a step starts.

    A tuning step's jobs are training jobs: CreateHyperParameterTuningJob carries them as
    TrainingJobDefinition or TrainingJobDefinitions, with a training job's fields.
    """

    def walk(steps: Any) -> Iterator[tuple[Mapping[str, Any], str, Any]]:
        for step in as_list(steps):
            if not isinstance(step, Mapping):
                continue
            arguments = step.get("Arguments")
            arguments = arguments if isinstance(arguments, Mapping) else {}
            if step.get("Type") in _JOB_STEPS:
                yield step, str(step["Type"]), arguments
            elif step.get("Type") == "Tuning":
                definitions = [
                    arguments.get("TrainingJobDefinition"),
                    *as_list(arguments.get("TrainingJobDefinitions")),
                ]
                for job in definitions:
                    if job is not None:
                        yield step, "Training", job if isinstance(job, Mapping) else {}
            if step.get("Type") == "Condition":
                yield from walk(arguments.get("IfSteps"))
                yield from walk(arguments.get("ElseSteps"))

    yield from walk(definition.get("Steps"))


def vpc_config_path(kind: str) -> str:
    """Where a job request (job_requests' kind) keeps its VpcConfig: CreateProcessingJob
    in NetworkConfig, CreateTrainingJob (and a tuning job's definitions) at the top."""
    return "NetworkConfig.VpcConfig" if kind == "Processing" else "VpcConfig"


def transform_requests(definition: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any], Any]]:
    """(step, CreateTransformJob request) for every transform step, in branches too."""

    def walk(steps: Any) -> Iterator[tuple[Mapping[str, Any], Any]]:
        for step in as_list(steps):
            if not isinstance(step, Mapping):
                continue
            arguments = step.get("Arguments")
            arguments = arguments if isinstance(arguments, Mapping) else {}
            if step.get("Type") == TRANSFORM_STEP:
                yield step, arguments
            if step.get("Type") == "Condition":
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
    for step, kind, arguments in job_requests(definition):
        if kind == "Processing":
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
    for step, arguments in transform_requests(definition):
        required = list(TRANSFORM_KEYS)
        if isinstance(arguments.get("DataCaptureConfig"), Mapping):
            required.append(("DataCaptureConfig.KmsKeyId", "batch capture"))
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
    for step, kind, arguments in job_requests(definition):
        path = (
            "NetworkConfig.EnableInterContainerTrafficEncryption"
            if kind == "Processing"
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
    for step, kind, arguments in job_requests(definition):
        if step.get("Name") in allowed:
            continue
        path = (
            "NetworkConfig.EnableNetworkIsolation"
            if kind == "Processing"
            else "EnableNetworkIsolation"
        )
        if lookup(arguments, path) is not True:
            found.append(
                f"{_where(resource_type, context, step)}: pipeline jobs must set {path} true "
                "(only the steps in networkAccessSteps may reach the network)"
            )
    return found
