"""Promotion and rollback against moto: every gate passing and failing, idempotency.

moto holds the registry, the buckets and the alarms. Model archives are real: the session's
trained model directory, tarred as SageMaker would. moto has no UpdateEndpoint, so the
endpoint check runs against endpoints moto creates directly.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import promotion_race as race
import pytest
from conftest import REPO
from endpoint_alarms import put_endpoint_alarms
from moto import mock_aws
from typer.testing import CliRunner

from demo.embedded_aws import EmbeddedAws
from infra.naming import BucketPurpose, EndpointAlarm, bucket_name, endpoint_alarm_name
from infra.stack_yaml import remove_stale_temporaries, write_atomically
from mlops.cli import app
from promotion import flow, gates, lock
from promotion.aws import Clients
from promotion.endpoint import EndpointCheckError, verify
from promotion.registry import (
    APPROVED,
    DECISION,
    MODEL_CARD,
    MODEL_DATA_SHA256,
    PROMOTED_FROM,
    REJECTED,
    Registry,
)
from promotion.stack_file import StackFile, StackFileError

REGION = "eu-west-1"
ACCOUNT = "123456789012"
STACKS = ("dev", "staging", "prod")
IMAGE = f"141502667606.dkr.ecr.{REGION}.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
# The smallest card SageMaker's model card schema accepts with a description.
CARD = {"model_overview": {"model_description": "churn: the test suite's model"}}


def _bucket(stack: str) -> str:
    return bucket_name(f"churn-{stack}", BucketPurpose.ARTIFACTS, ACCOUNT, REGION)


@dataclass
class World:
    """Three deployed stacks in one moto account, and a project folder with their files."""

    clients: Clients
    project: Path
    archive: bytes

    def stack_file(self, stack: str) -> StackFile:
        return StackFile(self.project, stack)

    def text(self, stack: str) -> str:
        return (self.project / f"Pulumi.{stack}.yaml").read_text()

    def register(
        self,
        stack: str,
        *,
        auc: float = 0.9,
        status: str = APPROVED,
        archive: bytes | None = None,
        metadata: dict[str, str] | None = None,
    ) -> str:
        """Upload an archive and its evaluation, and register them as the pipeline would."""
        sm, s3 = self.clients.sagemaker, self.clients.s3
        group = f"churn-{stack}-models"
        version = len(
            sm.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
        )
        key = f"models/pipelines-run{version}/output/model.tar.gz"
        s3.put_object(Bucket=_bucket(stack), Key=key, Body=archive or self.archive)
        report = {
            "binary_classification_metrics": {"auc": {"value": auc, "standard_deviation": 0.01}}
        }
        eval_key = f"evaluation/run{version}/evaluation.json"
        s3.put_object(Bucket=_bucket(stack), Key=eval_key, Body=json.dumps(report).encode())
        request: dict[str, Any] = {
            "ModelPackageGroupName": group,
            "ModelApprovalStatus": status,
            "InferenceSpecification": {
                "Containers": [
                    {
                        "Image": IMAGE,
                        "ModelDataUrl": f"s3://{_bucket(stack)}/{key}",
                        "Environment": {"SAGEMAKER_PROGRAM": "inference.py"},
                    }
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            "ModelMetrics": {
                "ModelQuality": {
                    "Statistics": {
                        "ContentType": "application/json",
                        "S3Uri": f"s3://{_bucket(stack)}/{eval_key}",
                    }
                }
            },
        }
        # The pipeline registers every version with its model card, which promotion requires.
        card_key = f"evaluation/run{version}/model_card.json"
        s3.put_object(Bucket=_bucket(stack), Key=card_key, Body=json.dumps(CARD).encode())
        request["CustomerMetadataProperties"] = {
            MODEL_CARD: f"s3://{_bucket(stack)}/{card_key}",
            **(metadata or {}),
        }
        arn: str = sm.create_model_package(**request)["ModelPackageArn"]
        return arn

    def packages(self, stack: str) -> list[dict[str, Any]]:
        sm = self.clients.sagemaker
        summaries = sm.list_model_packages(ModelPackageGroupName=f"churn-{stack}-models")
        described = [
            sm.describe_model_package(ModelPackageName=s["ModelPackageArn"])
            for s in summaries["ModelPackageSummaryList"]
        ]
        for record in described:
            record.pop("ResponseMetadata")
        return sorted(described, key=lambda p: p["ModelPackageVersion"])

    def set_alarm(self, stack: str, alarm: EndpointAlarm, state: str) -> None:
        self.clients.cloudwatch.set_alarm_state(
            AlarmName=endpoint_alarm_name(f"churn-{stack}", alarm),
            StateValue=state,
            StateReason="test",
        )


def _tar(model_dir: Path, tamper: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            if path.is_file():
                data = path.read_bytes()
                if tamper and path.name == "model.joblib":
                    data = data + b"\0"
                info = tarfile.TarInfo(path.relative_to(model_dir).as_posix())
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def world(model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("Pulumi.yaml", *(f"Pulumi.{s}.yaml" for s in STACKS)):
        (tmp_path / name).write_text(race.without_bias_section((REPO / name).read_text()))
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        clients = Clients(*(session.client(s) for s in ("sagemaker", "s3", "cloudwatch", "sts")))
        for stack in STACKS:
            clients.s3.create_bucket(
                Bucket=_bucket(stack), CreateBucketConfiguration={"LocationConstraint": REGION}
            )
            clients.sagemaker.create_model_package_group(
                ModelPackageGroupName=f"churn-{stack}-models"
            )
            put_endpoint_alarms(clients.cloudwatch, f"churn-{stack}")
        yield World(clients, tmp_path, _tar(model_dir))


def _decision(reason: str = "weekly release") -> flow.Decision:
    return flow.Decision(approver="octocat", reason=reason)


def _promote(world: World, source: str | None, target: str) -> flow.Outcome:
    return flow.promote(
        world.clients,
        target=world.stack_file(target),
        source=world.stack_file(source) if source else None,
        decision=_decision(),
    )


def test_promote_to_dev_serves_the_newest_approved_version(world: World) -> None:
    world.register("dev")
    world.register("dev", status="PendingManualApproval")
    newest = world.register("dev")

    outcome = _promote(world, None, "dev")

    assert outcome.package.arn == newest
    assert world.stack_file("dev").settings().serving.model.package_version == 3  # type: ignore[union-attr]
    record = world.packages("dev")[2]
    assert "octocat promoted" in record["ApprovalDescription"]
    assert "weekly release" in record["ApprovalDescription"]


def test_promote_copies_the_model_into_the_target_registry_and_bucket(world: World) -> None:
    world.register("dev")
    _promote(world, None, "dev")
    dev_arn = world.packages("dev")[0]["ModelPackageArn"]

    outcome = _promote(world, "dev", "staging")

    [copy] = world.packages("staging")
    assert outcome.package.arn == copy["ModelPackageArn"]
    assert copy["ModelApprovalStatus"] == APPROVED
    assert copy["CustomerMetadataProperties"][PROMOTED_FROM] == dev_arn
    url = copy["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    assert url.startswith(f"s3://{_bucket('staging')}/models/promoted/")
    key = url.split("/", 3)[3]
    body = world.clients.s3.get_object(Bucket=_bucket("staging"), Key=key)["Body"].read()
    assert body == world.archive
    assert copy["CustomerMetadataProperties"][MODEL_DATA_SHA256] in url
    statistics = copy["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    assert statistics.startswith(f"s3://{_bucket('staging')}/evaluation/promoted/")
    assert "octocat promoted" in copy["ApprovalDescription"]
    assert "from dev to staging" in copy["ApprovalDescription"]


def test_a_promotion_is_a_one_line_change_to_the_stack_file(world: World) -> None:
    world.register("dev")
    _promote(world, None, "dev")
    before = world.text("staging").splitlines()

    _promote(world, "dev", "staging")

    after = world.text("staging").splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed == [("      packageVersion: 1", "      packageVersion: 1")] or changed == []
    # Staging's first copy is version 1 of its own registry; comments all survive.
    assert [line for line in after if line.lstrip().startswith("#")] == [
        line for line in before if line.lstrip().startswith("#")
    ]


def test_promoting_twice_changes_nothing_the_second_time(world: World) -> None:
    world.register("dev")
    _promote(world, None, "dev")
    first = _promote(world, "dev", "staging")
    text, records = world.text("staging"), world.packages("staging")

    second = _promote(world, "dev", "staging")

    assert first.changed and not second.changed
    assert second.package.arn == first.package.arn
    assert world.text("staging") == text
    assert world.packages("staging") == records


def _staging_with_two_versions(world: World) -> None:
    world.register("dev")
    _promote(world, None, "dev")
    _promote(world, "dev", "staging")
    world.register("dev", auc=0.95)
    _promote(world, None, "dev")
    _promote(world, "dev", "staging")


def test_a_new_source_version_becomes_the_next_target_version(world: World) -> None:
    _staging_with_two_versions(world)

    assert [p["ModelPackageVersion"] for p in world.packages("staging")] == [1, 2]
    assert "packageVersion: 2" in world.text("staging")


@pytest.mark.parametrize(
    ("setup", "gate", "detail"),
    [
        pytest.param(
            lambda w: w.register("dev", status="PendingManualApproval"),
            "approved",
            "is PendingManualApproval; approve it in the registry first",
            id="not-approved",
        ),
        pytest.param(
            lambda w: w.register("dev", auc=0.79),
            "roc_auc >= 0.8",
            "roc_auc 0.7900 is below staging's threshold 0.8",
            id="metric-below-target-threshold",
        ),
        pytest.param(
            lambda w: (w.register("dev"), w.set_alarm("dev", EndpointAlarm.LATENCY_P99, "ALARM")),
            "dev endpoint healthy",
            "in ALARM: churn-dev-endpoint-latency-p99",
            id="source-alarm-firing",
        ),
        pytest.param(
            lambda w: (
                w.register("dev"),
                w.clients.cloudwatch.delete_alarms(
                    AlarmNames=[endpoint_alarm_name("churn-dev", EndpointAlarm.ERROR_RATE_5XX)]
                ),
            ),
            "dev endpoint healthy",
            "churn-dev-endpoint-5xx-rate not found",
            id="source-alarm-missing",
        ),
        pytest.param(
            lambda w: w.register("dev", archive=_TAMPERED[0]),
            "artifact matches manifest",
            "but its manifest says",
            id="archive-tampered",
        ),
        pytest.param(
            lambda w: w.register("dev", metadata={MODEL_DATA_SHA256: "0" * 64}),
            "artifact matches manifest",
            "but the registry recorded " + "0" * 64,
            id="archive-replaced-after-promotion",
        ),
    ],
)
def test_a_failed_gate_changes_nothing_and_says_why(
    world: World, model_dir: Path, setup: Any, gate: str, detail: str
) -> None:
    _TAMPERED[0] = _tar(model_dir, tamper=True)
    setup(world)
    dev_text = world.text("dev").replace("packageVersion: 1", "packageVersion: 1")
    staging_text = world.text("staging")

    with pytest.raises(flow.PromotionError) as raised:
        _promote(world, "dev", "staging")

    assert raised.value.report is not None
    [failure] = raised.value.report.failures
    assert failure.gate == gate
    assert detail in failure.detail
    assert detail in str(raised.value)
    assert world.text("staging") == staging_text
    assert world.text("dev") == dev_text
    assert world.packages("staging") == []
    assert world.clients.s3.list_objects_v2(Bucket=_bucket("staging")).get("KeyCount") == 0


_TAMPERED: list[bytes] = [b""]


def test_every_failing_gate_is_reported_at_once(world: World) -> None:
    world.register("dev", status="Rejected", auc=0.5)
    world.set_alarm("dev", EndpointAlarm.ERROR_RATE_5XX, "ALARM")

    with pytest.raises(flow.PromotionError) as raised:
        _promote(world, "dev", "staging")

    assert raised.value.report is not None
    assert [f.gate for f in raised.value.report.failures] == [
        "approved",
        "roc_auc >= 0.8",
        "dev endpoint healthy",
    ]


def test_a_source_serving_a_raw_archive_cannot_be_promoted(world: World) -> None:
    text = world.text("dev").replace(
        "packageVersion: 1", f"dataUri: s3://{_bucket('dev')}/models/m/model.tar.gz"
    )
    (world.project / "Pulumi.dev.yaml").write_text(text)

    with pytest.raises(flow.PromotionError, match="serves a raw archive"):
        _promote(world, "dev", "staging")


def test_a_missing_source_package_is_a_clear_error(world: World) -> None:
    with pytest.raises(flow.PromotionError, match=r"no model package .*churn-dev-models/1"):
        _promote(world, "dev", "staging")


def test_dry_run_checks_gates_and_changes_nothing(world: World) -> None:
    world.register("dev")
    text = world.text("staging")

    outcome = flow.promote(
        world.clients,
        target=world.stack_file("staging"),
        source=world.stack_file("dev"),
        decision=_decision(),
        dry_run=True,
    )

    assert not outcome.changed and outcome.report is not None and outcome.report.passed
    assert world.text("staging") == text and world.packages("staging") == []


@pytest.mark.parametrize(("alarm", "passes"), [("drift-silent", True), ("drift", False)])
def test_a_silent_drift_job_pages_but_does_not_block_a_promotion(
    world: World, alarm: str, passes: bool
) -> None:
    # The silent alarm says the monitoring reports nothing (a quiet staging endpoint), not
    # that the model is unhealthy; the drift alarm itself still blocks.
    name = f"churn-dev-endpoint-{alarm}"
    world.clients.cloudwatch.put_metric_alarm(
        AlarmName=name,
        MetricName="CaptureRecords",
        Namespace="MLOpsKit/churn-dev",
        Statistic="Sum",
        Period=3600,
        EvaluationPeriods=2,
        Threshold=1.0,
        ComparisonOperator="LessThanThreshold",
    )
    world.clients.cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="t")
    world.register("dev")

    def promote() -> flow.Outcome:
        return flow.promote(
            world.clients,
            target=world.stack_file("staging"),
            source=world.stack_file("dev"),
            decision=_decision(),
            dry_run=True,
        )

    if not passes:
        with pytest.raises(flow.PromotionError, match=f"dev endpoint healthy: in ALARM: {name}"):
            promote()
        return
    report = promote().report
    assert report is not None and report.passed
    (health,) = [g for g in report.results if g.gate == "dev endpoint healthy"]
    assert f"{name} in ALARM: a monitoring job reports nothing" in health.detail


def test_rollback_serves_the_previous_approved_version_and_rejects_the_current(
    world: World,
) -> None:
    _staging_with_two_versions(world)

    outcome = flow.rollback(
        world.clients, target=world.stack_file("staging"), decision=_decision("p99 regression")
    )

    assert outcome.package.version == 1
    assert "packageVersion: 1" in world.text("staging")
    first, second = world.packages("staging")
    assert first["ModelApprovalStatus"] == APPROVED
    assert second["ModelApprovalStatus"] == REJECTED
    assert "rolled staging back from version 2 to 1" in second["ApprovalDescription"]
    assert "p99 regression" in second["ApprovalDescription"]


def test_rollback_with_no_earlier_version_refuses_and_changes_nothing(world: World) -> None:
    world.register("dev")
    _promote(world, None, "dev")
    _promote(world, "dev", "staging")
    text, records = world.text("staging"), world.packages("staging")

    with pytest.raises(flow.PromotionError, match="no approved version before 1"):
        flow.rollback(world.clients, target=world.stack_file("staging"), decision=_decision())

    assert world.text("staging") == text and world.packages("staging") == records


def test_promoting_a_rolled_back_model_again_reapproves_its_copy(world: World) -> None:
    _staging_with_two_versions(world)
    flow.rollback(world.clients, target=world.stack_file("staging"), decision=_decision())

    _promote(world, "dev", "staging")

    assert [p["ModelApprovalStatus"] for p in world.packages("staging")] == [APPROVED, APPROVED]
    assert "packageVersion: 2" in world.text("staging")


def test_cli_exits_non_zero_with_the_failed_gate(world: World) -> None:
    world.register("dev", auc=0.7)
    result = CliRunner().invoke(
        app,
        ["promote", "--from", "dev", "--to", "staging", "--reason", "release",
         "--approver", "octocat", "--project-dir", str(world.project)],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "FAIL  roc_auc >= 0.8: roc_auc 0.7000 is below staging's threshold 0.8" in result.output
    assert "may not serve in staging" in result.output


def test_cli_refuses_a_blank_reason(world: World) -> None:
    result = CliRunner().invoke(
        app,
        ["promote", "--to", "dev", "--reason", "  ", "--approver", "octocat",
         "--project-dir", str(world.project)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "must not be empty" in result.output


def test_cli_promotes_and_rolls_back(world: World) -> None:
    world.register("dev")
    args = ["--approver", "octocat", "--project-dir", str(world.project)]
    promoted = CliRunner().invoke(app, ["promote", "--to", "dev", "--reason", "go", *args])
    assert promoted.exit_code == 0, promoted.output
    assert "pass  artifact matches manifest" in promoted.output
    again = CliRunner().invoke(app, ["promote", "--to", "dev", "--reason", "go", *args])
    assert "nothing changed" in again.output
    back = CliRunner().invoke(app, ["rollback", "--stack", "dev", "--reason", "bad", *args])
    assert back.exit_code == 1
    assert "no approved version before 1" in back.output


def _endpoint(world: World, config: str) -> None:
    sm = world.clients.sagemaker
    sm.create_model(
        ModelName="m",
        ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/churn-prod-serving",
        PrimaryContainer={"Image": IMAGE},
    )
    sm.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {"VariantName": "primary", "ModelName": "m", "InstanceType": "ml.m5.xlarge",
             "InitialInstanceCount": 2}
        ],
    )  # fmt: skip
    sm.create_endpoint(EndpointName="churn-prod-endpoint", EndpointConfigName=config)


def test_verify_endpoint_accepts_the_deployed_configuration(world: World) -> None:
    _endpoint(world, "churn-prod-0001")
    settings = world.stack_file("prod").settings()
    message = verify(world.clients.sagemaker, world.clients.cloudwatch, settings, "churn-prod-0001")
    assert message == "churn-prod-endpoint is InService on churn-prod-0001"


def test_verify_endpoint_reports_a_rolled_back_update_and_the_firing_alarm(world: World) -> None:
    _endpoint(world, "churn-prod-0001")
    world.set_alarm("prod", EndpointAlarm.ERROR_RATE_5XX, "ALARM")
    settings = world.stack_file("prod").settings()

    with pytest.raises(EndpointCheckError) as raised:
        verify(world.clients.sagemaker, world.clients.cloudwatch, settings, "churn-prod-0002")

    assert str(raised.value) == (
        "churn-prod-endpoint runs churn-prod-0001, not churn-prod-0002: the update was rolled "
        "back; in ALARM: churn-prod-endpoint-5xx-rate"
    )


def test_verify_endpoint_names_a_missing_endpoint(world: World) -> None:
    settings = world.stack_file("prod").settings()
    with pytest.raises(EndpointCheckError, match="cannot describe endpoint churn-prod-endpoint"):
        verify(world.clients.sagemaker, world.clients.cloudwatch, settings, "any")


def test_cli_verify_endpoint_exits_non_zero_on_a_rolled_back_update(world: World) -> None:
    _endpoint(world, "churn-prod-0001")
    args = ["verify-endpoint", "--stack", "prod", "--project-dir", str(world.project)]
    ok = CliRunner().invoke(app, [*args, "--expected-config", "churn-prod-0001"])
    rolled_back = CliRunner().invoke(app, [*args, "--expected-config", "churn-prod-0002"])
    assert ok.exit_code == 0, ok.output
    assert rolled_back.exit_code == 1
    assert "runs churn-prod-0001, not churn-prod-0002" in rolled_back.output


def test_cli_names_an_unknown_stack_before_calling_aws(world: World) -> None:
    result = CliRunner().invoke(
        app,
        ["promote", "--from", "qa", "--to", "prod", "--reason", "r", "--approver", "octocat",
         "--project-dir", str(world.project)],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "unknown stack 'qa'" in result.output
    assert world.packages("prod") == []


def test_cli_verify_endpoint_passes_a_stack_without_a_model_and_needs_a_config_otherwise(
    world: World,
) -> None:
    args = ["verify-endpoint", "--stack", "prod", "--project-dir", str(world.project)]
    blank = CliRunner().invoke(app, [*args, "--expected-config", ""])
    assert blank.exit_code == 1
    assert "--expected-config must name its configuration" in blank.output
    text = world.text("prod").replace("    model:\n      packageVersion: 1\n", "")
    (world.project / "Pulumi.prod.yaml").write_text(text)
    no_model = CliRunner().invoke(app, [*args, "--expected-config", ""])
    assert no_model.exit_code == 0, no_model.output
    assert "serves no model" in no_model.output


def test_a_malformed_target_stack_file_is_one_clear_error(world: World) -> None:
    (world.project / "Pulumi.staging.yaml").write_text("config: [unclosed\n")
    with pytest.raises(StackFileError, match=r"cannot read Pulumi\.staging\.yaml"):
        world.stack_file("staging").settings()


# --- Concurrent promotions: the lock, the idempotency key, the compare-and-set ------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[EmbeddedAws, Path]]:
    """moto's server on 127.0.0.1, and a project whose staging serves a registered v1."""
    with race.moto_server() as aws:
        yield aws, tmp_path / "project"


