"""Start a deployed SageMaker pipeline and follow its steps until it ends (boto3 only).

Used by ``mlops pipeline run``. The client is injected, so the same code runs against AWS,
a moto server, or a scripted fake in tests. moto has no ListPipelineExecutionSteps (in
process it raises NotImplementedError, as a server it answers 500). Where steps cannot be
listed, for that or any other reason, the runner says why once and follows the execution's
own status: a display problem never hides whether the run succeeded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from infra.aws_session import plain_error

TERMINAL_STATUSES = frozenset({"Succeeded", "Failed", "Stopped"})
DEFAULT_POLL_SECONDS = 15.0


class PipelineRunError(Exception):
    """The pipeline cannot be started as asked; the message says why and what to do."""


@dataclass(frozen=True)
class StepStatus:
    name: str
    status: str
    failure_reason: str = ""


@dataclass
class ExecutionResult:
    arn: str
    status: str
    failure_reason: str = ""
    steps: dict[str, StepStatus] = field(default_factory=dict)
    steps_available: bool = True

    @property
    def succeeded(self) -> bool:
        return self.status == "Succeeded"


Event = Callable[[str], None]


def parse_parameters(pairs: list[str]) -> dict[str, str]:
    """``Name=value`` pairs from the command line."""
    parsed: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise PipelineRunError(f"--param {pair!r}: expected Name=value")
        if name in parsed:
            raise PipelineRunError(f"--param {name} is given twice")
        parsed[name] = value
    return parsed


class PipelineRunner:
    def __init__(
        self,
        client: Any,
        pipeline_name: str,
        *,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.pipeline_name = pipeline_name
        self.poll_seconds = poll_seconds
        self.sleep = sleep

    def declared_parameters(self) -> dict[str, Any]:
        """The pipeline's parameters and their defaults, from its deployed definition."""
        try:
            described = self.client.describe_pipeline(PipelineName=self.pipeline_name)
        except ClientError as exc:
            # SageMaker documents ResourceNotFound; moto answers a ValidationException.
            error = exc.response.get("Error", {})
            if error.get("Code") == "ResourceNotFound" or "Could not find" in error.get(
                "Message", ""
            ):
                raise PipelineRunError(
                    f"pipeline {self.pipeline_name} does not exist here; deploy the stack "
                    "first (pulumi up)"
                ) from None
            raise
        definition = json.loads(described.get("PipelineDefinition") or "{}")
        return {p["Name"]: p.get("DefaultValue") for p in definition.get("Parameters", [])}

    def start(self, parameters: Mapping[str, str], *, display_name: str | None = None) -> str:
        declared = self.declared_parameters()
        unknown = sorted(set(parameters) - set(declared))
        if unknown:
            raise PipelineRunError(
                f"{self.pipeline_name} has no parameter {', '.join(unknown)}; "
                f"it takes: {', '.join(sorted(declared)) or 'none'}"
            )
        request: dict[str, Any] = {
            "PipelineName": self.pipeline_name,
            "PipelineParameters": [{"Name": k, "Value": v} for k, v in sorted(parameters.items())],
        }
        if display_name:
            request["PipelineExecutionDisplayName"] = display_name
        arn: str = self.client.start_pipeline_execution(**request)["PipelineExecutionArn"]
        return arn

    def follow(self, arn: str, on_event: Event | None = None) -> ExecutionResult:
        """Poll until the execution ends, reporting each step's status change once."""
        report = on_event or (lambda _: None)
        result = ExecutionResult(arn=arn, status="Executing")
        while True:
            described = self.client.describe_pipeline_execution(PipelineExecutionArn=arn)
            result.status = described["PipelineExecutionStatus"]
            result.failure_reason = described.get("FailureReason") or ""
            if result.steps_available:
                self._update_steps(result, report)
            if result.status in TERMINAL_STATUSES:
                return result
            self.sleep(self.poll_seconds)

    def _update_steps(self, result: ExecutionResult, report: Event) -> None:
        try:
            steps = self._list_steps(result.arn)
        except (NotImplementedError, ClientError) as exc:
            result.steps_available = False
            reason = plain_error(exc).splitlines()[0]
            report(f"cannot list the steps here ({reason}); following the execution only")
            return
        # The API lists the newest step first; report in the order steps started.
        for step in reversed(steps):
            status = StepStatus(
                name=step["StepName"],
                status=step.get("StepStatus", "Unknown"),
                failure_reason=step.get("FailureReason", ""),
            )
            if result.steps.get(status.name) != status:
                result.steps[status.name] = status
                reason = f": {status.failure_reason}" if status.failure_reason else ""
                report(f"{status.name}: {status.status}{reason}")

    def _list_steps(self, arn: str) -> list[dict[str, Any]]:
        steps: list[dict[str, Any]] = []
        request: dict[str, Any] = {"PipelineExecutionArn": arn, "SortOrder": "Descending"}
        while True:
            page = self.client.list_pipeline_execution_steps(**request)
            steps.extend(page.get("PipelineExecutionSteps", []))
            if not page.get("NextToken"):
                return steps
            request["NextToken"] = page["NextToken"]
