"""`mlops local up`, and the commands that call AWS run against it as the README shows them.

A moto server on 127.0.0.1 stands in for the account. The stack comes from its offline plan;
each command then runs through the CLI with only the environment `local up` prints.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import promotion_race as race
import pytest
from conftest import REPO
from moto.server import ThreadedMotoServer
from typer.testing import CliRunner

from demo import release
from infra.aws_session import isolated_session
from promotion.aws import Clients, Stage
from promotion.stack_file import StackFile

STACK = "staging"
REGION = "eu-west-1"
ACCOUNT = "123456789012"
MLOPS = str(Path(sys.executable).with_name("mlops"))


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)  # a line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repo's project: promotion writes its stack file."""
    folder = tmp_path_factory.mktemp("project")
    for name in ("Pulumi.yaml", f"Pulumi.{STACK}.yaml"):
        # The versions the tests register carry no bias report, so no bias limits.
        (folder / name).write_text(race.without_bias_section((REPO / name).read_text()))
    return folder


@pytest.fixture(scope="module")
def stood_up(endpoint: str, project: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    listing = tmp_path_factory.mktemp("listing") / "local.json"
    result = CliRunner().invoke(
        _app(),
        [*("local", "up", "--stack", STACK, "--endpoint-url", endpoint, "--json"), str(listing)]
        + ["--project-dir", str(project)],
    )
    assert result.exit_code == 0, result.output
    assert f"export AWS_ENDPOINT_URL={endpoint} AWS_REGION={REGION}" in result.output
    return {"output": result.output, **json.loads(listing.read_text())}


@pytest.fixture
def local_env(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exactly what `mlops local up` tells the user to export (and unset)."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "GITHUB_ACTOR", "USER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCOUNT)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")


def _app():  # type: ignore[no-untyped-def]
    from mlops.cli import app

    return app


def _created(stood_up: dict, kind: str) -> list[str]:
    return [r["name"] for r in stood_up["created"] if r["type"].endswith(f":{kind}")]


def test_local_up_creates_the_stack_from_its_plan(stood_up: dict, endpoint: str) -> None:
    assert len(_created(stood_up, "Bucket")) == 4
    assert len(_created(stood_up, "Key")) == 1
    assert len(_created(stood_up, "Pipeline")) == 4  # training, drift, quality and batch
    # 5XX, 4XX, p99, CPU, memory; drift, drift-silent, attribution-drift; quality and
    # quality-silent (no bias-drift alarm: this copy of the stack sets no bias limits)
    names = {name.removeprefix("monitoring-") for name in _created(stood_up, "MetricAlarm")}
    assert {"quality", "quality-silent", "attribution-drift"} <= names
    assert "bias-drift" not in names and len(names) == 10
    for kind in ("ModelPackageGroup", "Topic", "EventRule", "Schedule", "Role", "Endpoint"):
        assert _created(stood_up, kind), kind
    # They exist in the endpoint under the plan's names, not just in the listing.
    session = isolated_session(REGION)
    s3 = session.client("s3", endpoint_url=endpoint)
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert f"churn-{STACK}-artifacts-{ACCOUNT}-{REGION}" in buckets
    sagemaker = session.client("sagemaker", endpoint_url=endpoint)
    pipelines = {p["PipelineName"] for p in sagemaker.list_pipelines()["PipelineSummaries"]}
    assert {f"churn-{STACK}-{kind}" for kind in ("training", "drift", "quality")} <= pipelines
    # The bundle the pipeline runs was uploaded with its bytes, not as an empty object.
    objects = s3.list_objects_v2(Bucket=f"churn-{STACK}-artifacts-{ACCOUNT}-{REGION}")
    assert all(o["Size"] > 0 for o in objects["Contents"])


def test_local_up_lists_what_it_could_not_create_and_why(stood_up: dict) -> None:
    reasons = {s["type"].split(":")[-1]: s["reason"] for s in stood_up["skipped"]}
    assert set(reasons) == {"BucketPolicy", "BucketLogging"}
    assert "moto evaluates bucket-policy conditions wrongly" in reasons["BucketPolicy"]
    # Without the log bucket's policy (which grants S3 log delivery), moto refuses logging.
    assert "PutBucketLogging refused" in reasons["BucketLogging"]
    assert "not created (7):" in stood_up["output"]


def test_pipeline_run_starts_the_pipeline_local_up_created(
    stood_up: dict, project: Path, local_env: None
) -> None:
    result = CliRunner().invoke(
        _app(), ["pipeline", "run", "--stack", STACK, "--project-dir", str(project)]
    )
    assert result.exit_code == 0, result.output
    assert f"started churn-{STACK}-training" in result.output


def test_promote_and_rollback_need_no_approver_and_record_the_caller(
    stood_up: dict, project: Path, local_env: None, endpoint: str, model_dir: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    clients = Clients.create(REGION, endpoint, isolated_session(REGION, ACCOUNT))
    stage = Stage(StackFile(project, STACK).settings(), ACCOUNT)
    evaluation = tmp_path / "evaluation"
    evaluation.mkdir()
    auc = {"auc": {"value": 0.93, "standard_deviation": 0.01}}
    (evaluation / "evaluation.json").write_text(json.dumps({"binary_classification_metrics": auc}))
    # Promotion refuses a version without its model card.
    card = {"model_overview": {"model_description": "churn: the local stack's model"}}
    (evaluation / "model_card.json").write_text(json.dumps(card))
    arns = []
    for label in ("v1", "v2"):
        arns.append(release.register(clients, stage, model_dir, evaluation, label).arn)
        release.approve(clients, arns[-1], "reviewer", "looked at it")
        promoted = CliRunner().invoke(
            _app(),
            ["promote", "--to", STACK, "--reason", f"ship {label}", "--project-dir", str(project)],
        )
        assert promoted.exit_code == 0, promoted.output
    rolled = CliRunner().invoke(
        _app(), ["rollback", "--stack", STACK, "--reason", "bad", "--project-dir", str(project)]
    )
    assert rolled.exit_code == 0, rolled.output
    # No --approver, $USER or $GITHUB_ACTOR: the caller's STS identity is recorded.
    caller = clients.sts.get_caller_identity()["Arn"]
    # (The repo's staging file already serves version 1: v2's promotion is the recorded
    # one, and the rollback then records its rejection over it.)
    rejected = clients.sagemaker.describe_model_package(ModelPackageName=arns[1])
    assert rejected["ModelApprovalStatus"] == "Rejected"
    assert rejected["ApprovalDescription"].startswith(f"{caller} rolled {STACK} back")
    assert StackFile(project, STACK).settings().serving.model.package_version == 1  # type: ignore[union-attr]


def test_the_ci_actor_is_the_approver_in_ci(
    stood_up: dict, project: Path, local_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    result = CliRunner().invoke(
        _app(),
        ["promote", "--to", STACK, "--reason", "r", "--dry-run", "--project-dir", str(project)],
    )
    # The registry may hold no approved version here; either way nothing asked for --approver.
    assert "--approver" not in result.output


def test_drift_on_a_stack_reads_the_stacks_capture_bucket(
    stood_up: dict, project: Path, local_env: None, tmp_path: Path, model_dir: Path
) -> None:
    result = CliRunner().invoke(
        _app(),
        ["drift", "--stack", STACK, "--project-dir", str(project)]
        + ["--baseline", str(model_dir), "--output", str(tmp_path)],
    )
    # The stack's capture bucket exists but holds no traffic yet: silent, exit 3.
    assert result.exit_code == 3, result.output
    capture = f"s3://churn-{STACK}-capture-{ACCOUNT}-{REGION}/datacapture/churn-{STACK}-endpoint/"
    assert capture in result.output
    assert (tmp_path / "drift.json").is_file()


def test_a_missing_profile_is_one_line_that_says_what_to_do(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    result = CliRunner().invoke(
        _app(), ["promote", "--to", STACK, "--reason", "r", "--project-dir", str(project)]
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines == [
        "error: AWS profile 'no-such-profile' is not configured on this machine; run `aws "
        "configure --profile <name>` (or `aws configure sso`), or pass --profile with one that "
        "exists"
    ]


def test_no_credentials_is_a_local_problem_not_aws_refusing(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "GITHUB_ACTOR"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(
        _app(),
        ["rollback", "--stack", STACK, "--reason", "r", "--project-dir", str(project)]
        + ["--endpoint-url", "http://127.0.0.1:9"],
    )
    assert result.exit_code == 1
    assert result.output.startswith("error: no AWS credentials found (")
    assert "AWS refused" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_local_up_serves_until_interrupted_and_refuses_a_busy_port(project: Path) -> None:
    env = {**os.environ, "COLUMNS": "400"}
    command = [MLOPS, "local", "up", "--stack", "dev", "--port", "0"]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith("serving on "):
            break
    url = seen[-1].split()[2].rstrip(";")
    process.send_signal(signal.SIGINT)
    rest = process.communicate(timeout=60)[0]
    assert process.returncode == 130, "".join(seen) + rest  # the shell's code for Ctrl-C
    assert any("export AWS_ENDPOINT_URL=" + url in line for line in seen)
    port = url.rsplit(":", 1)[1]
    with _Listening() as busy:
        refused = subprocess.run(
            [MLOPS, "local", "up", "--stack", "dev", "--port", str(busy)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
    assert refused.returncode == 1
    assert f"--port {busy}: cannot listen on 127.0.0.1" in refused.stderr
    assert port  # the first run really listened on a port of its own


class _Listening:
    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        return int(self.sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def test_an_unreadable_aws_config_is_named_not_blamed_on_aws(
    project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    garbage = tmp_path / "config"
    garbage.write_text("[[[ not an ini file\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(garbage))
    result = CliRunner().invoke(
        _app(), ["promote", "--to", STACK, "--reason", "r", "--project-dir", str(project)]
    )
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"error: cannot read the AWS config file {garbage}; fix it, or point AWS_CONFIG_FILE / "
        "AWS_SHARED_CREDENTIALS_FILE at readable files"
    )
