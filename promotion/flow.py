"""Promote a model into a stage, or roll a stage back: gates, registry record, stack file.

Order of effects, chosen so a re-run after any failure finishes the job instead of
duplicating it: gates (read only) -> artifacts copied -> package created in the target's
registry -> decision recorded -> stack file written. The copy is found again by its
``promoted-from`` record, so a second run changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from infra.config.settings import ModelRef
from infra.naming import ArtifactPrefix, BucketPurpose
from promotion import artifacts, gates
from promotion.aws import Clients, Stage
from promotion.registry import (
    APPROVED,
    DECIDED_AT,
    DECIDED_BY,
    DECISION,
    MODEL_DATA_SHA256,
    PROMOTED_FROM,
    REJECTED,
    ModelPackage,
    Registry,
    RegistryError,
)
from promotion.stack_file import StackFile

PROMOTED_PREFIX = "promoted"
_T = TypeVar("_T")


class PromotionError(Exception):
    """Promotion or rollback refused; nothing was changed."""

    def __init__(self, message: str, report: gates.GateReport | None = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class Decision:
    approver: str
    reason: str
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def stamp(self) -> str:
        return self.at.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Outcome:
    package: ModelPackage
    changed: bool
    report: gates.GateReport | None = None
    notes: tuple[str, ...] = ()


def promote(
    clients: Clients,
    *,
    target: StackFile,
    source: StackFile | None,
    decision: Decision,
    dry_run: bool = False,
) -> Outcome:
    """Serve ``source``'s model in ``target`` (or, with no source, the newest approved
    version in ``target``'s own registry)."""
    account = _account(clients)
    stage = Stage(target.settings(), account)
    registry = Registry(clients.sagemaker)
    if source is not None:
        source_stage = Stage(source.settings(), account)
        package = _served_package(registry, source_stage)
        origin = source_stage.name
    else:
        latest = _guard(lambda: registry.latest_approved(stage.model_package_group))
        if latest is None:
            raise PromotionError(f"{stage.model_package_group} has no approved model version")
        package, source_stage, origin = latest, None, f"{stage.model_package_group}"

    report = gates.check(
        clients,
        package,
        target=stage.settings,
        source_endpoint=source_stage.settings if source_stage else None,
    )
    if not report.passed:
        raise PromotionError(
            f"{package.arn} may not serve in {stage.name}: "
            + "; ".join(f"{r.gate}: {r.detail}" for r in report.failures),
            report,
        )
    if dry_run:
        return Outcome(package, changed=False, report=report, notes=("dry run: nothing changed",))

    assert report.archive is not None  # the integrity gate passed
    landed, copied = _land(clients, registry, stage, package, report.archive, decision, origin)
    wanted = ModelRef(package_version=landed.version)
    notes: list[str] = []
    recorded = False
    if copied or landed.status != APPROVED or stage.settings.serving.model != wanted:
        registry.record(
            landed,
            APPROVED,
            f"{decision.approver} promoted {package.arn} from {origin} to {stage.name} at "
            f"{decision.stamp}: {decision.reason}",
            {
                DECIDED_BY: decision.approver,
                DECIDED_AT: decision.stamp,
                DECISION: f"promoted to {stage.name}",
                MODEL_DATA_SHA256: report.archive.sha256,
            },
        )
        recorded = True
        notes.append(f"recorded the approval on {landed.arn}")
    written = target.serve(wanted)
    if written:
        notes.append(f"{target.path.name}: serving.model.packageVersion = {landed.version}")
    return Outcome(landed, changed=recorded or written, report=report, notes=tuple(notes))


