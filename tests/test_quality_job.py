"""The quality job on real capture and ground-truth files: the join's counts, model quality
against the evaluation baseline, concept drift caught, no false alarms on small windows,
bias drift, and the CloudWatch metrics (moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws

from inference import handler
from inference.capture import capture_record
from monitoring import bias_drift, evaluation, ground_truth, quality
from monitoring.quality_assess import Settings, Status, drop_tests
from training import bias
from training import dataset as ds
from training.metrics import binary_classification_metrics

END = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ENDPOINT = "churn-prod"
CSV_ANSWER = b"no,0.900000,0.100000\n"


# --- fixtures: real capture records and ground truth -----------------------------------------


@pytest.fixture(scope="session")
def labelled_test(processed: Path) -> pd.DataFrame:
    """The test split with its labels."""
    return pd.read_csv(processed / "test" / "test.csv")


@pytest.fixture(scope="session")
def scored(serving_model: Any, labelled_test: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(labels, positive scores) of the test split."""
    features = labelled_test.loc[:, list(ds.FEATURES)]
    labels = (labelled_test[ds.TARGET] == ds.POSITIVE_LABEL).to_numpy(dtype=np.int8)
    return labels, serving_model.pipeline.predict_proba(features)[:, 1]


@pytest.fixture(scope="session")
def evaluation_file(
    scored: tuple[np.ndarray, np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """evaluation.json of the served model on the test split, as training/evaluate.py writes."""
    labels, scores = scored
    path = tmp_path_factory.mktemp("evaluation") / "evaluation.json"
    path.write_text(json.dumps(binary_classification_metrics(labels.astype(np.int64), scores)))
    return path


def capture_line(
    request: bytes, answer: bytes, answer_type: str, when: datetime, event_id: str,
    inference_id: str | None,
) -> str:  # fmt: skip
    return json.dumps(
        capture_record(
            request_body=request,
            request_content_type="text/csv",
            response_body=answer,
            response_content_type=answer_type,
            when=when,
            event_id=event_id,
            inference_id=inference_id,
        )
    )


def serve(
    model: Any, frame: pd.DataFrame, root: Path, when: datetime, batch: int = 5
) -> list[tuple[str, tuple[int, ...]]]:
    """Answer ``frame``'s rows in requests of ``batch`` rows as the handler does, capture
    them as SageMaker does under ``root``, and return each request's (inference id, labels).
    Every third request sends no InferenceId: its eventId is the join key. (The model scores
    all rows at once, and the handler renders each request's answer: the same bytes as a
    request at a time, many times faster.)"""
    folder = root / ENDPOINT / "AllTraffic" / when.strftime("%Y/%m/%d/%H")
    folder.mkdir(parents=True, exist_ok=True)
    features = frame.loc[:, list(ds.FEATURES)]
    probabilities = model.pipeline.predict_proba(features)[:, 1]
    lines, keys = [], []
    for number, start in enumerate(range(0, len(frame), batch)):
        part = frame.iloc[start : start + batch]
        body = features.iloc[start : start + batch].to_csv(index=False, header=False).encode()
        accept = "text/csv" if number % 2 else "application/json"
        prediction = handler.Prediction(probabilities[start : start + batch], model)
        answer, answer_type = handler.render_output(prediction, accept)
        event_id = f"event-{when:%H%M}-{number}"
        inference_id = None if number % 3 == 0 else f"req-{when:%H%M}-{number}"
        moment = when + timedelta(seconds=number % 3600)
        lines.append(
            capture_line(body, answer.encode(), answer_type, moment, event_id, inference_id)
        )
        labels = tuple((part[ds.TARGET] == ds.POSITIVE_LABEL).astype(int).tolist())
        keys.append((inference_id or event_id, labels))
    (folder / f"{when:%M-%S}-capture.jsonl").write_text("\n".join(lines) + "\n")
    return keys


def write_labels(
    root: Path, collected: datetime, labels: Sequence[tuple[str, Sequence[int]]], name: str = "a"
) -> None:
    folder = Path(ground_truth.hour_folder(str(root), collected))
    folder.mkdir(parents=True, exist_ok=True)
    text = "".join(ground_truth.to_line(key, values) + "\n" for key, values in labels)
    (folder / f"{name}.jsonl").write_text(text)


def job(tmp_path: Path, evaluation_file: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    code = quality.main(
        ["--capture", str(tmp_path / "capture"), "--ground-truth", str(tmp_path / "gt"),
         "--evaluation", str(evaluation_file), "--output", str(tmp_path / "out"),
         "--end", END.isoformat(), "--window-hours", "2", "--label-delay-hours", "24", *extra],
    )  # fmt: skip
    report = tmp_path / "out" / "quality.json"
    return code, json.loads(report.read_text()) if report.exists() else {}


def flip_segment(frame: pd.DataFrame, seed: int = 3) -> pd.DataFrame:
    """Concept drift: international-plan and unhappy customers stop churning (11%, the base
    rate), features untouched."""
    out = frame.copy()
    segment = (out["international_plan"] == "yes") | (out["number_customer_service_calls"] >= 4)
    draws = np.random.default_rng(seed).random(len(out)) < 0.11
    out.loc[segment, ds.TARGET] = np.where(draws[segment.to_numpy()], "yes", "no")
    return out


# --- the join ------------------------------------------------------------------------------------


def test_the_join_counts_every_kind_of_mismatch(tmp_path: Path, evaluation_file: Path) -> None:
    capture = tmp_path / "capture" / ENDPOINT / "AllTraffic"
    inside, before = END - timedelta(minutes=30), END - timedelta(hours=2, seconds=1)

    def line(key: str | None, event: str, when: datetime, answer: bytes = CSV_ANSWER) -> str:
        return capture_line(b"x", answer, "text/csv", when, event, key)

    records = [
        line("a", "e1", inside),  # labelled twice: the later label wins
        line(None, "e2", inside, b"no,0.9,0.1\nyes,0.2,0.8\n"),  # two rows, keyed by eventId
        line("c", "e3", inside),  # no label
        line("dup", "e4", inside),  # an InferenceId used twice: neither is joined
        line("dup", "e5", inside),
        line("m", "e6", inside),  # one row, two labels
        line("late", "e7", inside),  # labelled after the delay
        line("in-delay", "e8", inside),  # labelled just inside the delay
        '{"captureData": ',  # malformed JSON
        line("bad", "e9", inside, b"no,0.9,1.7\n"),  # a probability over 1
        line("old", "e0", before),  # filed in the window's first hour, inferred before it
    ]
    for hour, part in ((inside, records[:-1]), (END - timedelta(hours=2), records[-1:])):
        folder = capture / hour.strftime("%Y/%m/%d/%H")
        folder.mkdir(parents=True)
        (folder / "part.jsonl").write_text("\n".join(part) + "\n")

    gt = tmp_path / "gt"
    write_labels(gt, END, [("a", [1]), ("e2", [1, 0]), ("dup", [1]), ("m", [1, 1]),
                           ("old", [0]), ("orphan", [1])])  # fmt: skip
    write_labels(gt, END + timedelta(hours=1), [("a", [0])], name="correction")
    write_labels(gt, END + timedelta(hours=23, minutes=59), [("in-delay", [1])])
    write_labels(gt, END + timedelta(hours=24), [("late", [1])])
    bad = gt / END.strftime("%Y/%m/%d/%H") / "bad.jsonl"
    bad.write_text(
        "{oops\n"
        + ground_truth.to_line("x", [1]).replace('"0"}', '"9"}')
        + "\n"
        + ground_truth.to_line("y", [1]).replace('"1"', '"2"', 1)
        + "\n"
    )

    code, report = job(tmp_path, evaluation_file)
    assert code == 0
    counts = report["counts"]
    assert counts == counts | {
        "capture_lines": 11,
        "capture_records": 8,
        "outside_window": 1,
        "malformed_records": 2,
        "malformed_records_by_reason": {"bad_json": 1, "bad_score": 1},
        "duplicate_records": 2,
        "label_lines": 11,
        "labels": 8,
        "malformed_labels": 3,
        "malformed_labels_by_reason": {"bad_json": 1, "bad_label": 1, "unknown_version": 1},
        "duplicate_labels": 1,
        "labelled_records": 3,
        "labelled_rows": 4,
        "unlabelled_records": 2,
        "orphan_labels": 2,
        "label_row_mismatch": 1,
    }
    assert report["status"] == Status.INSUFFICIENT
    assert report["calibration"]["bins"][1]["count"] == 3  # a, e2's first row, in-delay: 0.1
    # a's label is the correction (0); e2's rows are 1 then 0, in-delay's 1: 2 of 4 positive.
    positives = sum(b["positive_rate"] * b["count"] for b in report["calibration"]["bins"]
                    if b["count"])  # fmt: skip
    assert positives == pytest.approx(2)


def test_no_label_in_the_window_is_silent(
    tmp_path: Path, serving_model: Any, labelled_test: pd.DataFrame, evaluation_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    serve(serving_model, labelled_test.iloc[:20], tmp_path / "capture", END - timedelta(hours=1))
    (tmp_path / "gt").mkdir()
    code, report = job(tmp_path, evaluation_file)
    assert code == quality.EXIT_SILENT
    assert report["status"] == Status.NO_LABELS
    err = capsys.readouterr().err
    assert err.startswith("error: no labelled record in the window: 4 capture record(s), 0")
    assert err.count("\n") == 1


# --- model quality and concept drift -------------------------------------------------------------


def test_unchanged_traffic_passes_and_concept_drift_is_flagged(
    tmp_path: Path, serving_model: Any, labelled_test: pd.DataFrame, evaluation_file: Path
) -> None:
    when = END - timedelta(hours=1)
    for name, frame in (("same", labelled_test), ("drift", flip_segment(labelled_test))):
        root = tmp_path / name
        keys = serve(serving_model, frame, root / "capture", when)
        write_labels(root / "gt", END + timedelta(hours=3), keys)
        code, report = job(root, evaluation_file)
        assert code == 0
        assert report["counts"]["labelled_rows"] == len(labelled_test)
        assert report["counts"]["unlabelled_records"] == 0
        violations = json.loads((root / "out" / "constraint_violations.json").read_text())
        if name == "same":
            assert report["status"] == Status.OK
            assert report["flagged"] == []
            assert violations == {"violations": []}
            window = report["metrics"]["binary_classification_metrics"]
            expected = json.loads(evaluation_file.read_text())["binary_classification_metrics"]
            assert window["auc"]["value"] == pytest.approx(expected["auc"]["value"], abs=1e-5)
            assert window["confusion_matrix"] == expected["confusion_matrix"]
        else:
            assert {"auc", "recall"} <= set(report["flagged"])
            (auc,) = [v for v in violations["violations"] if v["metric_name"] == "auc"]
            assert set(auc) == {"constraint_check_type", "description", "metric_name"}
            assert auc["constraint_check_type"] == "LessThanThreshold"
            assert auc["description"].startswith("Metric auc with 0.")
        page = (root / "out" / "quality.html").read_text()
        assert page.startswith("<!doctype html>") and "<script" not in page


@pytest.fixture(scope="session")
def baseline_evaluation(evaluation_file: Path) -> evaluation.Evaluation:
    return evaluation.load(str(evaluation_file))


@pytest.mark.parametrize("size", [200, 1000, 5000])
def test_no_false_alarm_on_unchanged_windows(
    size: int, scored: tuple[np.ndarray, np.ndarray], baseline_evaluation: evaluation.Evaluation
) -> None:
    """30 windows drawn from the baseline's own population: at alpha 0.01 after Holm, at
    most one flagged window is what chance allows (0.3 expected)."""
    labels, scores = scored
    rng = np.random.default_rng(size)
    flagged = 0
    for _ in range(30):
        index = rng.integers(0, len(labels), size)
        tests = drop_tests(labels[index], scores[index], baseline_evaluation, Settings())
        flagged += any(t.flagged for t in tests)
    assert flagged <= 1


@pytest.mark.parametrize("size", [200, 1000])
def test_concept_drift_is_caught_in_small_windows(
    size: int,
    labelled_test: pd.DataFrame,
    scored: tuple[np.ndarray, np.ndarray],
    baseline_evaluation: evaluation.Evaluation,
) -> None:
    drifted = (flip_segment(labelled_test)[ds.TARGET] == ds.POSITIVE_LABEL).to_numpy(np.int8)
    _, scores = scored
    rng = np.random.default_rng(size)
    caught = 0
    for _ in range(30):
        index = rng.integers(0, len(scores), size)
        tests = drop_tests(drifted[index], scores[index], baseline_evaluation, Settings())
        caught += any(t.flagged for t in tests)
    assert caught >= (27 if size == 200 else 30)


def test_a_significant_but_small_drop_does_not_flag(
    scored: tuple[np.ndarray, np.ndarray], baseline_evaluation: evaluation.Evaluation
) -> None:
    labels, scores = scored
    # 40 copies of the test split, with 4% of the labels flipped: accuracy drops by about
    # 0.036, which a window this large (and the baseline's 750 rows) shows beyond doubt,
    # but under --min-drop.
    index = np.tile(np.arange(len(labels)), 40)
    flipped = labels[index].copy()
    chosen = np.random.default_rng(0).choice(len(index), len(index) // 25, replace=False)
    flipped[chosen] = 1 - flipped[chosen]
    tests = drop_tests(flipped, scores[index], baseline_evaluation, Settings())
    accuracy = next(t for t in tests if t.metric == "accuracy")
    assert accuracy.p_adjusted < 0.01 and 0 < accuracy.drop < 0.05
    assert not accuracy.flagged
    strict = drop_tests(flipped, scores[index], baseline_evaluation, Settings(min_drop=0.02))
    assert next(t for t in strict if t.metric == "accuracy").flagged


def test_too_few_labels_are_measured_not_compared(
    tmp_path: Path, serving_model: Any, labelled_test: pd.DataFrame, evaluation_file: Path
) -> None:
    keys = serve(serving_model, flip_segment(labelled_test.iloc[:60]), tmp_path / "capture",
                 END - timedelta(hours=1))  # fmt: skip
    write_labels(tmp_path / "gt", END, keys)
    code, report = job(tmp_path, evaluation_file)
    assert code == 0
    assert report["status"] == Status.INSUFFICIENT
    assert report["tests"] == [] and report["flagged"] == []
    assert report["calibration"]["brier"] > 0
    assert "insufficient labels (60 rows, fewer than --min-labels 100)" in report["summary"]


# --- bias drift ----------------------------------------------------------------------------------

FACET = bias.Facet("international_plan", ("yes",))


def _deviations(document: dict[str, Any]) -> dict[str, float]:
    found = {}
    for section in (bias.PRE_SECTION, bias.POST_SECTION):
        for metric in document[section]["facets"][FACET.name][0]["metrics"]:
            value = bias.metric_value(metric)
            name = bias.kit_name(metric["name"])
            found[name] = bias.deviation(name, value)
    return found


@pytest.mark.parametrize("size", [200, 1000, 5000])
def test_bias_drift_raises_no_false_alarm_on_unchanged_windows(
    size: int, labelled_test: pd.DataFrame, scored: tuple[np.ndarray, np.ndarray]
) -> None:
    """The hardest limits: each exactly the test split's own deviation, which about half of
    all windows exceed by chance alone (Clarify would flag them)."""
    labels, scores = scored
    predicted = (scores >= 0.5).astype(np.int64)
    plans = labelled_test[FACET.name].to_numpy()
    whole = bias.analysis(labelled_test, labels, predicted, [FACET])
    limits = {m: d for m, d in _deviations(whole).items() if m in ("DPL", "DPPL", "DI", "AD")}
    rng = np.random.default_rng(size)
    confirmed = over = 0
    for _ in range(30):
        index = rng.integers(0, len(labels), size)
        drift = bias_drift.measure(
            {FACET.name: plans[index]}, labels[index], predicted[index], [FACET], limits, 0.01
        )
        confirmed += bool(drift.violations)
        over += bool(bias.violations(drift.analysis, limits))
    assert over >= 20
    assert confirmed <= 1


def test_bias_drift_flags_a_real_shift_on_live_traffic(
    tmp_path: Path, serving_model: Any, labelled_test: pd.DataFrame, evaluation_file: Path,
    model_dir: Path,
) -> None:  # fmt: skip
    # International-plan customers all churn now: DPL moves far past its limit.
    shifted = labelled_test.copy()
    shifted.loc[shifted[FACET.name] == "yes", ds.TARGET] = ds.POSITIVE_LABEL
    keys = serve(serving_model, shifted, tmp_path / "capture", END - timedelta(hours=1))
    # A request the input parser cannot read: judged for quality, left out of bias.
    (capture_file,) = (tmp_path / "capture").rglob("*.jsonl")
    unreadable = capture_line(b"a,b", CSV_ANSWER, "text/csv", END - timedelta(minutes=1), "u", "u")
    capture_file.write_text(capture_file.read_text() + unreadable + "\n")
    write_labels(tmp_path / "gt", END, [*keys, ("u", [1])])
    code, report = job(
        tmp_path, evaluation_file, "--baseline", str(model_dir),
        "--facet", "international_plan=yes", "--facet", "state=CA,TX",
        "--bias-limit", "DPL=0.5", "--bias-limit", "CI=0.95",
    )  # fmt: skip
    assert code == 0
    assert report["counts"]["unreadable_inputs"] == 1
    assert report["counts"]["labelled_rows"] == len(labelled_test) + 1
    checks = {(c["facet"], c["metric"]): c for c in report["bias"]["checks"]}
    assert checks["international_plan", "DPL"]["violated"]
    assert (
        not checks["state", "DPL"]["violated"]
        and not checks["international_plan", "CI"]["violated"]
    )
    assert report["bias"]["violations"] == 1
    out = tmp_path / "out" / "bias"
    clarify = json.loads((out / "constraint_violations.json").read_text())
    assert clarify["version"] == "1.0"
    (violation,) = clarify["violations"]
    assert violation | {"description": ""} == {
        "facet": "international_plan",
        "facet_value": "yes",
        "metric_name": "DPL",
        "constraint_check_type": "bias_drift_check",
        "description": "",
    }
    analysis = json.loads((out / "analysis.json").read_text())
    assert set(analysis["post_training_bias_metrics"]["facets"]) == {"international_plan", "state"}


# --- usage errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--bias-limit", "DPPL=0.2"], "--bias-limit needs at least one --facet"),
        (["--facet", "plan"], "facet 'plan' is not NAME=VALUE"),
        (["--facet", "plan=yes"], "--facet needs --baseline"),
        (["--facet", "plan=yes", "--baseline", "MODEL"], "plan is not a feature of the model"),
        (["--facet", "account_length=old", "--baseline", "MODEL"], "values are thresholds"),
        (["--end", "yesterday"], "--end 'yesterday' is not an ISO 8601 time"),
        (["--min-labels", "0"], "--min-labels must be at least 1"),
        (["--evaluation", "EMPTY"], "not JSON"),
        (["--evaluation", "NOPE"], "No such file or directory"),
        (["--evaluation", "OTHER"], "no binary_classification_metrics"),
        (["--publish"], "--publish needs --namespace"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    tmp_path: Path, model_dir: Path, evaluation_file: Path, capsys: pytest.CaptureFixture[str],
    extra: list[str], message: str,
) -> None:  # fmt: skip
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "other.json").write_text('{"regression_metrics": {}}')
    swap = {"MODEL": str(model_dir), "EMPTY": str(tmp_path / "empty.json"),
            "NOPE": str(tmp_path / "nope.json"), "OTHER": str(tmp_path / "other.json")}  # fmt: skip
    argv = [swap.get(a, a) for a in extra]
    if "--evaluation" not in argv:
        argv += ["--evaluation", str(evaluation_file)]
    (tmp_path / "capture").mkdir()
    (tmp_path / "gt").mkdir()
    code = quality.main(
        ["--capture", str(tmp_path / "capture"), "--ground-truth", str(tmp_path / "gt"),
         "--output", str(tmp_path / "out"), *argv],
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == quality.EXIT_USAGE, err
    assert err.startswith("error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_without_baseline_or_evaluation_the_job_says_what_to_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = quality.main(["--capture", str(tmp_path), "--ground-truth", str(tmp_path)])
    assert code == quality.EXIT_USAGE
    assert "pass --baseline (a model package ARN) or --evaluation" in capsys.readouterr().err


def test_a_model_directory_does_not_name_its_evaluation(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = quality.main(
        ["--capture", str(tmp_path), "--ground-truth", str(tmp_path), "--baseline", str(model_dir)]
    )
    assert code == quality.EXIT_USAGE
    assert "pass --evaluation" in capsys.readouterr().err


# --- against (moto) AWS --------------------------------------------------------------------------

REGION = "eu-west-1"
BUCKET = "churn-prod-capture"
NAMESPACE = "MLOpsKit/churn-prod"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", REGION),
    ):
        monkeypatch.setenv(name, value)
    with mock_aws():
        boto3.setup_default_session(region_name=REGION)
        boto3.client("s3").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield
        boto3.DEFAULT_SESSION = None


def _upload(local: Path, prefix: str) -> None:
    s3 = boto3.client("s3")
    for path in local.rglob("*.jsonl"):
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}/{path.relative_to(local).as_posix()}",
                      Body=path.read_bytes())  # fmt: skip


def test_a_scheduled_run_reads_s3_finds_the_evaluation_and_publishes(
    aws: None, tmp_path: Path, serving_model: Any, labelled_test: pd.DataFrame,
    evaluation_file: Path, model_dir: Path,
) -> None:  # fmt: skip
    from inference.packaging import build_model_archive

    now = datetime.now(UTC).replace(microsecond=0)
    end = now - timedelta(hours=24)  # the job's default: the label delay before now
    keys = serve(serving_model, flip_segment(labelled_test), tmp_path / "capture",
                 end - timedelta(hours=1))  # fmt: skip
    write_labels(tmp_path / "gt", now - timedelta(hours=2), keys)
    _upload(tmp_path / "capture", "datacapture")
    _upload(tmp_path / "gt", f"groundtruth/{ENDPOINT}")
    s3 = boto3.client("s3")
    s3.put_object(
        Bucket=BUCKET, Key="evaluation/evaluation.json", Body=evaluation_file.read_bytes()
    )
    archive = build_model_archive(model_dir, tmp_path / "model.tar.gz")
    s3.put_object(Bucket=BUCKET, Key="models/1/model.tar.gz", Body=archive.path.read_bytes())
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName="churn-prod-models")
    arn = sagemaker.create_model_package(
        ModelPackageGroupName="churn-prod-models",
        InferenceSpecification={
            "Containers": [{"Image": "sklearn:1.9-0",
                            "ModelDataUrl": f"s3://{BUCKET}/models/1/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelMetrics={"ModelQuality": {"Statistics": {
            "ContentType": "application/json",
            "S3Uri": f"s3://{BUCKET}/evaluation/evaluation.json"}}},
    )["ModelPackageArn"]  # fmt: skip
    code = quality.main(
        ["--capture", f"s3://{BUCKET}/datacapture/", "--ground-truth",
         f"s3://{BUCKET}/groundtruth/{ENDPOINT}/", "--baseline", arn,
         "--output", f"s3://{BUCKET}/quality/run-1", "--window-hours", "24",
         "--facet", "international_plan=yes", "--bias-limit", "DPPL=0.9",
         "--publish", "--namespace", NAMESPACE, "--region", REGION],
    )  # fmt: skip
    assert code == 0
    body = s3.get_object(Bucket=BUCKET, Key="quality/run-1/quality.json")["Body"].read()
    report = json.loads(body)
    assert report["evaluation"] == f"s3://{BUCKET}/evaluation/evaluation.json"
    assert report["endpoint"] == ENDPOINT
    assert report["counts"]["labelled_rows"] == len(labelled_test)
    assert "auc" in report["flagged"]
    for key in ("quality.html", "constraint_violations.json", "bias/analysis.json",
                "bias/constraint_violations.json"):  # fmt: skip
        s3.head_object(Bucket=BUCKET, Key=f"quality/run-1/{key}")

    cloudwatch = boto3.client("cloudwatch")
    found: dict[str, list[dict[str, str]]] = {}
    for metric in cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"]:
        dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        found.setdefault(metric["MetricName"], []).append(dims)
    endpoint = {"EndpointName": ENDPOINT}
    for name in ("LabelledRecords", "UnlabelledRecords", "OrphanLabels", "DuplicateLabels",
                 "MalformedLabels", "QualityViolations", "BiasViolations"):  # fmt: skip
        assert found[name] == [endpoint], name
    assert sorted(d["Metric"] for d in found["ModelQuality"]) == sorted(
        ["auc", "accuracy", "precision", "recall", "f1", "brier", "ece"]
    )
    assert {(d["Facet"], d["Metric"]) for d in found["BiasMetric"]} >= {
        ("international_plan=yes", "DPPL"),
        ("international_plan=yes", "CI"),
    }

    def latest(name: str, **dims: str) -> float:
        points = cloudwatch.get_metric_statistics(
            Namespace=NAMESPACE, MetricName=name,
            Dimensions=[{"Name": k, "Value": v} for k, v in {**endpoint, **dims}.items()],
            StartTime=now - timedelta(hours=1), EndTime=datetime.now(UTC) + timedelta(hours=1),
            Period=3600, Statistics=["Maximum"],
        )["Datapoints"]  # fmt: skip
        assert len(points) == 1, name
        return float(points[0]["Maximum"])

    assert latest("LabelledRecords") == report["counts"]["labelled_records"]
    assert latest("QualityViolations") == len(report["flagged"])
    auc = next(t for t in report["tests"] if t["metric"] == "auc")
    assert latest("ModelQuality", Metric="auc") == pytest.approx(auc["window"], abs=1e-6)
    assert latest("BiasViolations") == 0


def test_the_html_escapes_what_the_caller_named(
    tmp_path: Path, serving_model: Any, labelled_test: pd.DataFrame, evaluation_file: Path,
    model_dir: Path,
) -> None:  # fmt: skip
    keys = serve(serving_model, labelled_test.iloc[:200], tmp_path / "capture",
                 END - timedelta(hours=1))  # fmt: skip
    write_labels(tmp_path / "gt", END, keys)
    code, _ = job(tmp_path, evaluation_file, "--baseline", str(model_dir),
                  "--facet", "state=<script>x</script>")  # fmt: skip
    assert code == 0
    page = (tmp_path / "out" / "quality.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page


# --- the window's metrics ------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [60, 199, 200, 3000])
def test_window_metrics_are_evaluation_json_value_for_value(rows: int) -> None:
    """The counts-based metrics equal training/metrics.py's, standard deviations included."""
    from monitoring.classification_metrics import binary_classification_metrics as fast

    rng = np.random.default_rng(rows)
    labels = (rng.random(rows) < 0.2).astype(np.int64)
    scores = np.round(rng.random(rows) * 0.5 + 0.4 * labels, 2)  # many ties
    expected = binary_classification_metrics(labels, scores)["binary_classification_metrics"]
    found = fast(labels, scores)["binary_classification_metrics"]
    assert list(found) == list(expected)
    for name, value in expected.items():
        if isinstance(value, dict) and "value" in value:
            assert found[name]["value"] == pytest.approx(value["value"], abs=1e-12), name
            spread = value["standard_deviation"]
            if spread == "NaN":
                assert found[name]["standard_deviation"] == "NaN"
            else:
                assert found[name]["standard_deviation"] == pytest.approx(spread, abs=1e-12)
        else:
            assert found[name] == value, name


def test_mlops_quality_runs_the_job_and_passes_its_exit_code_through(
    tmp_path: Path, serving_model: Any, labelled_test: pd.DataFrame, evaluation_file: Path,
    model_dir: Path,
) -> None:  # fmt: skip
    from typer.testing import CliRunner

    from mlops.cli import app

    keys = serve(serving_model, flip_segment(labelled_test), tmp_path / "capture",
                 END - timedelta(hours=1))  # fmt: skip
    write_labels(tmp_path / "gt", END, keys)
    common = ["quality", "--capture", str(tmp_path / "capture"), "--baseline", str(model_dir),
              "--evaluation", str(evaluation_file), "--output", str(tmp_path / "out"),
              "--end", END.isoformat(), "--window-hours", "2", "--metric", "auc"]  # fmt: skip
    result = CliRunner().invoke(app, [*common, "--ground-truth", str(tmp_path / "gt")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "quality.json").read_text())
    assert report["settings"]["monitored"] == ["auc"] and report["flagged"] == ["auc"]
    (tmp_path / "empty").mkdir()
    silent = CliRunner().invoke(app, [*common, "--ground-truth", str(tmp_path / "empty")])
    assert silent.exit_code == quality.EXIT_SILENT


def test_two_facets_of_one_column_are_checked_each_on_its_own(
    labelled_test: pd.DataFrame, scored: tuple[np.ndarray, np.ndarray]
) -> None:
    labels, scores = scored
    facets = [bias.Facet("state", ("CA",)), bias.Facet("state", ("TX", "NY"))]
    drift = bias_drift.measure(
        {"state": labelled_test["state"].to_numpy()}, labels, (scores >= 0.5).astype(np.int64),
        facets, {"CI": 0.5}, 0.01,
    )  # fmt: skip
    shares = [labelled_test["state"].isin(f.sensitive_values).mean() for f in facets]
    assert [c.value_or_threshold for c in drift.checks] == ["CA", "TX,NY"]
    assert [c.value for c in drift.checks] == pytest.approx([1 - 2 * s for s in shares])
    # CI near 1 (small states), far over 0.5, on the whole test split: both violations.
    assert [c.violated for c in drift.checks] == [True, True]


def test_mlops_quality_on_a_stack_reads_its_capture_and_ground_truth(
    aws: None, tmp_path: Path, model_dir: Path, evaluation_file: Path
) -> None:
    from typer.testing import CliRunner

    from mlops.cli import app

    bucket = f"churn-dev-capture-123456789012-{REGION}"
    boto3.client("s3").create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    result = CliRunner().invoke(
        app,
        ["quality", "--stack", "dev", "--project-dir", str(Path(__file__).parent.parent),
         "--baseline", str(model_dir), "--evaluation", str(evaluation_file),
         "--output", str(tmp_path)],
    )  # fmt: skip
    # The bucket exists but holds no traffic yet: silent, exit 3, the report still written.
    assert result.exit_code == quality.EXIT_SILENT, result.output
    report = json.loads((tmp_path / "quality.json").read_text())
    assert report["capture"] == f"s3://{bucket}/datacapture/churn-dev-endpoint/primary/"
    assert report["ground_truth"] == f"s3://{bucket}/groundtruth/churn-dev-endpoint/"


def test_long_curves_are_thinned_with_their_ends_kept() -> None:
    from monitoring.classification_metrics import binary_classification_metrics as fast

    rng = np.random.default_rng(0)
    labels = (rng.random(3000) < 0.3).astype(np.int64)
    scores = rng.random(3000)
    full = fast(labels, scores)["binary_classification_metrics"]
    thin = fast(labels, scores, max_curve_points=11)["binary_classification_metrics"]
    for curve, keys in (
        (
            "receiver_operating_characteristic_curve",
            ("false_positive_rates", "true_positive_rates"),
        ),
        ("precision_recall_curve", ("precisions", "recalls")),
    ):
        for key in keys:
            assert len(full[curve][key]) > 11 and len(thin[curve][key]) == 11
            assert thin[curve][key][0] == full[curve][key][0]
            assert thin[curve][key][-1] == full[curve][key][-1]
    assert thin["auc"] == full["auc"]


def test_bias_metrics_name_their_facet_as_configured(
    labelled_test: pd.DataFrame, scored: tuple[np.ndarray, np.ndarray]
) -> None:
    """A numeric facet's analysis.json value is an interval ("(100, 243]"); its CloudWatch
    dimension is the facet as configured, which the dashboard and alarms name."""
    labels, scores = scored
    facet = bias.Facet("account_length", ("100",))
    drift = bias_drift.measure(
        {"account_length": labelled_test["account_length"].to_numpy(dtype=np.float64)},
        labels, (scores >= 0.5).astype(np.int64), [facet], {}, 0.01,
    )  # fmt: skip
    assert {where for where, _, _ in drift.values()} == {"account_length=100"}
    results = drift.analysis[bias.PRE_SECTION]["facets"]["account_length"]
    assert results[0]["value_or_threshold"].startswith("(100")
