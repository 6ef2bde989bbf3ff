"""Two real `mlops promote` processes racing into one stack, against moto on 127.0.0.1.

tests/test_promotion.py runs one race per case. Run this file to measure many:

    .venv/bin/python tests/promotion_race.py --trials 20

(20 trials of each scenario in each mode: about 20 minutes on 2 cores, most of it the
processes' own start-up.)

Each trial starts from a fresh registry and project folder: dev and prod each serve their
own registered model, staging serves a registered version 1. Two processes then promote
into staging, either the same source twice or dev and prod. Two ways to start them:

- ``together``: both launched at once, as two people (or a double-clicked job) would;
- ``queued``: the harness holds staging's lock until both say they are waiting for it, so
  both surely began before either wrote anything.

What a trial left is read from exit codes, messages, the registry and the stack file (no
timing): one winner and one clean loser ("another promotion ... won") or no-op ("nothing
changed"); duplicate copies of one source in staging's registry; lost updates, a run that
exited 0 having changed staging whose model staging does not serve at the end, unless the
other run began after it (its note says it replaced that version); stray records, copies
the registry calls "promoted to staging" that no successful run reported.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import selectors
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from endpoint_alarms import put_endpoint_alarms

from demo.embedded_aws import EmbeddedAws, embedded_aws, provision
from infra.naming import BucketPurpose
from promotion import lock
from promotion.aws import Stage
from promotion.registry import APPROVED, DECISION, MODEL_CARD, MODEL_DATA_SHA256, PROMOTED_FROM
from promotion.stack_file import StackFile

REPO = Path(__file__).resolve().parent.parent
REGION = "eu-west-1"
STACKS = ("dev", "staging", "prod")
TARGET = "staging"
IMAGE = f"141502667606.dkr.ecr.{REGION}.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
SCENARIOS = {"same source": ("dev", "dev"), "different sources": ("dev", "prod")}
MODES = ("together", "queued")
# Generous bounds that only stop a hung run; nothing is asserted about durations.
RUN_TIMEOUT_SECONDS = 120.0
LOSER_MESSAGE = "Another promotion or rollback won"
HARNESS = "the race harness"
_WRITTEN = re.compile(r"serving\.model\.packageVersion = (\d+) \(was packageVersion: (\d+)\)")
_SERVES = re.compile(r"will serve (arn:\S+/(\d+))")
_ALREADY = re.compile(r"already serves (arn:\S+/(\d+))")


class RaceError(Exception):
    """A run hung or the harness could not set the race up."""


@dataclass(frozen=True)
class Run:
    source: str
    approver: str
    exit_code: int
    stdout: str
    stderr: str

    @property
    def kind(self) -> str:
        if self.exit_code == 0:
            return "no-op" if "nothing changed" in self.stdout else "won"
        if self.exit_code == 1 and LOSER_MESSAGE in self.stderr:
            return "lost cleanly"
        return "failed"

    @property
    def version(self) -> int | None:
        """The staging version this run says it serves (when it exited 0)."""
        match = _SERVES.search(self.stdout) or _ALREADY.search(self.stdout)
        return int(match[2]) if match else None

    @property
    def replaced(self) -> int | None:
        """The version the stack file served when this run wrote it, if it wrote."""
        match = _WRITTEN.search(self.stdout)
        return int(match[2]) if match else None


@dataclass(frozen=True)
class Trial:
    scenario: str
    mode: str
    runs: tuple[Run, Run]
    served: int | None
    copies: tuple[dict[str, Any], ...]

    @property
    def duplicates(self) -> int:
        keys = Counter(
            (
                c["CustomerMetadataProperties"][PROMOTED_FROM],
                c["CustomerMetadataProperties"].get(MODEL_DATA_SHA256),
            )
            for c in self.copies
        )
        return sum(count - 1 for count in keys.values())

    @property
    def lost_updates(self) -> int:
        lost = 0
        for run, other in (self.runs, self.runs[::-1]):
            knowingly = other.replaced is not None and other.replaced == run.version
            if run.kind == "won" and run.version != self.served and not knowingly:
                lost += 1
        return lost

    @property
    def stray_records(self) -> int:
        claimed = {run.version for run in self.runs if run.kind in ("won", "no-op")}
        recorded = {
            c["ModelPackageVersion"]
            for c in self.copies
            if c["CustomerMetadataProperties"].get(DECISION) == f"promoted to {TARGET}"
        }
        return len(recorded - claimed)

    @property
    def details(self) -> str:
        """One line for a trial that went wrong: each run, what is served, every copy."""
        runs = "; ".join(
            f"{r.approver} from {r.source}: {r.kind} (v{r.version})" for r in self.runs
        )
        copies = ", ".join(
            f"v{c['ModelPackageVersion']} of {c['CustomerMetadataProperties'][PROMOTED_FROM]} "
            f"{c['ModelApprovalStatus']}"
            for c in self.copies
        )
        return f"{runs}; staging serves v{self.served}; copies: {copies}"

    @property
    def outcome(self) -> str:
        return " + ".join(sorted(run.kind for run in self.runs))

    @property
    def one_winner(self) -> bool:
        kinds = sorted(run.kind for run in self.runs)
        return kinds in (["lost cleanly", "won"], ["no-op", "won"])

    @property
    def serialised(self) -> bool:
        """Both won, one after the other: the later one's note names the earlier's version."""
        first, second = self.runs
        return first.kind == second.kind == "won" and (
            first.replaced == second.version or second.replaced == first.version
        )


def model_archive(label: str) -> bytes:
    """A model.tar.gz the integrity gate accepts: a model file and a manifest naming its
    hash. Promotion never loads the model, so its bytes need not be a real one."""
    model = f"model {label}".encode()
    manifest = {"model": {"file": "model.joblib", "sha256": hashlib.sha256(model).hexdigest()}}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in (("model.joblib", model), ("manifest.json", json.dumps(manifest))):
            body = data if isinstance(data, bytes) else data.encode()
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


@contextmanager
def moto_server() -> Iterator[EmbeddedAws]:
    """moto's server on a free port of 127.0.0.1, with placeholder credentials set."""
    with embedded_aws(REGION) as aws:
        yield aws


