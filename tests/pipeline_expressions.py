"""Pipeline definition expressions (``Get``, ``Std:Join``, ``Std:JsonGet``), resolved locally.

SageMaker Pipelines resolves these when a step starts: parameters from the execution,
``Execution.*`` variables, and ``Steps.<name>.<property path>`` from the Describe* document
of a step that has already run. This does the same against the properties a local run
records, and says plainly when a definition points at something no earlier step produced.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Steps.<step>.<path>; the path uses attribute names and ['key'] / [index] subscripts.
_TOKEN = re.compile(r"\.?([A-Za-z0-9_]+)|\[(?:'([^']*)'|(\d+))\]")


class DefinitionError(Exception):
    """The definition cannot be resolved: the message names the step and the reference."""


@dataclass(frozen=True)
class Execution:
    pipeline_name: str
    execution_id: str
    parameters: Mapping[str, Any]

    @property
    def variables(self) -> dict[str, str]:
        arn = f"arn:aws:sagemaker:local:000000000000:pipeline/{self.pipeline_name.lower()}"
        return {
            "PipelineName": self.pipeline_name,
            "PipelineArn": arn,
            "PipelineExecutionId": self.execution_id,
            "PipelineExecutionArn": f"{arn}/execution/{self.execution_id}",
        }


def execution_for(definition: Mapping[str, Any], name: str, execution_id: str) -> Execution:
    """Parameters at their defaults, as a run started without overrides has them."""
    return Execution(
        name, execution_id, {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    )


@dataclass(frozen=True)
class PropertyFileRef:
    step: str
    name: str


@dataclass
class Context:
    """What a reference may read: the execution, and the steps that have run so far."""

    execution: Execution
    read_json: Callable[[str], Any]
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    property_files: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    current: str = ""

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Get":
                return self._get(argument)
            if key == "Std:Join":
                return argument["On"].join(_text(self.resolve(v)) for v in argument["Values"])
            if key == "Std:JsonGet":
                return self._json_get(argument)
            if key.startswith("Std:"):
                raise DefinitionError(f"{self.current}: no local resolver for {key}")
        return {key: self.resolve(item) for key, item in value.items()}

    def _get(self, reference: str) -> Any:
        kind, _, rest = reference.partition(".")
        if kind == "Parameters":
            if rest not in self.execution.parameters:
                raise DefinitionError(f"{self.current}: {reference} is not a pipeline parameter")
            return self.execution.parameters[rest]
        if kind == "Execution":
            if rest not in self.execution.variables:
                raise DefinitionError(f"{self.current}: unknown execution variable {reference}")
            return self.execution.variables[rest]
        if kind != "Steps":
            raise DefinitionError(f"{self.current}: cannot resolve {reference}")
        step, _, path = rest.partition(".")
        if step not in self.properties:
            raise DefinitionError(
                f"{self.current}: {reference} refers to step {step!r}, which has not run "
                "before it; no earlier step produced it"
            )
        if path.startswith("PropertyFiles."):
            name = path.removeprefix("PropertyFiles.")
            if name not in self.property_files.get(step, {}):
                raise DefinitionError(f"{self.current}: step {step} declares no {name}")
            return PropertyFileRef(step, name)
        return walk(self.properties[step], path, f"{self.current}: {reference}")

    def _json_get(self, argument: Mapping[str, Any]) -> Any:
        ref = self.resolve(argument["PropertyFile"])
        if not isinstance(ref, PropertyFileRef):
            raise DefinitionError(f"{self.current}: Std:JsonGet needs a property file")
        declared = self.property_files[ref.step][ref.name]
        output = f"ProcessingOutputConfig.Outputs['{declared['OutputName']}'].S3Output.S3Uri"
        prefix = walk(self.properties[ref.step], output, f"{self.current}: {ref.name}")
        document = self.read_json(f"{prefix.rstrip('/')}/{declared['FilePath']}")
        return walk(document, argument["Path"], f"{self.current}: {ref.name} {argument['Path']}")


def walk(document: Any, path: str, label: str) -> Any:
    """Follow ``A.B['name'].C[0]``; a ['name'] on a list picks the item with that *Name."""
    value = document
    for attribute, key, index in _TOKEN.findall(path):
        if attribute:
            if not isinstance(value, dict) or attribute not in value:
                raise DefinitionError(f"{label}: no {attribute!r} at that point of {path!r}")
            value = value[attribute]
        elif index:
            if not isinstance(value, list) or int(index) >= len(value):
                raise DefinitionError(f"{label}: no item {index} in {path!r}")
            value = value[int(index)]
        else:
            named = [i for i in value or [] if key in _names(i)] if isinstance(value, list) else []
            if len(named) != 1:
                raise DefinitionError(f"{label}: no item named {key!r} in {path!r}")
            value = named[0]
    return value


def _names(item: Any) -> set[str]:
    if not isinstance(item, dict):
        return set()
    return {v for k, v in item.items() if k.endswith("Name") and isinstance(v, str)}


def _text(value: Any) -> str:
    # Std:Join renders parameters as their JSON scalars would print: 24, 0.2, true.
    if isinstance(value, str):
        return value
    if isinstance(value, PropertyFileRef):
        raise DefinitionError(f"Std:Join cannot join the property file {value.name}")
    return json.dumps(value)


def step_references(step: Mapping[str, Any]) -> set[str]:
    """Names of the steps whose properties ``step`` (or any step nested in it) reads."""
    found: set[str] = set(step.get("DependsOn", []))

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            get = value.get("Get")
            if isinstance(get, str) and get.startswith("Steps."):
                found.add(get.split(".")[1])
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    visit(step)
    return found
