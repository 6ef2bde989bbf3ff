"""`mlops train --local`: the whole training path on a laptop."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlops.cli import app
from training import dataset as ds

cli = CliRunner()


def test_local_run_trains_and_prints_test_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli.invoke(app, ["train", "--local", "--run-dir", "run"])
    assert result.exit_code == 0, result.output
    for name in ("roc_auc", "accuracy", "precision", "recall", "f1"):
        assert name in result.output
    assert (tmp_path / "run" / "model" / "model.joblib").is_file()
    assert (tmp_path / "run" / "evaluation" / "evaluation.json").is_file()
    assert (tmp_path / "run" / "data" / "raw" / "mlc_churn" / "latest.json").is_file()


def test_bad_raw_data_stops_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    bad = ds.load_shipped().drop(columns=["state"])
    bad.to_csv(tmp_path / "bad.csv", index=False)

    result = cli.invoke(app, ["train", "--local", "--run-dir", "run", "--raw", "bad.csv"])

    assert result.exit_code == 1
    assert "data rejected before training" in result.output
    assert "state: column_present" in result.output
    assert not (tmp_path / "run" / "model").exists()


def test_missing_raw_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli.invoke(app, ["train", "--local", "--raw", "nope.csv"])
    assert result.exit_code == 1
    assert "--raw nope.csv: no such file" in result.output


def test_train_without_local_says_what_is_supported() -> None:
    result = cli.invoke(app, ["train"])
    assert result.exit_code == 1
    assert "only --local is available" in result.output