def reset(aws: EmbeddedAws) -> None:
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{aws.url}/moto-api/reset", method="POST"))


def without_bias_section(text: str) -> str:
    """A stack file without its mlops:bias section: these versions carry no bias report
    (the bias gate has its own tests, which write the limits they need)."""
    lines, skipping = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith("  mlops:"):
            skipping = line.startswith("  mlops:bias:")
        elif line.strip() and not line.startswith((" ", "#")):
            skipping = False
        if not skipping:
            lines.append(line)
    return "".join(lines)


def prepare(aws: EmbeddedAws, project: Path, *, seed_target: bool = True) -> None:
    """A fresh account and project: every stack provisioned, dev and prod serving their
    own version 1; staging's version 1 registered too unless ``seed_target`` is False
    (then its file names a version that does not exist yet, as a new stack's may)."""
    reset(aws)
    project.mkdir(parents=True, exist_ok=True)
    for name in ("Pulumi.yaml", *(f"Pulumi.{s}.yaml" for s in STACKS)):
        (project / name).write_text(without_bias_section((REPO / name).read_text()))
    account = aws.clients.sts.get_caller_identity()["Account"]
    for stack in STACKS:
        stage = Stage(StackFile(project, stack).settings(), account)
        provision(aws, stage)
        put_endpoint_alarms(aws.clients.cloudwatch, stage.settings.prefix)
        if stack != TARGET or seed_target:
            register(aws, stage, model_archive(stack))


def register(aws: EmbeddedAws, stage: Stage, archive: bytes) -> str:
    """Register an approved package with its archive and evaluation, as the pipeline would."""
    s3, bucket = aws.clients.s3, stage.bucket(BucketPurpose.ARTIFACTS)
    key = f"models/{hashlib.sha256(archive).hexdigest()}/model.tar.gz"
    s3.put_object(Bucket=bucket, Key=key, Body=archive)
    report = {"binary_classification_metrics": {"auc": {"value": 0.9}}}
    s3.put_object(Bucket=bucket, Key=f"{key}.evaluation.json", Body=json.dumps(report).encode())
    card = {"model_overview": {"model_description": "churn: the race's model"}}
    s3.put_object(Bucket=bucket, Key=f"{key}.model_card.json", Body=json.dumps(card).encode())
    arn: str = aws.clients.sagemaker.create_model_package(
        ModelPackageGroupName=stage.model_package_group,
        ModelApprovalStatus=APPROVED,
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{bucket}/{key}"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelMetrics={
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"s3://{bucket}/{key}.evaluation.json",
                }
            }
        },
        # Promotion refuses a version without its model card.
        CustomerMetadataProperties={MODEL_CARD: f"s3://{bucket}/{key}.model_card.json"},
    )["ModelPackageArn"]
    return arn


def promote_command(aws: EmbeddedAws, project: Path, source: str, approver: str) -> list[str]:
    return [
        sys.executable, "-m", "mlops.cli", "promote", "--from", source, "--to", TARGET,
        "--reason", "race", "--approver", approver, "--project-dir", str(project),
        "--endpoint-url", aws.url,
    ]  # fmt: skip


def child_env() -> dict[str, str]:
    # Wide lines: an ARN wrapped by the console would not match the parsers above.
    return {**os.environ, "COLUMNS": "500", "AWS_DEFAULT_REGION": REGION}


def race(
    aws: EmbeddedAws, project: Path, sources: tuple[str, str], mode: str, scenario: str = ""
) -> Trial:
    """Two `mlops promote` processes into staging; what they printed and left behind."""
    approvers = ("racer-a", "racer-b")
    commands = [
        promote_command(aws, project, s, a) for s, a in zip(sources, approvers, strict=True)
    ]
    if mode == "queued":
        results = _queued(project / f"Pulumi.{TARGET}.yaml", commands)
    else:
        results = _finish([_start(command) for command in commands], [""] * len(commands))
    runs = tuple(
        Run(source, approver, code, out, err)
        for source, approver, (code, out, err) in zip(sources, approvers, results, strict=True)
    )
    served = StackFile(project, TARGET).settings().serving.model
    return Trial(
        scenario,
        mode,
        (runs[0], runs[1]),
        served.package_version if served else None,
        tuple(copy for copy in packages(aws, TARGET) if PROMOTED_FROM in copy_metadata(copy)),
    )


