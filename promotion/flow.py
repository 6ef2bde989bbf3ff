"""Promote a model into a stage, or roll a stage back: gates, registry record, stack file.

Order of effects, chosen so a re-run after any failure finishes the job instead of
duplicating it: gates (read only) -> artifacts copied -> package created in the target's
registry -> decision recorded -> stack file written. The copy is found again by its
idempotency key (source package and archive hash), so a second run changes nothing.

Concurrent runs into one target: each holds the target's lock (:mod:`promotion.lock`) from
the gates to the write, and remembers what the target served when it began. A run that
finds the target changed meanwhile (another run won) stops before any effect, unless the
change is exactly what it came to do, which makes it a no-op.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TypeVar

from infra.config.settings import ModelRef
from infra.naming import ArtifactPrefix, BucketPurpose
from promotion import artifacts, gates, lock
from promotion.aws import Clients, Stage
from promotion.registry import (
    APPROVED,
    DECIDED_AT,
    DECIDED_BY,
    DECISION,
    MODEL_CARD,
    MODEL_DATA_SHA256,
    PROMOTED_FROM,
    REJECTED,
    ModelPackage,
    Registry,
    RegistryError,
)
from promotion.stack_file import StackFile, StackFileConflictError, describe

PROMOTED_PREFIX = "promoted"
_T = TypeVar("_T")


class PromotionError(Exception):
    """Promotion or rollback refused. Nothing was changed, unless the message says what was
    (only a stack file changed behind the lock's back, at the write, can cause that)."""

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
    wait: lock.Wait | None = None,
) -> Outcome:
    """Serve ``source``'s model in ``target`` (or, with no source, the newest approved
    version in ``target``'s own registry)."""
    if dry_run:
        gated = _gated(clients, target, source)
        return Outcome(gated.package, False, gated.report, ("dry run: nothing changed",))
    # Read before waiting for the lock: a run that wins meanwhile must not be overwritten.
    expected = _served(clients, target)
    what = f"{source.stack} to {target.stack}" if source else f"{target.stack}'s newest"
    with _exclusive(target, f"{decision.approver} promoting {what}", wait) as swept:
        outcome = _promote(clients, target, _gated(clients, target, source), decision, expected)
    return replace(outcome, notes=(*swept, *outcome.notes))


@dataclass(frozen=True)
class _Gated:
    """A package that passed every gate for ``stage``, and where it came from."""

    package: ModelPackage
    stage: Stage
    origin: str
    report: gates.GateReport
    archive: artifacts.VerifiedArchive


def _gated(clients: Clients, target: StackFile, source: StackFile | None) -> _Gated:
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
    if not report.passed or report.archive is None:
        raise PromotionError(
            f"{package.arn} may not serve in {stage.name}: "
            + "; ".join(f"{r.gate}: {r.detail}" for r in report.failures),
            report,
        )
    return _Gated(package, stage, origin, report, report.archive)


def _promote(
    clients: Clients,
    target: StackFile,
    gated: _Gated,
    decision: Decision,
    expected: _Served,
) -> Outcome:
    registry, stage, package = Registry(clients.sagemaker), gated.stage, gated.package
    existing = _existing(registry, gated)
    # Before any effect: stop if another run changed the target, unless to this very model.
    also = _served_as(existing) if existing else None
    _check_unchanged(clients, target, expected, "promotion", also=also)
    if existing is not None:
        landed, copied = existing, False
    else:
        landed, copied = _copy(clients, registry, gated, decision)
    wanted = _served_as(landed)
    notes: list[str] = []
    recorded = False
    if copied or landed.status != APPROVED or stage.settings.serving.model != wanted:
        registry.record(
            landed,
            APPROVED,
            f"{decision.approver} promoted {package.arn} from {gated.origin} to {stage.name} "
            f"at {decision.stamp}: {decision.reason}",
            {
                DECIDED_BY: decision.approver,
                DECIDED_AT: decision.stamp,
                DECISION: f"promoted to {stage.name}",
                MODEL_DATA_SHA256: gated.archive.sha256,
            },
        )
        recorded = True
        notes.append(f"recorded the approval on {landed.arn}")
    written = _write(target, wanted, expected.model, "promotion", landed)
    if written:
        notes.append(_written_note(target, landed.version, expected.model))
    return Outcome(landed, changed=recorded or written, report=gated.report, notes=tuple(notes))


