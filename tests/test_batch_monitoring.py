"""Batch capture feeding the drift and quality jobs (monitoring/batch_capture.py): the
manifests of a local batch run (inference/batch.py) read as capture records, the quality job
pairing inputs with outputs and joining ground truth on the records' own ids, bad rows and
broken outputs counted, locally and on S3 (moto)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws

from inference import batch, handler
from inference.capture import capture_record
from monitoring import batch_capture, drift, labels_file, quality
from monitoring.store import LocalStore
from training.metrics import binary_classification_metrics

NOW = datetime(2026, 11, 30, 12, 30, tzinfo=UTC)  # the batch run: hour folder 12
END = "2026-11-30T13:00:00"
ROWS = 30
BUCKET = "capture-bucket"


@pytest.fixture(scope="module")
def features(test_rows: pd.DataFrame, model_dir: Path) -> pd.DataFrame:
    order = list(handler.model_fn(str(model_dir)).feature_order)
    return test_rows.iloc[:ROWS].loc[:, order].reset_index(drop=True)


@pytest.fixture(scope="module")
def evaluation_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    labels = np.array([0, 1] * 10)
    scores = np.linspace(0.05, 0.95, 20)
    path = tmp_path_factory.mktemp("evaluation") / "evaluation.json"
    path.write_text(json.dumps(binary_classification_metrics(labels, scores)))
    return path


def _csv_lines(frame: pd.DataFrame, ids: list[str]) -> list[str]:
    body = frame.to_csv(index=False, header=False).splitlines()
    return [f"{i},{row}" for i, row in zip(ids, body, strict=True)]


def _write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _batch(model_dir: Path, root: Path, files: dict[str, list[str]]) -> batch.BatchResult:
    for name, lines in files.items():
        _write(root / "in" / name, lines)
    return batch.run(model_dir, root / "in", root / "out", now=NOW)


def _drift(capture: str, model_dir: Path, root: Path) -> Any:
    options = drift.parse_options(
        [
            "--capture",
            capture,
            "--baseline",
            str(model_dir),
            "--output",
            str(root / "drift"),
            "--end",
            END,
        ]
    )
    return drift.run(options, log=lambda _: None)


def _labels(root: Path, labels: dict[str, int]) -> Path:
    """Ground truth as `mlops label` files it: a team's id,label CSV, checked, hour-filed."""
    table = root / "labels.csv"
    table.write_text("id,label\n" + "".join(f"{k},{v}\n" for k, v in labels.items()))
    content = labels_file.read(table).jsonl()
    target = Path(labels_file.target(str(root / "gt"), NOW, content))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    return root / "gt"


def _quality(capture: str, ground_truth: str, evaluation: Path, root: Path) -> Any:
    options = quality.parse_options(
        [
            "--capture",
            capture,
            "--ground-truth",
            ground_truth,
            "--evaluation",
            str(evaluation),
            "--output",
            str(root / "quality"),
            "--end",
            END,
            "--label-delay-hours",
            "1",
        ]
    )
    return quality.run(options, log=lambda _: None)


# --- drift ------------------------------------------------------------------------------------


