"""The gates a model passes before it may serve in a stage.

Every gate runs and reports, so one failed promotion lists everything that is wrong. A
gate never changes anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from infra.config.settings import Settings
from infra.naming import (
    EndpointAlarm,
    endpoint_alarm_name,
    endpoint_name,
    silent_alarm_names,
)
from promotion import artifacts
from promotion.alarms import alarm_states, firing
from promotion.aws import Clients
from promotion.registry import APPROVED, MODEL_CARD, MODEL_DATA_SHA256, ModelPackage
from training import bias, model_card
from training.metric_names import METRIC_KEYS

# evaluation.json follows Model Monitor's model-quality layout.
METRICS_SECTION = "binary_classification_metrics"


@dataclass(frozen=True)
class GateResult:
    gate: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class GateReport:
    results: tuple[GateResult, ...]
    archive: artifacts.VerifiedArchive | None

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[GateResult]:
        return [r for r in self.results if not r.passed]


def approved(package: ModelPackage) -> GateResult:
    return GateResult(
        "approved",
        package.status == APPROVED,
        f"{package.arn} is {package.status or 'without an approval status'}"
        + ("" if package.status == APPROVED else "; approve it in the registry first"),
    )


def metrics_meet(s3: Any, package: ModelPackage, target: Settings) -> GateResult:
    name, threshold = target.training.metric_name, target.training.metric_threshold
    gate = f"{name} >= {threshold}"
    if not package.statistics_uri:
        return GateResult(gate, False, f"{package.arn} has no model-quality metrics")
    try:
        report = artifacts.read_json(s3, package.statistics_uri)
        value = float(report[METRICS_SECTION][METRIC_KEYS[name]]["value"])
    except artifacts.ArtifactError as exc:
        return GateResult(gate, False, str(exc))
    except (KeyError, TypeError, ValueError):
        return GateResult(
            gate, False, f"{package.statistics_uri} has no {METRICS_SECTION}.{METRIC_KEYS[name]}"
        )
    verdict = "meets" if value >= threshold else "is below"
    return GateResult(
        gate,
        value >= threshold,
        f"{name} {value:.4f} {verdict} {target.stack}'s threshold {threshold}",
    )


def no_alarm_firing(cloudwatch: Any, source: Settings) -> GateResult:
    """The source endpoint's health alarms all exist and none is in ALARM."""
    gate = f"{source.stack} endpoint healthy"
    expected = {endpoint_alarm_name(source.prefix, alarm) for alarm in EndpointAlarm}
    found = alarm_states(cloudwatch, endpoint_name(source.prefix))
    missing = sorted(expected - set(found))
    if missing:
        return GateResult(
            gate,
            False,
            f"alarm(s) {', '.join(missing)} not found: is {source.stack}'s endpoint deployed?",
        )
    in_alarm = firing(found)
    # A silent monitoring job (no captured traffic for drift, no labels for quality: a
    # staging endpoint without traffic, say) says the monitoring reports nothing, not that
    # the model is unhealthy: it pages, but does not block. Quality, bias-drift and
    # attribution-drift alarms in ALARM do block.
    silent = set(silent_alarm_names(source.prefix))
    blocking = [name for name in in_alarm if name not in silent]
    if blocking:
        return GateResult(gate, False, f"in ALARM: {', '.join(blocking)}")
    quiet = sorted(silent & set(in_alarm))
    note = f"; {', '.join(quiet)} in ALARM: a monitoring job reports nothing" if quiet else ""
    return GateResult(gate, True, f"{len(found)} alarm(s), none blocking{note}")


def artifact_intact(
    s3: Any, package: ModelPackage
) -> tuple[GateResult, artifacts.VerifiedArchive | None]:
    gate = "artifact matches manifest"
    try:
        archive = artifacts.verify_archive(s3, package.model_data_url)
    except artifacts.ArtifactError as exc:
        return GateResult(gate, False, str(exc)), None
    recorded = package.metadata.get(MODEL_DATA_SHA256)
    if recorded and recorded != archive.sha256:
        return GateResult(
            gate,
            False,
            f"{package.model_data_url} has SHA-256 {archive.sha256}, but the registry "
            f"recorded {recorded} when it was promoted",
        ), None
    return GateResult(gate, True, f"model SHA-256 {archive.model_sha256[:16]}… as recorded"), (
        archive
    )


