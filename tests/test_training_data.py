"""Ingest (local and S3), the split, and the evaluation metrics format."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws

from training import dataset as ds
from training.hashing import sha256_bytes
from training.ingest import DATASET_NAME, ingest, latest
from training.metrics import METRIC_KEYS, binary_classification_metrics, headline
from training.process import split


def test_shipped_dataset_is_the_documented_one() -> None:
    frame = ds.load_shipped()
    assert frame.shape == (5000, len(ds.COLUMNS))
    assert list(frame.columns) == list(ds.COLUMNS)
    assert frame[ds.TARGET].value_counts().to_dict() == {"no": 4293, "yes": 707}


def test_local_ingest_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    first = ingest(str(tmp_path))
    data = Path(first.uri).read_bytes()
    assert first.sha256 == sha256_bytes(data)
    assert Path(first.uri).parent.name == first.sha256[:16]
    assert first.created

    again = ingest(str(tmp_path))
    assert (again.uri, again.sha256, again.created) == (first.uri, first.sha256, False)
    assert latest(str(tmp_path)).sha256 == first.sha256
    manifest = json.loads((Path(first.uri).parent / "manifest.json").read_text())
    assert manifest["rows"] == 5000
    assert manifest["source"] == ds.SOURCE


def test_changed_data_becomes_a_new_version(tmp_path: Path) -> None:
    original = ingest(str(tmp_path))
    changed = ingest(str(tmp_path), frame=ds.load_shipped().iloc[:4000])
    assert changed.sha256 != original.sha256
    assert Path(original.uri).is_file()  # the old version is never overwritten
    assert latest(str(tmp_path)).sha256 == changed.sha256


@mock_aws
def test_s3_ingest_writes_the_same_layout_and_hash(tmp_path: Path) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="churn-data")

    remote = ingest("s3://churn-data/lake")
    local = ingest(str(tmp_path))

    assert remote.sha256 == local.sha256
    key = f"lake/raw/{DATASET_NAME}/{remote.sha256[:16]}/churn.csv"
    assert remote.uri == f"s3://churn-data/{key}"
    body = s3.get_object(Bucket="churn-data", Key=key)["Body"].read()
    assert sha256_bytes(body) == remote.sha256
    assert latest("s3://churn-data/lake").uri == remote.uri
    assert ingest("s3://churn-data/lake").created is False


def test_split_is_deterministic_and_stratified() -> None:
    frame = ds.load_shipped()
    first = split(frame, validation_fraction=0.15, test_fraction=0.15, seed=42)
    second = split(frame, validation_fraction=0.15, test_fraction=0.15, seed=42)
    other = split(frame, validation_fraction=0.15, test_fraction=0.15, seed=1)
    for name in ("train", "validation", "test"):
        pd.testing.assert_frame_equal(first[name], second[name])
        assert abs((first[name][ds.TARGET] == "yes").mean() - 707 / 5000) < 0.01
    assert not first["test"].equals(other["test"])
    assert sum(len(part) for part in first.values()) == 5000


def test_metrics_follow_model_monitors_binary_format() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    scores = np.clip(y * 0.6 + rng.random(400) * 0.5, 0, 1)
    report = binary_classification_metrics(y, scores, seed=1)
    metrics = report["binary_classification_metrics"]
    for key in ("accuracy", "precision", "recall", "f0_5", "f1", "f2", "auc", "true_positive_rate"):
        assert set(metrics[key]) == {"value", "standard_deviation"}
        assert isinstance(metrics[key]["standard_deviation"], float)
    assert set(metrics["confusion_matrix"]) == {"0", "1"}
    assert headline(report).keys() == METRIC_KEYS.keys()
    assert binary_classification_metrics(y, scores, seed=1) == report  # seeded resamples


def test_small_samples_report_no_standard_deviation() -> None:
    y = np.array([0, 1] * 50)
    report = binary_classification_metrics(y, y * 0.9, seed=0)
    assert report["binary_classification_metrics"]["accuracy"]["standard_deviation"] == "NaN"


def test_one_class_test_set_is_an_error() -> None:
    with pytest.raises(ValueError, match="both classes"):
        binary_classification_metrics(np.zeros(10, dtype=int), np.zeros(10))