def test_drift_reads_batch_capture_as_the_same_rows_sent_to_an_endpoint(
    model_dir: Path, features: pd.DataFrame, tmp_path: Path
) -> None:
    ids = [f"c-{i:03d}" for i in range(ROWS)]
    result = _batch(model_dir, tmp_path, {"a.csv": _csv_lines(features, ids)})
    assert result.capture is not None and result.summary.scored == ROWS

    # The same rows as endpoint capture: one request of 10 rows, then 20 of one row.
    folder = tmp_path / "endpoint" / "churn" / "AllTraffic" / "2026/11/30/12"
    folder.mkdir(parents=True)
    bodies = [features.iloc[:10]] + [features.iloc[i : i + 1] for i in range(10, ROWS)]
    records = [
        capture_record(
            request_body=part.to_csv(index=False, header=False).encode(),
            request_content_type="text/csv",
            response_body=b"no,0.9,0.1\n" * len(part),
            response_content_type="text/csv",
            when=NOW,
            event_id=f"e{n}",
            inference_id=None,
        )
        for n, part in enumerate(bodies)
    ]
    (folder / "capture.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))

    from_batch = _drift(str(result.capture), model_dir, tmp_path)
    from_endpoint = _drift(str(tmp_path / "endpoint"), model_dir, tmp_path)
    assert from_batch.counts.used == from_batch.counts.rows == ROWS
    assert from_batch.counts.malformed_total == 0
    assert (from_batch.files, from_batch.folders) == (1, 1)
    assert from_batch.features == from_endpoint.features
    assert from_endpoint.counts.rows == ROWS


def test_endpoint_capture_keeps_its_plain_store(tmp_path: Path) -> None:
    (tmp_path / "ep" / "AllTraffic" / "2026").mkdir(parents=True)
    options = drift.parse_options(
        ["--capture", str(tmp_path), "--baseline", "unused", "--end", END]
    )
    assert isinstance(drift._store(options), LocalStore)


# --- quality ----------------------------------------------------------------------------------


def test_labels_keyed_by_record_id_join_batch_predictions(
    model_dir: Path, features: pd.DataFrame, evaluation_file: Path, tmp_path: Path
) -> None:
    ids = [f"c-{i:03d}" for i in range(ROWS)]
    lines = _csv_lines(features, ids)
    result = _batch(model_dir, tmp_path, {"a.csv": lines[:20], "b.csv": lines[20:]})
    assert result.capture is not None
    # 7 labels for a.csv's records, 3 for b.csv's, one for a customer never scored.
    labelled = ids[:7] + ids[20:23]
    ground_truth = _labels(tmp_path, {**{k: n % 2 for n, k in enumerate(labelled)}, "c-999": 1})

    report = _quality(str(result.capture), str(ground_truth), evaluation_file, tmp_path)
    counts = report.counts.as_dict()
    assert counts["capture_lines"] == counts["capture_records"] == ROWS
    assert counts["labelled_records"] == counts["labelled_rows"] == 10
    assert counts["unlabelled_records"] == 20
    assert counts["orphan_labels"] == 1
    assert counts["malformed_records"] == 0
    assert report.folders == 1


def test_joined_scores_are_the_batch_outputs_positive_probabilities(tmp_path: Path) -> None:
    capture = _hand_capture(
        tmp_path,
        inputs=["r1,KS,1.5", "r2,OH,2.5", "r3,NY,x"],
        outputs=[
            "r1,no,0.750000,0.250000,,",
            "r2,yes,0.100000,0.900000,,",
            "r3,,,,not_a_number,column x: 'x' is not a number",
        ],
    )
    store = _paired_store(capture)
    records = [json.loads(line) for name in _manifests(capture) for line in store.lines(name)]
    assert [r["eventMetadata"]["inferenceId"] for r in records] == ["r1", "r2", "r3"]
    assert [r["captureData"]["endpointInput"]["data"] for r in records] == [
        "KS,1.5", "OH,2.5", "NY,x",
    ]  # fmt: skip
    assert [r["captureData"]["endpointOutput"]["data"] for r in records] == [
        "no,0.750000,0.250000", "yes,0.100000,0.900000", "",
    ]  # fmt: skip
    assert isinstance(store, batch_capture.BatchCaptureStore)
    assert dict(store.problems) == {"row_error:not_a_number": 1}


def test_json_lines_outputs_pair_by_id(tmp_path: Path) -> None:
    capture = _hand_capture(
        tmp_path,
        inputs=['{"id": 7, "features": {"state": "KS"}}', '{"id": "b", "features": {}}'],
        outputs=[
            '{"id": 7, "SageMakerOutput": {"label": "yes", "probabilities": '
            '{"no": 0.3, "yes": 0.7}, "error": null}}',
            '{"id": "other", "SageMakerOutput": {"label": "no", "probabilities": '
            '{"no": 0.6, "yes": 0.4}, "error": null}}',
        ],
        name="a.jsonl",
    )
    store = _paired_store(capture)
    records = [json.loads(line) for name in _manifests(capture) for line in store.lines(name)]
    first, second = (r["captureData"]["endpointOutput"] for r in records)
    assert records[0]["eventMetadata"]["inferenceId"] == "7"
    assert json.loads(first["data"])["predictions"][0]["probabilities"]["yes"] == 0.7
    assert "data" not in second and "inferenceId" not in records[1]["eventMetadata"]
    assert dict(store.problems) == {"id_mismatch": 1}


def test_error_rows_and_broken_outputs_are_counted_not_joined(
    model_dir: Path, features: pd.DataFrame, evaluation_file: Path, tmp_path: Path
) -> None:
    ids = [f"c-{i:03d}" for i in range(ROWS)]
    lines = _csv_lines(features, ids)
    lines[2] = "c-002,1,2"  # wrong width
    lines[5] = "c-005," + lines[5].split(",", 1)[1].replace(",", ",,", 1)  # a shifted column
    files = {"a.csv": lines[:12], "b.csv": lines[12:20], "c.csv": lines[20:]}
    result = _batch(model_dir, tmp_path, files)
    assert result.summary.errors == 2
    transform = tmp_path / "out" / "transform"
    kept = (transform / "a.csv.out").read_text().splitlines()[:9]  # a.csv: 3 lines short
    (transform / "a.csv.out").write_text("".join(k + "\n" for k in kept))
    (transform / "b.csv.out").unlink()  # b.csv: no output at all
    # Every record is labelled: only the paired, scored ones may join.
    ground_truth = _labels(tmp_path, dict.fromkeys(ids, 1))

    report = _quality(str(result.capture), str(ground_truth), evaluation_file, tmp_path)
    counts = report.counts.as_dict()
    assert counts["capture_lines"] == ROWS
    assert counts["malformed_records_by_reason"] == {"empty_output": 2, "missing_output": 3 + 8}
    assert counts["labelled_records"] == ROWS - 2 - 3 - 8 == 17
    assert counts["orphan_labels"] == 2 + 3 + 8

    assert result.capture is not None
    store = _paired_store(result.capture)
    for name in _manifests(result.capture):
        list(store.lines(name))
    problems = dict(store.problems)
    assert problems["output_short"] == 3 and problems["output_missing"] == 8
    assert sum(v for k, v in problems.items() if k.startswith("row_error:")) == 2


def test_an_output_longer_than_its_input_is_counted(tmp_path: Path) -> None:
    capture = _hand_capture(
        tmp_path, inputs=["r1,KS,1"], outputs=["r1,no,0.8,0.2,,", "r2,no,0.8,0.2,,"]
    )
    store = _paired_store(capture)
    records = [json.loads(line) for name in _manifests(capture) for line in store.lines(name)]
    assert len(records) == 2 and "data" not in records[1]["captureData"]["endpointOutput"]
    assert dict(store.problems) == {"output_long": 1}


# --- S3 ---------------------------------------------------------------------------------------


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_drift_and_quality_read_batch_capture_on_s3(
    s3: Any, model_dir: Path, features: pd.DataFrame, evaluation_file: Path, tmp_path: Path
) -> None:
    ids = [f"c-{i:03d}" for i in range(ROWS)]
    lines = _csv_lines(features, ids)
    lines[4] = "c-004,1,2"
    result = _batch(model_dir, tmp_path, {"a.csv": lines})
    assert result.capture is not None
    # The layout a transform job writes: inputs and outputs in their buckets, manifests
    # naming them under the stack's batch capture prefix (infra/naming.batch_capture_uri).
    s3.upload_file(str(tmp_path / "in" / "a.csv"), BUCKET, "batch/input/a.csv")
    s3.upload_file(str(result.transform / "a.csv.out"), BUCKET, "batch/output/run-1/a.csv.out")
    base = "batchcapture/churn-batch"
    for kind, prefix, listed in (
        ("input", f"s3://{BUCKET}/batch/input/", "a.csv"),
        ("output", f"s3://{BUCKET}/batch/output/run-1/", "a.csv.out"),
    ):
        manifest = json.dumps([{"prefix": prefix}, listed])
        s3.put_object(Bucket=BUCKET, Key=f"{base}/{kind}/2026/11/30/12/m.jsonl", Body=manifest)
    labelled = dict.fromkeys(ids[:6], 1)  # c-004 is a bad row: labelled, never joined
    table = tmp_path / "labels.csv"
    table.write_text("id,label\n" + "".join(f"{k},{v}\n" for k, v in labelled.items()))
    content = labels_file.read(table).jsonl()
    key = labels_file.target(f"s3://{BUCKET}/groundtruth/churn", NOW, content)
    s3.put_object(Bucket=BUCKET, Key=key.removeprefix(f"s3://{BUCKET}/"), Body=content)
    capture = f"s3://{BUCKET}/{base}/"

    report = _drift(capture, model_dir, tmp_path)
    assert report.counts.used == ROWS - 1
    assert dict(report.counts.malformed) == {"wrong_column_count": 1}

    quality_report = _quality(
        capture, f"s3://{BUCKET}/groundtruth/churn", evaluation_file, tmp_path
    )
    counts = quality_report.counts.as_dict()
    assert counts["labelled_records"] == 5 and counts["orphan_labels"] == 1
    assert counts["malformed_records_by_reason"] == {"empty_output": 1}
    assert counts["unlabelled_records"] == ROWS - 1 - 5


def test_a_missing_output_object_on_s3_is_counted(s3: Any, tmp_path: Path) -> None:
    base = "batchcapture/churn-batch"
    s3.put_object(Bucket=BUCKET, Key="batch/input/a.csv", Body=b"r1,KS,1\nr2,OH,2\n")
    for kind, prefix, listed in (
        ("input", f"s3://{BUCKET}/batch/input/", "a.csv"),
        ("output", f"s3://{BUCKET}/batch/output/run-1/", "a.csv.out"),  # never written
    ):
        manifest = json.dumps([{"prefix": prefix}, listed])
        s3.put_object(Bucket=BUCKET, Key=f"{base}/{kind}/2026/11/30/12/m.jsonl", Body=manifest)
    argv = ["--capture", f"s3://{BUCKET}/{base}", "--ground-truth", str(tmp_path)]
    options = quality.parse_options([*argv, "--evaluation", "unused", "--end", END])
    store = quality.store_for(options.capture, options)
    assert isinstance(store, batch_capture.BatchCaptureStore)
    manifest = f"s3://{BUCKET}/{base}/input/2026/11/30/12/m.jsonl"
    records = [json.loads(line) for line in store.lines(manifest)]
    assert len(records) == 2
    assert all("data" not in r["captureData"]["endpointOutput"] for r in records)
    assert dict(store.problems) == {"output_missing": 2}


# --- helpers ----------------------------------------------------------------------------------


def _hand_capture(root: Path, inputs: list[str], outputs: list[str], name: str = "a.csv") -> Path:
    """A capture folder written by hand: one input file, its output, their manifests."""
    _write(root / "in" / name, inputs)
    _write(root / "out" / (name + ".out"), outputs)
    capture = root / "capture"
    for kind, folder, listed in (("input", "in", name), ("output", "out", name + ".out")):
        path = capture / kind / "2026/11/30/12/m.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps([{"prefix": str(root / folder) + "/"}, listed]))
    return capture


def _paired_store(capture: Path) -> batch_capture.BatchCaptureStore:
    store = batch_capture.wrap(LocalStore(), str(capture), predictions=True)
    assert isinstance(store, batch_capture.BatchCaptureStore)
    return store


def _manifests(capture: Path) -> list[str]:
    return sorted(str(p) for p in (capture / "input").rglob("*.jsonl"))


def test_hand_capture_layout_is_batch_capture(tmp_path: Path) -> None:
    capture = _hand_capture(tmp_path, inputs=["r1,KS,1"], outputs=["r1,no,0.8,0.2,,"])
    assert isinstance(
        batch_capture.wrap(LocalStore(), str(capture)), batch_capture.BatchCaptureStore
    )
    shutil.rmtree(capture / "input")
    assert isinstance(batch_capture.wrap(LocalStore(), str(capture)), LocalStore)
