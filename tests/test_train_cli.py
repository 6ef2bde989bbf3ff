"""`mlops train`: the whole training path on a laptop (``--local`` is still accepted)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlops.cli import app
from training import dataset as ds
from training.local import STEPS

cli = CliRunner()
# What a non-terminal shows for each step (CliRunner's output is not a terminal).
STEP_LINES = [f"step {i}/{len(STEPS)}: {name}" for i, name in enumerate(STEPS, start=1)]


def _step_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("step ")]


def test_local_run_trains_and_prints_test_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli.invoke(app, ["train", "--local", "--run-dir", "run"])
    assert result.exit_code == 0, result.output
    assert _step_lines(result.output) == STEP_LINES
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
    # The step that rejected the data was the last one shown; no training started.
    assert _step_lines(result.output) == STEP_LINES[:2]
    assert "state: column_present" in result.output
    assert not (tmp_path / "run" / "model").exists()


def test_missing_raw_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli.invoke(app, ["train", "--local", "--raw", "nope.csv"])
    assert result.exit_code == 1
    assert "--raw nope.csv: no such file" in result.output


def test_train_without_local_trains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    # 600 rows (the contract's minimum is 500): the same steps as the shipped data, faster.
    ds.load_shipped().sample(600, random_state=0).to_csv(tmp_path / "small.csv", index=False)

    result = cli.invoke(app, ["train", "--run-dir", "run", "--raw", "small.csv"])

    assert result.exit_code == 0, result.output
    assert _step_lines(result.output) == STEP_LINES
    assert "roc_auc" in result.output
    assert "(600 rows:" in result.output
    assert (tmp_path / "run" / "model" / "model.joblib").is_file()
    assert (tmp_path / "run" / "evaluation" / "evaluation.json").is_file()


def test_local_is_hidden_from_help() -> None:
    result = cli.invoke(app, ["train", "--help"])
    assert result.exit_code == 0
    assert "--run-dir" in result.output
    assert "--local" not in result.output
