"""The steps of a SageMaker pipeline definition, each checked against the API its job calls.

SageMaker Pipelines turns a step's ``Arguments`` into a job request: Processing ->
CreateProcessingJob, Training -> CreateTrainingJob, Tuning -> CreateHyperParameterTuningJob,
RegisterModel -> CreateModelPackage, Model -> CreateModel, Transform -> CreateTransformJob;
Pipelines names the jobs itself, so the name member is not required.
Condition and Fail steps call no API; their nested steps are checked.

Arguments hold pipeline expressions, resolved here as far as the definition allows:

- ``{"Get": "Parameters.X"}``: the parameter's default when it has one (then checked in
  full), else an opaque value of the parameter's type.
- ``{"Get": "Execution.PipelineExecutionId"}``: inside a ``Std:Join`` a representative ID
  (12 lower-case letters and digits, as SageMaker issues them) so the joined string is
  checked in full; elsewhere an opaque string.
- Step properties (``{"Get": "Steps...."}``), ``Std:JsonGet`` and joins over them: opaque,
  type-checked only (a join is a string; a property may be any scalar).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from infra.plan.aws_requests.shapes import Opaque, OpaqueKind, Outcome, Violation, validate

# Step type -> (operation, the member Pipelines fills in).
STEP_APIS: dict[str, tuple[str, str | None]] = {
    "Processing": ("CreateProcessingJob", "ProcessingJobName"),
    "Training": ("CreateTrainingJob", "TrainingJobName"),
    "Tuning": ("CreateHyperParameterTuningJob", "HyperParameterTuningJobName"),
    "RegisterModel": ("CreateModelPackage", None),
    "Model": ("CreateModel", "ModelName"),
    "Transform": ("CreateTransformJob", "TransformJobName"),
}
CONTROL_STEPS = frozenset({"Condition", "Fail"})
EXECUTION_ID = "Execution.PipelineExecutionId"
REPRESENTATIVE_EXECUTION_ID = "0a1b2c3d4e5f"
_PARAMETER_KINDS: dict[str, OpaqueKind] = {
    "String": "string",
    "Integer": "integer",
    "Float": "float",
    "Boolean": "boolean",
}


@dataclass(frozen=True)
class StepCheck:
    step: str
    step_type: str
    # The API the step's job calls; None for Condition and Fail.
    operation: str | None
    outcome: Outcome

    @property
    def label(self) -> str:
        api = f" -> sagemaker.{self.operation}" if self.operation else ""
        return f"step {self.step} ({self.step_type}){api}"


def check_definition(definition: str | dict[str, Any]) -> list[StepCheck]:
    document = json.loads(definition) if isinstance(definition, str) else definition
    parameters = {p["Name"]: p for p in document.get("Parameters") or []}
    checks: list[StepCheck] = []
    for step in _all_steps(document.get("Steps") or []):
        checks.append(_check_step(step, parameters))
    return checks


def _all_steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for step in steps:
        found.append(step)
        arguments = step.get("Arguments") or {}
        if step.get("Type") == "Condition":
            found.extend(_all_steps(arguments.get("IfSteps") or []))
            found.extend(_all_steps(arguments.get("ElseSteps") or []))
    return found


def _check_step(step: dict[str, Any], parameters: dict[str, dict[str, Any]]) -> StepCheck:
    name, step_type = str(step.get("Name")), str(step.get("Type"))
    if step_type in CONTROL_STEPS:
        return StepCheck(name, step_type, None, Outcome((), 0, 0))
    if step_type not in STEP_APIS:
        rule = Violation("Type", "step type", f"no job API is mapped for {step_type!r} steps")
        return StepCheck(name, step_type, None, Outcome((rule,), 0, 0))
    operation, named_by_pipelines = STEP_APIS[step_type]
    arguments = resolve(step.get("Arguments") or {}, parameters)
    omitted = frozenset({named_by_pipelines} if named_by_pipelines else set())
    outcome = validate("sagemaker", operation, arguments, not_required=omitted)
    return StepCheck(name, step_type, operation, outcome)


def resolve(value: Any, parameters: dict[str, dict[str, Any]]) -> Any:
    """Arguments with each pipeline expression replaced by what the plan can know of it."""
    if isinstance(value, list):
        return [resolve(item, parameters) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        key, body = next(iter(value.items()))
        if key == "Get":
            return _get(str(body), parameters)
        if key == "Std:Join":
            return _join(body, parameters)
        if key.startswith("Std:"):
            return Opaque("scalar", key)
    return {key: resolve(item, parameters) for key, item in value.items()}


def _get(reference: str, parameters: dict[str, dict[str, Any]]) -> Any:
    if reference.startswith("Parameters."):
        parameter = parameters.get(reference.removeprefix("Parameters."))
        if parameter is None:
            return Opaque("scalar", f"{reference} (undefined)")
        if parameter.get("DefaultValue") is not None:
            return parameter["DefaultValue"]
        return Opaque(_PARAMETER_KINDS.get(parameter.get("Type", ""), "scalar"), reference)
    if reference.startswith("Execution."):
        return Opaque("string", reference)
    return Opaque("scalar", reference)


def _join(body: dict[str, Any], parameters: dict[str, dict[str, Any]]) -> Any:
    parts: list[str] = []
    for item in body.get("Values") or []:
        if item == {"Get": EXECUTION_ID}:
            parts.append(REPRESENTATIVE_EXECUTION_ID)
            continue
        value = resolve(item, parameters)
        if isinstance(value, Opaque):
            return Opaque("string", f"Std:Join over {value.origin}")
        parts.append(_text(value))
    return str(body.get("On", "")).join(parts)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