def rollback(
    clients: Clients,
    *,
    target: StackFile,
    decision: Decision,
    dry_run: bool = False,
    wait: lock.Wait | None = None,
) -> Outcome:
    """Serve the approved version before the current one, and reject the current one."""
    if dry_run:
        _, previous, report = _rollback_plan(clients, target)
        return Outcome(previous, False, report, ("dry run: nothing changed",))
    expected = _served(clients, target)
    what = f"{decision.approver} rolling back {target.stack}"
    with _exclusive(target, what, wait) as swept:
        _check_unchanged(clients, target, expected, "rollback")
        outcome = _roll_back(clients, target, decision, expected.model)
    return replace(outcome, notes=(*swept, *outcome.notes))


def _rollback_plan(
    clients: Clients, target: StackFile
) -> tuple[ModelPackage, ModelPackage, gates.GateReport]:
    """The version served now, the one to serve instead, and its integrity check."""
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
    return current, previous, report


def _roll_back(
    clients: Clients, target: StackFile, decision: Decision, expected: ModelRef | None
) -> Outcome:
    current, previous, report = _rollback_plan(clients, target)
    stack = target.stack
    Registry(clients.sagemaker).record(
        current,
        REJECTED,
        f"{decision.approver} rolled {stack} back from version {current.version} to "
        f"{previous.version} at {decision.stamp}: {decision.reason}",
        {
            DECIDED_BY: decision.approver,
            DECIDED_AT: decision.stamp,
            DECISION: f"rolled back in {stack}",
        },
    )
    _write(target, _served_as(previous), expected, "rollback", current)
    return Outcome(
        previous,
        changed=True,
        report=report,
        notes=(f"rejected {current.arn}", _written_note(target, previous.version, expected)),
    )


@contextmanager
def _exclusive(target: StackFile, what: str, wait: lock.Wait | None) -> Iterator[tuple[str, ...]]:
    """Hold the target's lock; yield notes on the temporary files killed runs left."""
    try:
        with lock.holding(target.path, what, wait or lock.Wait()):
            removed = target.remove_stale_temporaries()
            yield tuple(f"removed {path.name}, left by an interrupted write" for path in removed)
    except lock.LockBusyError as exc:
        raise PromotionError(
            f"another promotion or rollback of {target.stack} is running: {exc.lock_path.name} "
            f"is held by {exc.holder}. Gave up after {exc.waited:g} s; re-run once it has "
            "finished"
        ) from None
    except lock.LockError as exc:
        raise PromotionError(str(exc)) from None


@dataclass(frozen=True)
class _Served:
    """What a target serves: its stack file's reference, and whether the registry holds
    that version. Versions are never reused, so the pair stays one model even when the
    file named a version before it existed (as a new stack's file may)."""

    model: ModelRef | None
    registered: bool


def _served(clients: Clients, target: StackFile) -> _Served:
    settings = target.settings()
    model = settings.serving.model
    if model is None or model.package_version is None:
        return _Served(model, registered=True)  # no version number to be filled in later
    arn = Stage(settings, _account(clients)).package_arn(model.package_version)
    try:
        Registry(clients.sagemaker).describe(arn)
    except RegistryError:
        return _Served(model, registered=False)
    return _Served(model, registered=True)


def _check_unchanged(
    clients: Clients,
    target: StackFile,
    expected: _Served,
    action: str,
    also: ModelRef | None = None,
) -> None:
    now = _served(clients, target)
    if now == expected or (also is not None and now.model == also):
        return
    if now.model == expected.model:
        # Same number, but it named nothing when this run began; another run created it.
        raise PromotionError(
            f"{target.path.name} names {describe(now.model)}, which did not exist when this "
            f"{action} began and does now. {_another_won(action)}"
        )
    raise PromotionError(_conflict(target, expected.model, now.model, action))