def _served_version(project: Path, stack: str = "staging") -> int | None:
    served = StackFile(project, stack).served()
    return served.package_version if served else None


def test_racing_promotions_of_one_source_make_one_copy_and_a_no_op(
    server: tuple[EmbeddedAws, Path],
) -> None:
    aws, project = server
    race.prepare(aws, project)

    trial = race.race(aws, project, ("dev", "dev"), "queued")

    assert [run.exit_code for run in trial.runs] == [0, 0]
    assert sorted(run.kind for run in trial.runs) == ["no-op", "won"]
    [copy] = trial.copies  # no duplicate: the second run found the first's copy
    assert copy["ModelApprovalStatus"] == APPROVED
    assert _served_version(project) == copy["ModelPackageVersion"] == 2
    [no_op] = [run for run in trial.runs if run.kind == "no-op"]
    assert f"staging already serves {copy['ModelPackageArn']}; nothing changed" in no_op.stdout


@pytest.mark.parametrize(
    ("seed_target", "loser_says"),
    [
        pytest.param(
            True,
            "Pulumi.staging.yaml changed after this promotion began: it served packageVersion: "
            "1 then and serves packageVersion: 2 now. Another promotion or rollback won; "
            "re-run to promote on top of it",
            id="target-serves-a-registered-version",
        ),
        pytest.param(
            False,
            "Pulumi.staging.yaml names packageVersion: 1, which did not exist when this "
            "promotion began and does now. Another promotion or rollback won",
            id="target-names-a-version-not-registered-yet",
        ),
    ],
)
def test_racing_promotions_of_different_sources_one_wins_and_one_fails_clearly(
    server: tuple[EmbeddedAws, Path], seed_target: bool, loser_says: str
) -> None:
    aws, project = server
    race.prepare(aws, project, seed_target=seed_target)

    trial = race.race(aws, project, ("dev", "prod"), "queued")

    [winner] = [run for run in trial.runs if run.kind == "won"]
    [loser] = [run for run in trial.runs if run is not winner]
    assert (winner.exit_code, loser.exit_code) == (0, 1)
    assert f"error: {loser_says}" in loser.stderr
    # Only the winner's model was copied and recorded, and the stack file serves it.
    [copy] = trial.copies
    metadata = copy["CustomerMetadataProperties"]
    assert metadata[PROMOTED_FROM].startswith(f"arn:aws:sagemaker:{REGION}:")
    assert f"churn-{winner.source}-models/" in metadata[PROMOTED_FROM]
    assert metadata[DECISION] == "promoted to staging"
    assert f"{winner.approver} promoted" in copy["ApprovalDescription"]
    assert _served_version(project) == copy["ModelPackageVersion"] == winner.version
    assert trial.lost_updates == trial.duplicates == trial.stray_records == 0


