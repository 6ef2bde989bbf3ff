"""The MLOps lifecycle end to end on this machine, with moto as the AWS it talks to.

Each stage calls the code the cloud runs: the training entry points, the registry calls
and promotion gates of `mlops promote`, the serving handler inside the model.tar.gz the
registry points at, the drift job with its CloudWatch metrics, and the stack's own alarms
and retrain rule (from its offline plan). What cannot run here is said where it happens:
there is no SageMaker Pipelines runtime, so registration and retraining run the same steps
in-process; moto does not evaluate alarms, so the demo evaluates the drift alarm the way
CloudWatch would; the retrain rule delivers to a queue standing in for the pipeline.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from demo import release, traffic
from demo.comparison import Comparison
from demo.concept import relabel
from demo.embedded_aws import EmbeddedAws, embedded_aws
from demo.shift import shift
from inference.capture import CaptureWriter
from infra.aws_session import plain_error
from infra.naming import Variant
from infra.plan import local_stack
from infra.plan.project import load_stack_config
from infra.plan.runner import plan_config
from infra.stack_files import StackFilesError
from monitoring import drift as drift_job
from monitoring import labels_file
from monitoring import quality as quality_job
from monitoring.quality_report import QualityReport
from monitoring.report import DriftReport
from promotion.aws import Stage
from promotion.flow import Decision, PromotionError, promote
from promotion.stack_file import StackFile
from training import bias
from training import dataset as ds
from training import local as local_training
from training.contract import DataValidationError
from training.train import read_channel

STACK = "local"
# Traffic phases in the order they are sent; each is its own capture window.
PHASES = ("normal", "concept", "drifted")
# The stack the demo's own stack file starts from: instance endpoint, capture, drift loop.
TEMPLATE_STACK = "staging"
APPROVER = "demo"
REPO = Path(__file__).resolve().parents[1]

STEPS = (
    "embedded AWS",
    "ingest, validate, train, evaluate",
    "register, gate, promote",
    "serve",
    "traffic: normal, concept drift, data drift",
    "labels arrive",
    "drift and quality jobs",
    "drift alarm -> retraining",
    "retrain on fresh data, promote, swap",
    "report",
)


class DemoError(Exception):
    """A stage failed; the message names it."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"{step}: {message}")
        self.step = step
        self.message = message


@dataclass
class ModelVersion:
    label: str
    package_arn: str
    archive_sha256: str
    test_metrics: dict[str, float]
    train_seconds: float


@dataclass
class DemoResult:
    run_dir: Path
    aws_url: str = ""
    versions: list[ModelVersion] = field(default_factory=list)
    normal: traffic.TrafficResult = field(default_factory=traffic.TrafficResult)
    # The same inputs as the normal phase; only their labels (arriving later) change.
    concept: traffic.TrafficResult = field(default_factory=traffic.TrafficResult)
    drifted: traffic.TrafficResult = field(default_factory=traffic.TrafficResult)
    during_swap: traffic.TrafficResult = field(default_factory=traffic.TrafficResult)
    normal_drift: DriftReport | None = None
    concept_drift: DriftReport | None = None
    drifted_drift: DriftReport | None = None
    # Predictions joined with their labels: the normal and the concept-drift phases.
    normal_quality: QualityReport | None = None
    concept_quality: QualityReport | None = None
    alarm_state: str = ""
    retraining_started: bool = False
    served: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    report: Path | None = None
    # Every version scored on the same held-out rows.
    comparison: Comparison | None = None


@dataclass(frozen=True)
class DemoOptions:
    runs_root: Path = Path("runs/demo")
    batch_rows: int = 5
    # Rows per traffic phase, from the held-out test and validation splits (1,500 rows).
    phase_rows: int = 1500
    # The first model's raw data; None: the dataset the kit ships.
    raw_csv: Path | None = None


Announce = Callable[[int, str], None]