def packages(aws: EmbeddedAws, stack: str) -> list[dict[str, Any]]:
    sm = aws.clients.sagemaker
    group = f"churn-{stack}-models"
    summaries = sm.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
    described = [
        sm.describe_model_package(ModelPackageName=s["ModelPackageArn"]) for s in summaries
    ]
    return sorted(described, key=lambda p: p["ModelPackageVersion"])


def copy_metadata(package: dict[str, Any]) -> dict[str, str]:
    return dict(package.get("CustomerMetadataProperties") or {})


def _start(command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(), cwd=REPO
    )


def _queued(stack_file: Path, commands: list[list[str]]) -> list[tuple[int, str, str]]:
    """Hold the lock until every run waits for it, then let them all go at once."""
    with lock.holding(stack_file, HARNESS, lock.Wait(0)):
        processes = [_start(command) for command in commands]
        try:
            seen = [read_until(p, p.stderr, f"({HARNESS}, since") for p in processes]
        except RaceError:
            for process in processes:
                process.kill()
            raise
    return _finish(processes, seen)


def read_until(process: subprocess.Popen[bytes], stream: IO[bytes] | None, marker: str) -> str:
    """``process``'s output on ``stream`` up to ``marker``, waiting no longer than a run's
    bound. Reads the descriptor, so what follows stays for ``communicate``."""
    assert stream is not None
    handle, buffer = stream.fileno(), b""
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    with selectors.DefaultSelector() as selector:
        selector.register(handle, selectors.EVENT_READ)
        while marker.encode() not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                raise RaceError(f"no {marker!r} from {process.args!r}: {buffer.decode()}")
            chunk = os.read(handle, 1 << 16)
            if not chunk:
                raise RaceError(f"{process.args!r} ended before {marker!r}: {buffer.decode()}")
            buffer += chunk
    return buffer.decode()


def _finish(
    processes: list[subprocess.Popen[bytes]], stderr_so_far: list[str]
) -> list[tuple[int, str, str]]:
    results = []
    for process, before in zip(processes, stderr_so_far, strict=True):
        try:
            out, err = process.communicate(timeout=RUN_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            raise RaceError(f"{process.args!r} still running after the bound") from None
        results.append((process.returncode, out.decode(), before + err.decode()))
    return results


def measure(trials: int, modes: tuple[str, ...]) -> list[Trial]:
    results = []
    with moto_server() as aws, tempfile.TemporaryDirectory() as scratch:
        for mode in modes:
            for scenario, sources in SCENARIOS.items():
                for number in range(trials):
                    project = Path(scratch) / f"{mode}-{scenario.replace(' ', '-')}-{number}"
                    prepare(aws, project)
                    trial = race(aws, project, sources, mode, scenario)
                    print(f"{mode} / {scenario} #{number + 1}: {trial.outcome}", file=sys.stderr)
                    results.append(trial)
    return results


def summarise(results: list[Trial]) -> list[dict[str, Any]]:
    rows = []
    for (mode, scenario), group in _grouped(results).items():
        rows.append(
            {
                "mode": mode,
                "scenario": scenario,
                "trials": len(group),
                "one winner, one clean loser or no-op": sum(t.one_winner for t in group),
                "both won, one after the other": sum(t.serialised for t in group),
                "outcomes": dict(Counter(t.outcome for t in group)),
                "duplicates": sum(t.duplicates for t in group),
                "lost updates": sum(t.lost_updates for t in group),
                "stray records": sum(t.stray_records for t in group),
            }
        )
    return rows


def _grouped(results: list[Trial]) -> dict[tuple[str, str], list[Trial]]:
    grouped: dict[tuple[str, str], list[Trial]] = {}
    for trial in results:
        grouped.setdefault((trial.mode, trial.scenario), []).append(trial)
    return grouped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20, help="per scenario and mode")
    parser.add_argument("--mode", choices=(*MODES, "both"), default="both")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    options = parser.parse_args()
    modes = MODES if options.mode == "both" else (options.mode,)
    results = measure(options.trials, modes)
    rows = summarise(results)
    for row in rows:
        print(json.dumps(row))
    for trial in results:
        if (
            trial.duplicates
            or trial.lost_updates
            or trial.stray_records
            or "failed" in {r.kind for r in trial.runs}
        ):
            print(f"{trial.mode} / {trial.scenario}: {trial.details}", file=sys.stderr)
    if options.json:
        options.json.parent.mkdir(parents=True, exist_ok=True)
        options.json.write_text(json.dumps(rows, indent=2) + "\n")
    bad = sum(r["duplicates"] + r["lost updates"] + r["stray records"] for r in rows)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