def test_a_busy_lock_fails_at_once_naming_its_holder(world: World) -> None:
    world.register("dev")
    text = world.text("dev")
    args = ["--approver", "octocat", "--project-dir", str(world.project), "--lock-timeout", "0"]

    with lock.holding(world.project / "Pulumi.dev.yaml", "hubot promoting x to dev", lock.Wait(0)):
        busy = CliRunner().invoke(app, ["promote", "--to", "dev", "--reason", "go", *args])
    free = CliRunner().invoke(app, ["promote", "--to", "dev", "--reason", "go", *args])

    assert busy.exit_code == 1
    assert "another promotion or rollback of dev is running: .Pulumi.dev.yaml.lock is held by " in (
        busy.output
    )
    assert f"pid {os.getpid()} on " in busy.output
    assert "(hubot promoting x to dev, since " in busy.output
    assert "Gave up after 0 s; re-run once it has finished" in busy.output
    assert world.text("dev") == text
    assert "ApprovalDescription" not in world.packages("dev")[0]  # no decision recorded
    assert free.exit_code == 0, free.output


# A `mlops promote` that stops just before the atomic write renames its temporary file,
# says where that file is, and waits to be killed.
_PAUSED_AT_WRITE = """
import os, sys
rename = os.replace
def paused(source, destination):
    if os.path.basename(destination) == "Pulumi.staging.yaml":
        print("writing", source, flush=True)
        sys.stdin.read()
    rename(source, destination)
os.replace = paused
from mlops.cli import app
sys.argv[0] = "mlops"
app()
"""


