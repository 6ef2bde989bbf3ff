"""network-isolation: containers that run the kit's code and models get no network."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from guardrails.encryption import ENDPOINT_CONFIG, TRAINING_JOB
from guardrails.model import UNKNOWN, Context, Finding, Resource, as_list, linked, subject

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


def validate_models(resources: Sequence[Resource], params: Mapping[str, Any]) -> list[Finding]:
    """Models need isolation, except one only serverless variants serve: SageMaker
    Serverless Inference does not support network isolation."""
    models = [r for r in resources if r.type == MODEL]
    exempt_serverless = params.get("exemptServerless", True) is not False
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

    findings: list[Finding] = []
    for model in models:
        if _isolated(model.props):
            continue
        configs = served_by[model.urn]
        if exempt_serverless and configs and all(_serverless_only(c) for c in configs):
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