def _write(
    target: StackFile,
    wanted: ModelRef,
    expected: ModelRef | None,
    action: str,
    package: ModelPackage,
) -> bool:
    """The compare-and-set write; on a conflict, say what the registry already holds."""
    try:
        return target.serve(wanted, expected=expected)
    except StackFileConflictError as exc:
        raise PromotionError(
            f"{_conflict(target, expected, exc.current, action)}. The registry already "
            f"records this {action} on {package.arn}; a re-run finds it"
        ) from None


def _conflict(
    target: StackFile, expected: ModelRef | None, current: ModelRef | None, action: str
) -> str:
    return (
        f"{target.path.name} changed after this {action} began: it served "
        f"{describe(expected)} then and serves {describe(current)} now. {_another_won(action)}"
    )


def _another_won(action: str) -> str:
    rerun = "promote on top of it" if action == "promotion" else "roll back from there"
    return f"Another promotion or rollback won; re-run to {rerun}"


def _written_note(target: StackFile, version: int, was: ModelRef | None) -> str:
    return f"{target.path.name}: serving.model.packageVersion = {version} (was {describe(was)})"


def _served_as(package: ModelPackage) -> ModelRef:
    return ModelRef(package_version=package.version)


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


def _existing(registry: Registry, gated: _Gated) -> ModelPackage | None:
    """The package already in the target's registry: the source itself, or its copy."""
    if gated.package.group == gated.stage.model_package_group:
        return gated.package
    return registry.promoted_copy(
        gated.stage.model_package_group, gated.package.arn, gated.archive.sha256
    )


def _copy(
    clients: Clients, registry: Registry, gated: _Gated, decision: Decision
) -> tuple[ModelPackage, bool]:
    """A new copy whose artifacts live in the target's own bucket (a source stack may be
    destroyed); or, if a concurrent run made one first, that one."""
    stage, package, sha256 = gated.stage, gated.package, gated.archive.sha256
    bucket = stage.bucket(BucketPurpose.ARTIFACTS)
    model_uri = artifacts.S3Uri(
        bucket, f"{ArtifactPrefix.MODELS}{PROMOTED_PREFIX}/{sha256}/model.tar.gz"
    )
    artifacts.copy(clients.s3, package.model_data_url, model_uri)

    def copied(source: str | None, name: str) -> str | None:
        """The report's copy next to the model's: the target's gates read them later."""
        if not source:
            return None
        target = artifacts.S3Uri(
            bucket, f"{ArtifactPrefix.EVALUATION}{PROMOTED_PREFIX}/{sha256}/{name}"
        )
        artifacts.copy(clients.s3, source, target)
        return str(target)

    card_uri = copied(package.metadata.get(MODEL_CARD), "model_card.json")
    arn = registry.create_copy(
        stage.model_package_group,
        package,
        model_data_url=str(model_uri),
        statistics_uri=copied(package.statistics_uri, "evaluation.json"),
        bias_uri=copied(package.bias_report, "bias/analysis.json"),
        explainability_uri=copied(package.explainability_report, "explainability/analysis.json"),
        description=f"{package.arn} from {gated.origin}, promoted by {decision.approver}",
        metadata={
            PROMOTED_FROM: package.arn,
            MODEL_DATA_SHA256: sha256,
            **({MODEL_CARD: card_uri} if card_uri else {}),
        },
    )
    first = registry.promoted_copy(stage.model_package_group, package.arn, sha256)
    if first is None or first.arn == arn:
        return registry.describe(arn), True
    # A run on another machine (no shared lock) copied it first; the registry has no
    # conditional create, so the later copy steps aside and both runs use the first.
    registry.record(
        registry.describe(arn),
        REJECTED,
        f"duplicate of {first.arn}, which a concurrent promotion made first; never served",
        {DECISION: f"duplicate of version {first.version}"},
    )
    return first, False


def _account(clients: Clients) -> str:
    account: str = clients.sts.get_caller_identity()["Account"]
    return account


def _guard(call: Callable[[], _T]) -> _T:
    try:
        return call()
    except RegistryError as exc:
        raise PromotionError(str(exc)) from None