def _paused_promotion(aws: EmbeddedAws, project: Path) -> tuple[subprocess.Popen[bytes], Path]:
    command = race.promote_command(aws, project, "dev", "octocat")
    process = subprocess.Popen(
        [sys.executable, "-c", _PAUSED_AT_WRITE, *command[3:]],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=race.child_env(),
        cwd=REPO,
    )
    said = race.read_until(process, process.stdout, ".tmp\n")
    return process, Path(said.split("writing ", 1)[1].strip())


def _leftovers(project: Path) -> list[str]:
    return sorted(p.name for p in project.iterdir() if p.name.endswith(".tmp"))


def test_a_kill_during_the_write_leaves_the_file_whole_and_the_next_run_cleans_up(
    server: tuple[EmbeddedAws, Path],
) -> None:
    aws, project = server
    race.prepare(aws, project)
    text = (project / "Pulumi.staging.yaml").read_text()
    process, temporary = _paused_promotion(aws, project)

    process.kill()
    process.communicate(timeout=race.RUN_TIMEOUT_SECONDS)

    assert process.returncode == -signal.SIGKILL
    assert _leftovers(project) == [temporary.name]  # what a SIGKILL leaves behind
    assert (project / "Pulumi.staging.yaml").read_text() == text
    # The killed run's lock died with it: the re-run need not wait, and finishes the job.
    rerun = CliRunner().invoke(
        app,
        [*race.promote_command(aws, project, "dev", "octocat")[3:], "--lock-timeout", "0"],
        env={"COLUMNS": "500"},
    )
    assert rerun.exit_code == 0, rerun.output
    assert f"removed {temporary.name}, left by an interrupted write" in rerun.output
    assert _leftovers(project) == []
    [copy] = [p for p in race.packages(aws, "staging") if PROMOTED_FROM in race.copy_metadata(p)]
    assert _served_version(project) == copy["ModelPackageVersion"] == 2