class Lifecycle:
    def __init__(
        self,
        options: DemoOptions,
        announce: Announce,
        note: Callable[[str], None],
        on_step: local_training.StepHook | None = None,
        on_sent: traffic.SentHook | None = None,
    ) -> None:
        """``on_step`` and ``on_sent`` (for progress displays) are told each training step as
        it starts and each traffic phase's requests sent out of its total."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        self.options = options
        self.result = DemoResult(options.runs_root / stamp)
        self._announce = announce
        self._note = note
        self._on_step = on_step
        self._on_sent = on_sent
        self._runs: dict[str, tuple[local_training.LocalRun, float]] = {}
        self._served_arn = ""
        self._facets: tuple[bias.Facet, ...] = bias.DEFAULT_FACETS
        self._bias_limits: dict[str, float] = {}

    def note(self, text: str) -> None:
        self.result.notes.append(text)
        self._note(text)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self._announce(STEPS.index(name) + 1, name)
        started = time.perf_counter()
        try:
            yield
        except DemoError:
            raise
        except (
            DataValidationError,
            PromotionError,
            StackFilesError,
            drift_job.UsageError,
            quality_job.UsageError,
            labels_file.LabelFileError,
        ) as exc:
            raise DemoError(name, str(exc)) from exc
        except Exception as exc:  # any other failure still names its stage
            raise DemoError(name, f"{type(exc).__name__}: {plain_error(exc)}") from exc
        self.result.seconds[name] = time.perf_counter() - started

    def run(self) -> DemoResult:
        result = self.result
        result.run_dir.mkdir(parents=True, exist_ok=True)
        with ExitStack() as resources:
            with self.step("embedded AWS"):
                project = self._project(result.run_dir / "project")
                settings = project.settings()
                self._facets = tuple(
                    bias.Facet(f.name, f.sensitive_values) for f in settings.bias.facets
                )
                self._bias_limits = {str(k): v for k, v in settings.bias.limits.items()}
                aws = resources.enter_context(embedded_aws(settings.region))
                result.aws_url = aws.url
                account = aws.clients.sts.get_caller_identity()["Account"]
                stage = Stage(settings, account)
                queue = self._local_stack(aws, stage, project)

            v1 = self._train("v1", self.options.raw_csv)
            with self.step("register, gate, promote"):
                self._release(aws, stage, project, v1, "first model")

            with self.step("serve"):
                server = self._server(aws, stage, project, resources)
                self.note(f"serving {result.served} on {server.url}")

            with self.step("traffic: normal, concept drift, data drift"):
                held_out = self._held_out(result.run_dir / "v1")
                marks = self._traffic(server.url, held_out)

            with self.step("labels arrive"):
                ground_truth = self._labels(stage, held_out)

            with self.step("drift and quality jobs"):
                windows = dict(zip(PHASES, pairwise(marks), strict=True))
                result.normal_drift = self._drift(aws, stage, project, *windows["normal"], "normal")
                result.concept_drift = self._drift(
                    aws, stage, project, *windows["concept"], "concept"
                )
                result.drifted_drift = self._drift(
                    aws, stage, project, *windows["drifted"], "drifted"
                )
                for phase in ("normal", "concept", "drifted"):
                    report = getattr(result, f"{phase}_drift")
                    self.note(f"drift, {phase}: {report.summary}")
                result.normal_quality = self._quality(
                    aws, stage, project, ground_truth, *windows["normal"], "normal"
                )
                result.concept_quality = self._quality(
                    aws, stage, project, ground_truth, *windows["concept"], "concept"
                )
                for phase in ("normal", "concept"):
                    report = getattr(result, f"{phase}_quality")
                    self.note(f"quality, {phase}: {report.summary}")
                self._check_concept_drift()

            with self.step("drift alarm -> retraining"):
                self._alarm_and_feedback(aws, stage, queue)

            with self.step("retrain on fresh data, promote, swap"):
                fresh = result.run_dir / "fresh" / "churn.csv"
                fresh.parent.mkdir(parents=True, exist_ok=True)
                shift(ds.load_shipped()).to_csv(fresh, index=False)
                v2 = self._train_quietly("v2", fresh)
                self._compare(shift(held_out))
                self._release(aws, stage, project, v2, "retrained on drifted data")
                bodies = traffic.batches(held_out, self.options.batch_rows)
                with traffic.Background(server.url, bodies) as background:
                    time.sleep(0.3)
                    server.swap(self._served_model(aws, stage, project))
                    time.sleep(0.3)
                result.during_swap = background.result
                self.note(
                    f"swapped to {result.served} while sending {background.result.sent} "
                    f"requests: {background.result.failed} failed"
                )

            with self.step("report"):
                from demo.report import write_report

                result.report = write_report(result)
        return result

    # --- stages -----------------------------------------------------------------------

    def _project(self, folder: Path) -> StackFile:
        """A Pulumi project with the demo's stack file, so promotion edits a real one."""
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "Pulumi.yaml", folder / "Pulumi.yaml")
        document = yaml.safe_load((REPO / f"Pulumi.{TEMPLATE_STACK}.yaml").read_text())
        serving = document["config"]["mlops:serving"]
        serving["dataCapturePercent"] = 100
        serving["model"] = {"packageVersion": 1}
        (folder / f"Pulumi.{STACK}.yaml").write_text(
            f"# Written by the demo: the {TEMPLATE_STACK} stack, capturing every request.\n"
            + yaml.safe_dump(document, sort_keys=False)
        )
        return StackFile(folder, STACK)

    def _local_stack(self, aws: EmbeddedAws, stage: Stage, project: StackFile) -> str:
        """The stack's resources from its offline plan, as `mlops local up` creates them,
        with a queue in place of the pipeline as the retrain rule's target (moto fails, HTTP
        500, delivering to a pipeline)."""
        plan = plan_config(load_stack_config(project.project_dir, STACK))
        created = local_stack.create(plan, aws.session, aws.url, project.project_dir)
        left_out = sorted({s.resource.type.split(":")[-1] for s in created.skipped})
        self.note(
            f"moto on {aws.url}: {len(created.created)} of the stack's resources from its "
            f"offline plan, as `mlops local up` makes them (not: {', '.join(left_out)})"
        )
        sqs = aws.client("sqs")
        queue = sqs.create_queue(QueueName="training-pipeline-stand-in")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
        rule = stage.naming.retrain_rule
        events = aws.client("events")
        planned = [t["Id"] for t in events.list_targets_by_rule(Rule=rule)["Targets"]]
        if planned:
            events.remove_targets(Rule=rule, Ids=planned)
        stand_in = {"Id": "training-pipeline-stand-in", "Arn": queue_arn["Attributes"]["QueueArn"]}
        events.put_targets(Rule=rule, Targets=[stand_in])
        self.note(f"retrain rule {rule} targets a queue standing in for the pipeline")
        return str(queue)

    def _train(self, label: str, raw_csv: Path | None) -> local_training.LocalRun:
        with self.step("ingest, validate, train, evaluate"):
            self.note("the pipeline's entry points, in-process (no SageMaker Pipelines here)")
            return self._train_quietly(label, raw_csv)

    def _train_quietly(self, label: str, raw_csv: Path | None) -> local_training.LocalRun:
        started = time.perf_counter()
        run = local_training.run(
            self.result.run_dir / label,
            raw_csv=raw_csv,
            on_step=self._on_step,
            facets=self._facets,
            bias_limits=self._bias_limits,
        )
        self._runs[label] = (run, time.perf_counter() - started)
        metrics = ", ".join(f"{k} {v:.3f}" for k, v in run.test_metrics.items())
        self.note(f"{label}: {sum(run.rows.values())} rows validated; test {metrics}")
        return run

    def _release(
        self,
        aws: EmbeddedAws,
        stage: Stage,
        project: StackFile,
        run: local_training.LocalRun,
        reason: str,
    ) -> None:
        label = run.run_dir.name
        # The pipeline's RegisterModel step sends this request in the cloud.
        registered = release.register(
            aws.clients, stage, run.model_dir, run.run_dir / "evaluation", label
        )
        self.note(f"{label} registered as {registered.arn} (PendingManualApproval)")
        release.approve(aws.clients, registered.arn, APPROVER, reason)
        outcome = promote(
            aws.clients, target=project, source=None, decision=Decision(APPROVER, reason)
        )
        assert outcome.report is not None
        for gate in outcome.report.results:
            self.note(f"gate {gate.gate}: {gate.detail}")
        self.result.versions.append(
            ModelVersion(
                label=label,
                package_arn=outcome.package.arn,
                archive_sha256=registered.archive_sha256,
                test_metrics=dict(run.test_metrics),
                train_seconds=self._runs[label][1],
            )
        )
        self.note(f"{project.path.name}: serving.model.packageVersion = {outcome.package.version}")

    def _served_model(self, aws: EmbeddedAws, stage: Stage, project: StackFile) -> Any:
        """What the stack file says to serve, loaded from the archive the registry names."""
        from inference.server import load_model
        from promotion.artifacts import S3Uri

        model = project.settings().serving.model
        assert model is not None and model.package_version is not None
        arn = stage.package_arn(model.package_version)
        described = aws.clients.sagemaker.describe_model_package(ModelPackageName=arn)
        url = described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
        location = S3Uri.parse(url)
        archive = self.result.run_dir / "serving" / f"v{model.package_version}" / "model.tar.gz"
        archive.parent.mkdir(parents=True, exist_ok=True)
        aws.clients.s3.download_file(location.bucket, location.key, str(archive))
        self.result.served = f"version {model.package_version} ({arn.rsplit('/', 2)[-2]})"
        self._served_arn = arn
        return load_model(archive)

    def _server(
        self, aws: EmbeddedAws, stage: Stage, project: StackFile, resources: ExitStack
    ) -> LocalEndpoint:
        capture = CaptureWriter(
            self.result.run_dir / "capture",
            endpoint=stage.naming.endpoint,
            variant=str(Variant.PRIMARY),
            sampling_percent=100,
        )
        return LocalEndpoint(self._served_model(aws, stage, project), capture, resources)

    def _held_out(self, run_dir: Path) -> pd.DataFrame:
        processed = run_dir / "data" / "processed"
        parts = [read_channel(processed / split)[0] for split in ("test", "validation")]
        return pd.concat(parts, ignore_index=True).head(self.options.phase_rows)

    def _traffic(
        self, url: str, held_out: pd.DataFrame
    ) -> tuple[datetime, datetime, datetime, datetime]:
        """The phases back to back, each in its own whole seconds; the labelled phases send
        an inference id per request, as a caller that will label its predictions does."""
        size = self.options.batch_rows
        bodies = traffic.batches(held_out, size)
        marks = [_second_boundary()]
        for phase, frame in (("normal", held_out), ("concept", held_out), ("drifted", None)):
            sent = traffic.send(
                url,
                bodies if frame is not None else traffic.batches(shift(held_out), size),
                progress=self._on_sent,
                inference_ids=_inference_ids(phase, len(bodies)) if frame is not None else None,
            )
            setattr(self.result, phase, sent)
            marks.append(_second_boundary())
            self.note(
                f"{phase}: {sent.sent} requests, {sent.failed} failed, "
                f"p50 {sent.percentile(50):.1f} ms, p99 {sent.percentile(99):.1f} ms"
            )
        start, normal_end, concept_end, end = marks
        return start, normal_end, concept_end, end

    def _labels(self, stage: Stage, held_out: pd.DataFrame) -> Path:
        """What the business learns later: who churned. For the concept phase, churn after
        the change (demo/concept.py). Each phase's labels go in as `mlops label` takes
        them: a CSV of inference id and the request's labels, one per row."""
        root = self.result.run_dir / "groundtruth" / stage.naming.endpoint
        size = self.options.batch_rows
        for phase, frame in (("normal", held_out), ("concept", relabel(held_out))):
            churned = (frame[ds.TARGET] == "yes").astype(int).tolist()
            rows = [
                (event_id, ",".join(str(v) for v in churned[i * size : (i + 1) * size]))
                for i, event_id in enumerate(_inference_ids(phase, -(-len(churned) // size)))
            ]
            source = self.result.run_dir / "labels" / f"{phase}.csv"
            source.parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(rows, columns=["id", "label"]).to_csv(source, index=False)
            parsed = labels_file.read(source)
            content = parsed.jsonl()
            target = Path(labels_file.target(str(root), datetime.now(UTC), content))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            self.note(f"labels, {phase}: {parsed.rows} rows in {len(parsed.records)} records")
        return root

    def _quality(
        self,
        aws: EmbeddedAws,
        stage: Stage,
        project: StackFile,
        ground_truth: Path,
        start: datetime,
        end: datetime,
        phase: str,
    ) -> QualityReport:
        settings = project.settings()
        monitoring = settings.monitoring
        argv = [
            "--capture", str(self.result.run_dir / "capture"),
            "--ground-truth", str(ground_truth),
            "--baseline", self._served_arn,
            "--output", str(self.result.run_dir / "quality" / phase),
            "--window-hours", repr((end - start).total_seconds() / 3600),
            "--end", end.isoformat(),
            # The labels were written moments ago, well inside an hour of the window.
            "--label-delay-hours", "1",
            "--alpha", repr(monitoring.quality_alpha),
            "--min-drop", repr(monitoring.quality_min_drop),
            # A shortened demo (--phase-rows 100) still judges its windows.
            "--min-labels", str(min(monitoring.quality_min_labels, self.options.phase_rows)),
            "--namespace", stage.naming.metrics_namespace,
            "--endpoint-name", stage.naming.endpoint,
            "--region", settings.region,
            "--endpoint-url", aws.url,
            "--publish",
        ]  # fmt: skip
        for facet in settings.bias.facets:
            argv += ["--facet", f"{facet.name}={','.join(facet.sensitive_values)}"]
        for metric, limit in settings.bias.limits.items():
            argv += ["--bias-limit", f"{metric}={limit!r}"]
        return quality_job.execute(quality_job.parse_options(argv), log=lambda _: None)

    def _check_concept_drift(self) -> None:
        """The point of the phase: inputs unchanged, so drift is quiet; labels changed, so
        quality is not. Either failing is the demo failing."""
        result, step = self.result, "drift and quality jobs"
        assert result.concept_drift is not None and result.concept_quality is not None
        assert result.normal_quality is not None
        if result.concept_drift.drifted:
            raise DemoError(step, f"data drift on unchanged inputs: {result.concept_drift.summary}")
        if result.normal_quality.flagged:
            raise DemoError(
                step, f"a quality drop on normal labels: {result.normal_quality.summary}"
            )
        if not result.concept_quality.flagged:
            raise DemoError(
                step, f"the concept drift went unseen: {result.concept_quality.summary}"
            )

    def _drift(
        self,
        aws: EmbeddedAws,
        stage: Stage,
        project: StackFile,
        start: datetime,
        end: datetime,
        phase: str,
    ) -> DriftReport:
        settings = project.settings()
        options = drift_job.Options(
            capture=str(self.result.run_dir / "capture"),
            baseline=self._served_arn,
            output=str(self.result.run_dir / "drift" / phase),
            window_hours=(end - start).total_seconds() / 3600,
            end=end,
            psi_threshold=settings.monitoring.drift_psi_threshold,
            ks_alpha=0.01,
            namespace=stage.naming.metrics_namespace,
            endpoint_name=stage.naming.endpoint,
            publish=True,
            region=settings.region,
            endpoint_url=aws.url,
        )
        return drift_job.execute(options, log=lambda _: None)

    def _alarm_and_feedback(self, aws: EmbeddedAws, stage: Stage, queue: str) -> None:
        cloudwatch, naming = aws.clients.cloudwatch, stage.naming
        (alarm,) = cloudwatch.describe_alarms(AlarmNames=[naming.drift_alarm])["MetricAlarms"]
        points = cloudwatch.get_metric_statistics(
            Namespace=alarm["Namespace"],
            MetricName=alarm["MetricName"],
            Dimensions=alarm["Dimensions"],
            StartTime=datetime(2000, 1, 1, tzinfo=UTC),
            EndTime=datetime(2100, 1, 1, tzinfo=UTC),
            Period=alarm["Period"],
            Statistics=["Maximum"],
        )["Datapoints"]
        score = max((p["Maximum"] for p in points), default=0.0)
        normal = self.result.normal_drift
        if normal is not None and normal.drift_score is not None:
            verdict = "below" if normal.drift_score < alarm["Threshold"] else "AT OR ABOVE"
            self.note(f"normal traffic scored {normal.drift_score:.3f}, {verdict} the threshold")
        # moto stores alarms but never evaluates them; this is CloudWatch's rule for it.
        breaching = score >= alarm["Threshold"]
        self.note(
            f"{naming.drift_alarm}: DriftScore {score:.3f} vs threshold {alarm['Threshold']} "
            "(evaluated here: moto does not evaluate alarms)"
        )
        if not breaching:
            self.result.alarm_state = "OK"
            raise DemoError("drift alarm -> retraining", "the drifted traffic did not breach")
        cloudwatch.set_alarm_state(
            AlarmName=naming.drift_alarm,
            StateValue="ALARM",
            StateReason=f"DriftScore {score:.3f} >= {alarm['Threshold']}",
        )
        self.result.alarm_state = cloudwatch.describe_alarms(AlarmNames=[naming.drift_alarm])[
            "MetricAlarms"
        ][0]["StateValue"]
        aws.client("events").put_events(Entries=[_alarm_event(alarm["AlarmArn"], "ALARM")])
        messages = aws.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
        self.result.retraining_started = bool(messages.get("Messages"))
        if not self.result.retraining_started:
            raise DemoError("drift alarm -> retraining", "the retrain rule delivered nothing")
        self.note(
            "the stack's retrain rule routed the ALARM event to its target (a queue standing "
            "in for the training pipeline, which cannot run here); retraining follows"
        )

    def _compare(self, drifted_traffic: pd.DataFrame) -> None:
        """Every version on the same held-out rows: their own test splits hold different data."""
        from demo import comparison

        run_dir = self.result.run_dir
        models = {label: run.model_dir for label, (run, _) in self._runs.items()}
        sets = comparison.demo_sets(run_dir, drifted_traffic)
        compared = comparison.compare(models, sets, run_dir / "comparison")
        self.result.comparison = compared
        for scored in compared.sets:
            values = ", ".join(f"{s.version} {scored.value(s.version):.3f}" for s in scored.scores)
            self.note(f"on the same {scored.rows} {scored.data.title}: ROC AUC {values}")


class LocalEndpoint:
    """The inference server on a free port, with capture; its model can be swapped live."""

    def __init__(self, model: Any, capture: CaptureWriter, resources: ExitStack) -> None:
        from inference.server import create_app, running

        self.app = create_app(model, capture)
        self.url = resources.enter_context(running(self.app))

    def swap(self, model: Any) -> None:
        # Requests read app.state.model as they start: in-flight ones finish on the old model.
        self.app.state.model = model


def _inference_ids(phase: str, count: int) -> list[str]:
    return [f"{phase}-{i:05d}" for i in range(count)]


def _second_boundary() -> datetime:
    """Wait for the next whole second: capture timestamps have one-second resolution."""
    now = time.time()
    time.sleep(int(now) + 1 - now + 0.01)
    return datetime.fromtimestamp(int(time.time()), UTC)


def _alarm_event(alarm_arn: str, state: str) -> dict[str, Any]:
    """The event CloudWatch puts on the default bus when an alarm changes state."""
    name = alarm_arn.rsplit(":", 1)[-1]
    return {
        "Source": "aws.cloudwatch",
        "DetailType": "CloudWatch Alarm State Change",
        "Resources": [alarm_arn],
        "Detail": json.dumps({"alarmName": name, "state": {"value": state}}),
    }