def card_valid(
    s3: Any, package: ModelPackage, archive: artifacts.VerifiedArchive | None
) -> GateResult:
    """The version's model card exists, follows SageMaker's schema, and (where it records
    one) names the model file the archive holds."""
    gate = "model card"
    location = package.metadata.get(MODEL_CARD)
    if not location:
        return GateResult(gate, False, f"{package.arn} has no model card ({MODEL_CARD} unset)")
    try:
        card = artifacts.read_json(s3, location)
    except artifacts.ArtifactError as exc:
        return GateResult(gate, False, str(exc))
    if not model_card.can_validate():
        return GateResult(gate, False, f"cannot check {location}: install jsonschema")
    problems = model_card.problems(card)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return GateResult(
            gate, False, f"{location} breaks SageMaker's model card schema: {problems[0]}{more}"
        )
    details = (card.get("additional_information") or {}).get("custom_details") or {}
    recorded = details.get("model_sha256")
    if archive is not None and recorded and recorded != archive.model_sha256:
        return GateResult(
            gate,
            False,
            f"{location} describes model {recorded[:16]}…, not the archive's "
            f"{archive.model_sha256[:16]}…",
        )
    return GateResult(gate, True, f"{location} follows SageMaker's model card schema")


def bias_within_limits(s3: Any, package: ModelPackage, target: Settings) -> GateResult:
    """The version's bias report (Clarify's analysis.json) covers the target's facets and
    keeps every metric the target limits within its limit."""
    limits = {str(metric): float(limit) for metric, limit in target.bias.limits.items()}
    gate = f"bias within {target.stack}'s limits"
    if not limits:
        return GateResult(gate, True, f"{target.stack} sets no bias limits")
    named = ", ".join(f"{m} {v:g}" for m, v in sorted(limits.items()))
    if not package.bias_report:
        return GateResult(
            gate, False, f"{package.arn} has no bias report; {target.stack} limits {named}"
        )
    try:
        report = artifacts.read_json(s3, package.bias_report)
        found = bias.violations(report, limits)
        missing = _uncovered(report, target, limits)
    except artifacts.ArtifactError as exc:
        return GateResult(gate, False, str(exc))
    except ValueError as exc:
        return GateResult(gate, False, f"{package.bias_report}: {exc}")
    if missing:
        return GateResult(
            gate,
            False,
            f"{package.bias_report} has no {'; no '.join(missing)}, which {target.stack} limits",
        )
    if found:
        more = f" (and {len(found) - 2} more)" if len(found) > 2 else ""
        return GateResult(gate, False, "; ".join(map(str, found[:2])) + more)
    return GateResult(gate, True, f"every limited metric within {named}")


def _uncovered(report: Any, target: Settings, limits: dict[str, float]) -> list[str]:
    """The target's facet groups and limited metrics the report computes nothing for."""
    computed: dict[tuple[str, frozenset[str]], set[str]] = {}
    for section in (bias.PRE_SECTION, bias.POST_SECTION):
        facets = ((report.get(section) or {}) if isinstance(report, dict) else {}).get("facets")
        for name, results in (facets or {}).items():
            for result in results:
                group = (name, frozenset(str(result["value_or_threshold"]).split(",")))
                metrics = computed.setdefault(group, set())
                metrics.update(bias.kit_name(str(m["name"])) for m in result["metrics"])
    missing = []
    for facet in target.bias.facets:
        group = (facet.name, frozenset(facet.sensitive_values))
        label = f"{facet.name}={','.join(facet.sensitive_values)}"
        if group not in computed:
            missing.append(f"{label} facet")
            continue
        absent = sorted(set(limits) - computed[group])
        if absent:
            missing.append(f"{', '.join(absent)} for {label}")
    return missing


def check(
    clients: Clients,
    package: ModelPackage,
    *,
    target: Settings,
    source_endpoint: Settings | None,
) -> GateReport:
    results: list[GateResult] = [approved(package), metrics_meet(clients.s3, package, target)]
    if source_endpoint is not None:
        results.append(no_alarm_firing(clients.cloudwatch, source_endpoint))
    integrity, archive = artifact_intact(clients.s3, package)
    results.append(integrity)
    results.append(card_valid(clients.s3, package, archive))
    results.append(bias_within_limits(clients.s3, package, target))
    return GateReport(tuple(results), archive)


def describe(results: Sequence[GateResult]) -> list[str]:
    return [f"{'pass' if r.passed else 'FAIL'}  {r.gate}: {r.detail}" for r in results]