def test_sigterm_during_the_write_removes_the_temporary_file(
    server: tuple[EmbeddedAws, Path],
) -> None:
    aws, project = server
    race.prepare(aws, project)
    text = (project / "Pulumi.staging.yaml").read_text()
    process, temporary = _paused_promotion(aws, project)
    assert _leftovers(project) == [temporary.name]

    process.terminate()
    process.communicate(timeout=race.RUN_TIMEOUT_SECONDS)

    assert process.returncode == 128 + signal.SIGTERM
    assert _leftovers(project) == []
    assert (project / "Pulumi.staging.yaml").read_text() == text


def test_a_failed_write_removes_its_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text("old\n")

    def refuse(source: str, destination: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, "new\n")

    assert sorted(p.name for p in tmp_path.iterdir()) == ["Pulumi.dev.yaml"]
    assert path.read_text() == "old\n"


def test_the_sweep_removes_only_temporary_files_of_that_stack_file(tmp_path: Path) -> None:
    stale = (".Pulumi.dev.yaml.a1b2c3d4.tmp", ".Pulumi.dev.yaml.zz_9abcd")  # new, older naming
    kept = (".Pulumi.dev.yaml.lock", ".Pulumi.prod.yaml.a1b2c3d4.tmp", ".Pulumi.dev.yaml.bak")
    for name in ("Pulumi.dev.yaml", *stale, *kept):
        (tmp_path / name).write_text("x")

    removed = remove_stale_temporaries(tmp_path / "Pulumi.dev.yaml")

    assert sorted(p.name for p in removed) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(("Pulumi.dev.yaml", *kept))