def rollback(
    clients: Clients, *, target: StackFile, decision: Decision, dry_run: bool = False
) -> Outcome:
    """Serve the approved version before the current one, and reject the current one."""
    stage = Stage(target.settings(), _account(clients))
    registry = Registry(clients.sagemaker)
    current = _served_package(registry, stage)
    if current.group != stage.model_package_group:
        raise PromotionError(
            f"{stage.name} serves {current.arn}, outside its own registry "
            f"{stage.model_package_group}; roll back by promoting the version you want"
        )
    previous = _guard(
        lambda: registry.latest_approved(stage.model_package_group, below=current.version)
    )
    if previous is None:
        raise PromotionError(
            f"{stage.model_package_group} has no approved version before {current.version}"
        )
    integrity, _ = gates.artifact_intact(clients.s3, previous)
    report = gates.GateReport((integrity,), None)
    if not integrity.passed:
        raise PromotionError(f"cannot roll back to {previous.arn}: {integrity.detail}", report)
    if dry_run:
        return Outcome(previous, changed=False, report=report, notes=("dry run: nothing changed",))
    registry.record(
        current,
        REJECTED,
        f"{decision.approver} rolled {stage.name} back from version {current.version} to "
        f"{previous.version} at {decision.stamp}: {decision.reason}",
        {
            DECIDED_BY: decision.approver,
            DECIDED_AT: decision.stamp,
            DECISION: f"rolled back in {stage.name}",
        },
    )
    target.serve(ModelRef(package_version=previous.version))
    return Outcome(
        previous,
        changed=True,
        report=report,
        notes=(
            f"rejected {current.arn}",
            f"{target.path.name}: serving.model.packageVersion = {previous.version}",
        ),
    )


def _served_package(registry: Registry, stage: Stage) -> ModelPackage:
    model = stage.settings.serving.model
    if model is None:
        raise PromotionError(f"{stage.name} serves no model: mlops:serving.model is not set")
    if model.package_version is not None:
        arn = stage.package_arn(model.package_version)
    elif model.package_arn is not None:
        arn = model.package_arn
    else:
        raise PromotionError(
            f"{stage.name} serves a raw archive ({model.data_uri}), not a registered "
            "package; promotion needs the registry's record of approval and metrics"
        )
    return _guard(lambda: registry.describe(arn))


def _land(
    clients: Clients,
    registry: Registry,
    stage: Stage,
    package: ModelPackage,
    archive: artifacts.VerifiedArchive,
    decision: Decision,
    origin: str,
) -> tuple[ModelPackage, bool]:
    """The package in the target's registry: the source itself, an earlier copy, or a new
    copy whose artifacts live in the target's own bucket (a source stack may be destroyed)."""
    if package.group == stage.model_package_group:
        return package, False
    earlier = registry.promoted_from(stage.model_package_group, package.arn)
    if earlier is not None:
        return earlier, False
    bucket = stage.bucket(BucketPurpose.ARTIFACTS)
    model_uri = artifacts.S3Uri(
        bucket, f"{ArtifactPrefix.MODELS}{PROMOTED_PREFIX}/{archive.sha256}/model.tar.gz"
    )
    artifacts.copy(clients.s3, package.model_data_url, model_uri)
    statistics_uri = None
    if package.statistics_uri:
        statistics = artifacts.S3Uri(
            bucket,
            f"{ArtifactPrefix.EVALUATION}{PROMOTED_PREFIX}/{archive.sha256}/evaluation.json",
        )
        artifacts.copy(clients.s3, package.statistics_uri, statistics)
        statistics_uri = str(statistics)
    arn = registry.create_copy(
        stage.model_package_group,
        package,
        model_data_url=str(model_uri),
        statistics_uri=statistics_uri,
        description=f"{package.arn} from {origin}, promoted by {decision.approver}",
        metadata={PROMOTED_FROM: package.arn, MODEL_DATA_SHA256: archive.sha256},
    )
    return registry.describe(arn), True


def _account(clients: Clients) -> str:
    account: str = clients.sts.get_caller_identity()["Account"]
    return account


def _guard(call: Callable[[], _T]) -> _T:
    try:
        return call()
    except RegistryError as exc:
        raise PromotionError(str(exc)) from None
