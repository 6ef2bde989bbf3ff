"""network-isolation: containers that run the kit's code and models get no network."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from guardrails.encryption import ENDPOINT_CONFIG, TRAINING_JOB
from guardrails.model import (
    UNKNOWN,
    Context,
    Finding,
    Resource,
    as_document,
    as_list,
    known,
    linked,
    subject,
)
from guardrails.pipeline_jobs import PIPELINE, transform_requests

MODEL = "aws:sagemaker/model:Model"


def validate_training_job(
    resource_type: str, props: Mapping[str, Any], context: Context
) -> list[str]:
    if resource_type != TRAINING_JOB or _isolated(props):
        return []
    return [
        f"{subject(resource_type, context.name)}: training jobs must set "
        "enableNetworkIsolation true"
    ]


def _isolated(props: Mapping[str, Any]) -> bool:
    # Unknown until apply means the program computed it: give it the benefit of the doubt.
    return props.get("enableNetworkIsolation") in (True, UNKNOWN)


def _serverless_only(config: Resource) -> bool:
    variants = [
        v for v in as_list(config.props.get("productionVariants")) if isinstance(v, Mapping)
    ]
    return bool(variants) and all(v.get("serverlessConfig") for v in variants)


def serverless_only_models(resources: Sequence[Resource]) -> set[str]:
    """URNs of the models that endpoint configs serve, all of them only serverless."""
    models = [r for r in resources if r.type == MODEL]
    served_by: dict[str, list[Resource]] = {m.urn: [] for m in models}
    for config in (r for r in resources if r.type == ENDPOINT_CONFIG):
        for variant in as_list(config.props.get("productionVariants")):
            if not isinstance(variant, Mapping):
                continue
            probe = Resource(
                config.urn,
                config.type,
                config.name,
                {"modelName": variant.get("modelName")},
                dependencies=config.dependencies,
            )
            for model in linked(probe, "modelName", models, "name"):
                served_by[model.urn].append(config)
    return {
        urn for urn, configs in served_by.items() if configs and all(map(_serverless_only, configs))
    }


def validate_models(resources: Sequence[Resource], params: Mapping[str, Any]) -> list[Finding]:
    """Models need isolation, except one only serverless variants serve: SageMaker
    Serverless Inference does not support network isolation."""
    models = [r for r in resources if r.type == MODEL]
    exempt_serverless = params.get("exemptServerless", True) is not False
    exempt = serverless_only_models(resources) if exempt_serverless else set()
    findings: list[Finding] = []
    for model in models:
        if _isolated(model.props) or model.urn in exempt:
            continue
        findings.append(
            Finding(
                model.urn,
                model.name,
                f"{subject(model.type, model.name)}: models must set enableNetworkIsolation true "
                "(only a model served solely by serverless variants is exempt)",
            )
        )
    return findings


def validate_transform_models(
    resources: Sequence[Resource], params: Mapping[str, Any]
) -> list[Finding]:
    """A pipeline's transform step runs a model's container on the batch data: the model
    must be one the stack declares, network-isolated (no serverless exemption applies)."""
    models = [r for r in resources if r.type == MODEL]
    findings: list[Finding] = []
    for pipeline in (r for r in resources if r.type == PIPELINE):
        definition = as_document(pipeline.props.get("pipelineDefinition"))
        if definition is None:
            continue
        for step, arguments in transform_requests(definition):
            probe = Resource(
                pipeline.urn,
                pipeline.type,
                pipeline.name,
                {"modelName": arguments.get("ModelName")},
                dependencies=pipeline.dependencies,
                property_dependencies={
                    "modelName": pipeline.property_dependencies.get("pipelineDefinition", ())
                },
            )
            where = f"{subject(pipeline.type, pipeline.name)}: step {step.get('Name')}"
            used = linked(probe, "modelName", models, "name")
            # An auto-named model's name is unknown until apply: with no recorded dependency
            # to follow, it may be the one (validate_models still checks every model).
            unnamed = any(not known(m.props.get("name")) for m in models)
            if not used and not unnamed:
                findings.append(
                    Finding(
                        pipeline.urn,
                        pipeline.name,
                        f"{where}: transforms with model {arguments.get('ModelName')!r}, which "
                        "the stack does not declare, so its network isolation cannot be checked",
                    )
                )
            findings += [
                Finding(
                    pipeline.urn,
                    pipeline.name,
                    f"{where}: its model {model.name} must set enableNetworkIsolation true "
                    "(a transform job runs the model's container on the batch data)",
                )
                for model in used
                if not _isolated(model.props)
            ]
    return findings