def _rewrite_staging(world: World, version: int) -> None:
    """What a writer that ignores the lock (an editor, another checkout's copy) would do."""
    text = world.text("staging").replace("packageVersion: 1", f"packageVersion: {version}")
    (world.project / "Pulumi.staging.yaml").write_text(text)


def test_a_change_to_the_target_during_the_gates_stops_before_any_effect(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.register("dev")
    check = gates.check

    def meanwhile(*args: Any, **kwargs: Any) -> gates.GateReport:
        _rewrite_staging(world, 7)
        return check(*args, **kwargs)

    monkeypatch.setattr(gates, "check", meanwhile)
    with pytest.raises(flow.PromotionError) as raised:
        _promote(world, "dev", "staging")

    assert str(raised.value) == (
        "Pulumi.staging.yaml changed after this promotion began: it served packageVersion: 1 "
        "then and serves packageVersion: 7 now. Another promotion or rollback won; re-run to "
        "promote on top of it"
    )
    assert world.packages("staging") == []
    assert "packageVersion: 7" in world.text("staging")


def test_a_change_after_the_registry_record_fails_the_write_and_keeps_the_change(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.register("dev")
    record = Registry.record

    def meanwhile(self: Registry, *args: Any, **kwargs: Any) -> None:
        record(self, *args, **kwargs)
        _rewrite_staging(world, 7)

    monkeypatch.setattr(Registry, "record", meanwhile)
    with pytest.raises(flow.PromotionError) as raised:
        _promote(world, "dev", "staging")

    [copy] = world.packages("staging")
    assert str(raised.value).endswith(
        "Another promotion or rollback won; re-run to promote on top of it. The registry "
        f"already records this promotion on {copy['ModelPackageArn']}; a re-run finds it"
    )
    assert "packageVersion: 7" in world.text("staging")


def test_a_copy_made_concurrently_elsewhere_wins_and_the_later_one_steps_aside(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.register("dev")
    _promote(world, None, "dev")
    create = Registry.create_copy

    def second(self: Registry, *args: Any, **kwargs: Any) -> str:
        create(self, *args, **kwargs)  # a run on another machine, a moment earlier
        return create(self, *args, **kwargs)

    monkeypatch.setattr(Registry, "create_copy", second)
    outcome = _promote(world, "dev", "staging")

    first, duplicate = world.packages("staging")
    assert outcome.package.arn == first["ModelPackageArn"]
    assert first["ModelApprovalStatus"] == APPROVED
    assert duplicate["ModelApprovalStatus"] == REJECTED
    assert duplicate["ApprovalDescription"].startswith(f"duplicate of {first['ModelPackageArn']}")
    assert "packageVersion: 1" in world.text("staging")
