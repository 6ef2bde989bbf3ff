"""The model card of a trained model, in SageMaker's model card JSON schema.

The card gathers what governance asks of a registered version: what the model is and is
for, the data it was trained on with its hash, the code that trained it, its test metrics,
its bias and explainability results, and the hashes that tie them together (lineage). It
validates against the schema in training/schemas (SageMaker's own, see there), which is
also what a model package's ``ModelCard`` content must follow, so the same document can go
to ``CreateModelCard`` and to the registry. The schema has no place for a model name, an
inference image or hashes, so those live in ``additional_information.custom_details``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from training import bias as bias_metrics
from training.schemas import MODEL_CARD_SCHEMA

CARD_FILE = "model_card.json"
# botocore's ModelCardContent: at most 100,000 characters.
CONTENT_LIMIT = 100_000
RISK_RATINGS = ("High", "Medium", "Low", "Unknown")
PACKAGE_ARN_KEY = "model_package_arn"
_NAME_LIMIT = 63  # metric group and evaluation names: the service's limit
_TEXT_LIMIT = 1024
_METRICS_SECTION = "binary_classification_metrics"


class CardError(Exception):
    """A card that does not follow the schema, or cannot be read."""


@dataclass(frozen=True)
class Provenance:
    """Where the model and its inputs live, as the pipeline knows them (a job sees only
    local mounts); anything unknown stays out of the card."""

    model_name: str = "churn"
    training_data: str | None = None
    test_data: str | None = None
    sourcedir: str | None = None
    # SageMaker's scikit-learn image: the kit trains, evaluates and serves with the same one.
    image: str | None = None
    model_artifact: str | None = None
    risk_rating: str = "Medium"


@dataclass(frozen=True)
class Results:
    """What evaluation produced: evaluation.json, and Clarify's bias and explainability
    analysis documents when they were computed."""

    evaluation: Mapping[str, Any]
    bias: Mapping[str, Any] | None = None
    explainability: Mapping[str, Any] | None = None
    test_sha256: str | None = None


def build(manifest: Mapping[str, Any], results: Results, provenance: Provenance) -> dict[str, Any]:
    """The card for the model ``manifest`` (the model directory's manifest.json) describes."""
    if provenance.risk_rating not in RISK_RATINGS:
        raise CardError(
            f"risk rating {provenance.risk_rating!r} is not one of {', '.join(RISK_RATINGS)}"
        )
    algorithm = _algorithm(manifest)
    card: dict[str, Any] = {
        "model_overview": _drop_none(
            {
                "model_description": _clip(
                    f"{provenance.model_name}: predicts whether a telecom customer will churn "
                    f"(binary classification), as a probability; {algorithm}."
                ),
                "model_creator": "MLOps kit training pipeline",
                "model_artifact": [provenance.model_artifact]
                if provenance.model_artifact
                else None,
                "algorithm_type": algorithm,
                "problem_type": "Binary Classification",
            }
        ),
        "intended_uses": {
            "purpose_of_model": "Rank customers by churn risk so retention offers reach those "
            "likely to leave.",
            "intended_uses": "Scoring the kit's customer records (the 19 features of the "
            "training data) in batch or behind the endpoint; a human decides what to offer.",
            "factors_affecting_model_efficiency": "Shifts in usage columns (call minutes, "
            "charges) and in the relation between usage and churn; states with few customers "
            "are scored on little data.",
            "risk_rating": provenance.risk_rating,
            "explanations_for_risk_rating": "A prediction steers an offer, it decides nothing "
            "irreversible; a biased one would treat a group of customers worse, which the bias "
            "analysis and its limits watch.",
        },
        "training_details": _training_details(manifest, provenance),
        "evaluation_details": [_evaluation(results, provenance)],
        "additional_information": {
            "ethical_considerations": "No protected attribute is a feature, but plan and state "
            "can stand in for groups; the bias metrics report them per configured facet.",
            "caveats_and_recommendations": "Re-evaluate after drift or concept-drift alarms; "
            "the threshold of 0.5 is the one the bias and quality metrics use.",
            "custom_details": _lineage(manifest, results, provenance),
        },
    }
    return card


def _algorithm(manifest: Mapping[str, Any]) -> str:
    sklearn = (manifest.get("libraries") or {}).get("scikit-learn", "unknown")
    return f"HistGradientBoostingClassifier (scikit-learn {sklearn})"


def _training_details(manifest: Mapping[str, Any], provenance: Provenance) -> dict[str, Any]:
    data = manifest.get("data") or {}
    hyperparameters = manifest.get("hyperparameters") or {}
    job = _drop_none(
        {
            "training_datasets": [provenance.training_data] if provenance.training_data else None,
            "training_environment": {"container_image": [provenance.image]}
            if provenance.image
            else None,
            "training_metrics": [
                {"name": f"validation:{name}", "value": float(value)}
                for name, value in sorted((manifest.get("validation_metrics") or {}).items())
                if _finite(value)
            ],
            "hyper_parameters": [
                {"name": str(name), "value": str(value)[:255]}
                for name, value in sorted(hyperparameters.items())
            ],
        }
    )
    rows = ", ".join(
        f"{data[key]} {key.removesuffix('_rows')} rows"
        for key in ("train_rows", "validation_rows")
        if key in data
    )
    return _drop_none(
        {
            "objective_function": {
                "function": {"function": "Minimize", "facet": "Loss", "condition": "log loss"},
                "notes": "Gradient-boosted trees fit the log loss, with balanced class weights "
                "when configured.",
            },
            "training_observations": _clip(f"Trained on {rows}." if rows else "") or None,
            "training_job_details": job,
        }
    )


def _evaluation(results: Results, provenance: Provenance) -> dict[str, Any]:
    groups = [_quality_group(results.evaluation)]
    if results.bias is not None:
        groups.extend(_bias_groups(results.bias))
    if results.explainability is not None:
        attributions = _attribution_group(results.explainability)
        if attributions is not None:
            groups.append(attributions)
    return _drop_none(
        {
            "name": "test split",
            "evaluation_observation": "Scored on the held-out test split; predicted labels at "
            "probability 0.5 for the bias metrics.",
            "datasets": [provenance.test_data] if provenance.test_data else None,
            "metadata": {"test_data_sha256": results.test_sha256} if results.test_sha256 else None,
            "metric_groups": groups,
        }
    )


def _quality_group(evaluation: Mapping[str, Any]) -> dict[str, Any]:
    metrics = evaluation.get(_METRICS_SECTION) or {}
    data: list[dict[str, Any]] = []
    for name, entry in sorted(metrics.items()):
        if not isinstance(entry, Mapping) or not _finite(entry.get("value")):
            continue
        item: dict[str, Any] = {"name": name, "type": "number", "value": float(entry["value"])}
        if _finite(entry.get("standard_deviation")):
            item["notes"] = f"standard deviation {float(entry['standard_deviation']):.6g}"
        data.append(item)
    matrix = metrics.get("confusion_matrix")
    if isinstance(matrix, Mapping):
        data.append(
            {
                "name": "confusion_matrix",
                "type": "matrix",
                "value": [[float(matrix[a][p]) for p in ("0", "1")] for a in ("0", "1")],
                "x_axis_name": ["predicted 0", "predicted 1"],
                "y_axis_name": ["actual 0", "actual 1"],
            }
        )
    return {"name": "binary classification", "metric_data": data}


def _bias_groups(analysis: Mapping[str, Any]) -> list[dict[str, Any]]:
    groups = []
    for section, stage in (
        (bias_metrics.PRE_SECTION, "pre-training"),
        (bias_metrics.POST_SECTION, "post-training"),
    ):
        facets = (analysis.get(section) or {}).get("facets") or {}
        for facet, results in facets.items():
            for result in results:
                name = f"{stage} bias {facet}={result.get('value_or_threshold')}"
                groups.append(
                    {
                        "name": name[:_NAME_LIMIT],
                        "metric_data": [_bias_metric(m) for m in result.get("metrics", [])],
                    }
                )
    return groups


def _bias_metric(metric: Mapping[str, Any]) -> dict[str, Any]:
    name = bias_metrics.kit_name(str(metric.get("name")))
    value = bias_metrics.metric_value(metric)
    if math.isfinite(value):
        return {"name": name, "type": "number", "value": value}
    if math.isnan(value):
        notes = _clip(str(metric.get("error") or "no value"))
        return {"name": name, "type": "string", "value": "not computed", "notes": notes}
    return {"name": name, "type": "string", "value": "Infinity" if value > 0 else "-Infinity"}


def _attribution_group(explainability: Mapping[str, Any]) -> dict[str, Any] | None:
    """Clarify's global SHAP values (explanations.kernel_shap.<label>.global_shap_values),
    largest first, as one bar chart."""
    labels = ((explainability.get("explanations") or {}).get("kernel_shap")) or {}
    for attributions in labels.values():
        values = (attributions or {}).get("global_shap_values") or {}
        ranked = sorted(
            ((str(k), float(v)) for k, v in values.items() if _finite(v)),
            key=lambda kv: (-abs(kv[1]), kv[0]),
        )
        if ranked:
            return {
                "name": "global attributions",
                "metric_data": [
                    {
                        "name": "mean absolute SHAP value",
                        "type": "bar_chart",
                        "value": [v for _, v in ranked],
                        "x_axis_name": [k[:_NAME_LIMIT] for k, _ in ranked],
                        "y_axis_name": "mean |SHAP|",
                    }
                ],
            }
    return None


def _lineage(
    manifest: Mapping[str, Any], results: Results, provenance: Provenance
) -> dict[str, str]:
    data, code = manifest.get("data") or {}, manifest.get("code") or {}
    model = manifest.get("model") or {}
    details = {
        "model_name": provenance.model_name,
        "inference_image": provenance.image,
        "code_commit": code.get("git_sha"),
        "code_package_sha256": code.get("package_sha256"),
        "code_sourcedir": provenance.sourcedir,
        "training_data": provenance.training_data,
        "training_data_sha256": data.get("train_sha256"),
        "validation_data_sha256": data.get("validation_sha256"),
        "raw_data_sha256": data.get("raw_sha256"),
        "test_data_sha256": results.test_sha256,
        "model_sha256": model.get("sha256"),
        "model_artifact": provenance.model_artifact,
    }
    return {key: _clip(str(value)) for key, value in details.items() if value is not None}


def with_package(card: Mapping[str, Any], package_arn: str) -> dict[str, Any]:
    """The card naming the model package it was registered as."""
    info = dict(card.get("additional_information") or {})
    info["custom_details"] = {**(info.get("custom_details") or {}), PACKAGE_ARN_KEY: package_arn}
    return {**card, "additional_information": info}


def problems(card: Any) -> list[str]:
    """Why ``card`` does not follow the schema (empty when it does)."""
    import jsonschema

    schema = json.loads(MODEL_CARD_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    found = [
        f"{'.'.join(map(str, error.absolute_path)) or 'the card'}: {error.message}"
        for error in sorted(validator.iter_errors(card), key=lambda e: list(map(str, e.path)))
    ]
    try:
        size = len(dumps(card))
    except ValueError as exc:
        return [*found, f"not JSON: {exc}"]
    if size > CONTENT_LIMIT:
        found.append(f"{size} characters, over the {CONTENT_LIMIT} CreateModelCard accepts")
    return found


def validate(card: Any) -> None:
    """Raise CardError naming the first problems when ``card`` does not follow the schema."""
    found = problems(card)
    if found:
        more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
        raise CardError("; ".join(found[:3]) + more)


def can_validate() -> bool:
    """Whether jsonschema and the schema file are here (the processing image has neither)."""
    try:
        import jsonschema  # noqa: F401
    except ImportError:
        return False
    return MODEL_CARD_SCHEMA.is_file()


def dumps(card: Any) -> str:
    # allow_nan=False: the service parses strict JSON.
    return json.dumps(card, indent=2, sort_keys=True, allow_nan=False) + "\n"


def loads(text: str | bytes, source: str) -> dict[str, Any]:
    try:
        card = json.loads(text)
    except ValueError as exc:
        raise CardError(f"{source} is not JSON: {exc}") from None
    if not isinstance(card, dict):
        raise CardError(f"{source} holds a JSON {type(card).__name__}, not a model card object")
    return card


def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and v != []}


def _clip(text: str) -> str:
    return text if len(text) <= _TEXT_LIMIT else text[: _TEXT_LIMIT - 1] + "…"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
