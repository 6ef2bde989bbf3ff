"""Tuning's objective and its local search: the Tune step's regex on train.py's real output,
``training.tune`` (the defaults as trial 0, determinism, bounds, errors) and
``mlops train --tune``'s run (mlops.commands.tuning)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from conftest import REPO
from pipeline_specs import pipeline_spec
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from mlops.commands import tuning as tuning_command
from pipelines.spec import TuningSpec
from pipelines.training_pipeline import build_definition
from training import dataset as ds
from training import process
from training import train as train_script
from training.features import Hyperparameters
from training.search_space import DEFAULT_RANGES, Range, Scale, check
from training.tune import Split, tune

SEED = 7
# Few boosting rounds: the search's behaviour, not the model's quality, is under test.
QUICK = Hyperparameters(max_iter=30, seed=SEED)


@pytest.fixture(autouse=True)
def one_openmp_thread() -> Iterator[None]:
    """Fits and SHAP's predictions on one thread: with the machine's cores busy elsewhere,
    the boosting's OpenMP threads spin (a 600-row run took 90 s instead of 8)."""
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


@pytest.fixture(scope="module")
def raw_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("raw") / "churn.csv"
    ds.load_shipped().sample(600, random_state=0).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def processed(raw_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return process.run(raw_csv, tmp_path_factory.mktemp("processed"), seed=SEED).output_dir


@pytest.fixture(scope="module")
def split(processed: Path) -> Split:
    return Split.read(processed)


# --- the objective: the definition's regexes on what train.py prints -------------------------


@pytest.fixture(scope="module")
def metric_definitions() -> dict[str, str]:
    """Name -> regex, read from the Tune step of a built definition."""
    spec = pipeline_spec(TuningSpec(8, 2, "Auto", DEFAULT_RANGES))
    steps = json.loads(build_definition(spec))["Steps"]
    (tune_step,) = [s for s in steps if s["Type"] == "Tuning"]
    arguments = tune_step["Arguments"]
    objective = arguments["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
    assert objective == {"MetricName": "validation:f1", "Type": "Maximize"}
    definitions = arguments["TrainingJobDefinition"]["AlgorithmSpecification"]["MetricDefinitions"]
    return {d["Name"]: d["Regex"] for d in definitions}


def _train_main(
    processed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> tuple[str, dict[str, Any]]:
    """train.py's main as the job runs it: channels from SM_* variables, arguments as passed."""
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(processed / "train"))
    monkeypatch.setenv("SM_CHANNEL_VALIDATION", str(processed / "validation"))
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "model"))
    monkeypatch.setenv("SM_OUTPUT_DATA_DIR", str(tmp_path / "output"))
    assert train_script.main(["--max_iter", "30", "--sagemaker_program", "train.py"]) == 0
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    return capsys.readouterr().out, manifest


def _scraped(regex: str, log: str) -> list[float]:
    """What SageMaker records: the first group of each log line the regex matches."""
    return [float(m.group(1)) for line in log.splitlines() if (m := re.search(regex, line))]


def test_the_tune_steps_regexes_read_train_pys_metrics(
    processed: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
    metric_definitions: dict[str, str],
) -> None:
    log, manifest = _train_main(processed, tmp_path, monkeypatch, capsys)
    reported = manifest["validation_metrics"]
    assert set(metric_definitions) == {f"validation:{name}" for name in reported}
    for name, value in reported.items():
        # One value per metric, the manifest's to the six places train.py prints.
        assert _scraped(metric_definitions[f"validation:{name}"], log) == [round(value, 6)]


def test_tiny_and_undefined_values_are_read_exactly_or_not_at_all(
    processed: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
    metric_definitions: dict[str, str],
) -> None:
    odd = {"roc_auc": 1e-05, "accuracy": math.nan, "precision": 1.0, "recall": 0.0, "f1": 0.25}
    monkeypatch.setattr(train_script, "headline", lambda report: dict(odd))
    log, _ = _train_main(processed, tmp_path, monkeypatch, capsys)
    assert _scraped(metric_definitions["validation:roc_auc"], log) == [1e-05]
    assert _scraped(metric_definitions["validation:f1"], log) == [0.25]
    # nan is printed as such and matches nothing: no objective rather than a wrong one.
    assert "validation:accuracy=nan;" in log
    assert _scraped(metric_definitions["validation:accuracy"], log) == []
    # Printed any other way, such values would not be misread as 1 either.
    for line in ("validation:roc_auc=1e-05;", "validation:roc_auc=1.5e-3;"):
        assert _scraped(metric_definitions["validation:roc_auc"], line) == []


# --- the local search ------------------------------------------------------------------------


def test_the_defaults_are_trial_0_and_score_as_train_py_scores_them(
    split: Split, processed: Path, tmp_path: Path
) -> None:
    result = tune(split, DEFAULT_RANGES, "roc_auc", 3, SEED, defaults=QUICK)
    assert result.history[0].number == 0
    assert result.history[0].hyperparameters == QUICK
    # The same number train.py's train() reports for the defaults on this split.
    document = train_script.train(
        QUICK,
        train_script.TrainingPaths(
            model_dir=tmp_path / "model",
            train=processed / "train",
            validation=processed / "validation",
            output_data_dir=tmp_path / "output",
        ),
    )
    assert result.default_score == document["validation_metrics"]["roc_auc"]


def test_a_search_is_deterministic_for_a_seed_and_keeps_to_its_ranges(split: Split) -> None:
    ranges = (
        Range("learning_rate", 0.02, 0.3, Scale.LOGARITHMIC),
        Range("max_leaf_nodes", 8, 16),
        Range("min_samples_leaf", 5, 40, Scale.LINEAR),
        Range("l2_regularization", 0.1, 0.9, Scale.REVERSE_LOGARITHMIC),
    )
    seen: list[int] = []
    first = tune(split, ranges, "f1", 4, SEED, lambda t: seen.append(t.number), defaults=QUICK)
    second = tune(split, ranges, "f1", 4, SEED, defaults=QUICK)
    assert seen == [0, 1, 2, 3]
    assert first.trials == len(first.history) == 4
    assert [(t.hyperparameters, t.score) for t in first.history] == [
        (t.hyperparameters, t.score) for t in second.history
    ]
    for trial in first.history[1:]:
        hp = trial.hyperparameters
        for r in ranges:
            assert r.low <= getattr(hp, r.name) <= r.high, (r.name, getattr(hp, r.name))
        assert type(hp.max_leaf_nodes) is int and type(hp.min_samples_leaf) is int
        assert type(hp.learning_rate) is float
        # Unsearched hyperparameters keep the defaults'.
        assert (hp.max_iter, hp.class_weight, hp.seed) == (30, "balanced", SEED)
    # The result is the best trial, never worse than the defaults (trial 0).
    assert first.best_score == max(t.score for t in first.history)
    assert first.best_score >= first.default_score == first.history[0].score
    assert first.gain == first.best_score - first.default_score
    assert set(first.best_params) == {r.name for r in ranges}


def test_another_seed_searches_elsewhere(split: Split) -> None:
    a = tune(split, DEFAULT_RANGES, "roc_auc", 2, SEED, defaults=QUICK)
    b = tune(split, DEFAULT_RANGES, "roc_auc", 2, SEED + 1, defaults=QUICK)
    assert a.history[1].hyperparameters != b.history[1].hyperparameters


def test_one_trial_is_the_defaults_alone(split: Split) -> None:
    result = tune(split, DEFAULT_RANGES, "roc_auc", 1, SEED, defaults=QUICK)
    assert result.trials == 1
    assert result.best.hyperparameters == QUICK
    assert result.gain == 0
    record = result.as_json()
    assert record["best_trial"] == 0 and record["trials"] == 1
    assert record["objective"] == "validation:roc_auc"


@pytest.mark.parametrize(
    ("ranges", "metric", "trials", "message"),
    [
        (DEFAULT_RANGES, "roc_auc", 0, "trials must be at least 1, got 0"),
        (DEFAULT_RANGES, "auc", 3, "unknown metric 'auc'"),
        ((), "roc_auc", 3, "no ranges to search"),
        ((Range("learning_rate", 0.3, 0.02),), "roc_auc", 3, "min 0.3 must be below max 0.02"),
        ((Range("depth", 1, 3),), "roc_auc", 3, "depth: not a tunable hyperparameter"),
        ((Range("seed", 1, 3),), "roc_auc", 3, "seed: not a tunable hyperparameter"),
        ((Range("max_leaf_nodes", 8.5, 20),), "roc_auc", 3, "needs whole-number bounds"),
        ((Range("max_leaf_nodes", 8, math.inf),), "roc_auc", 3, "must be finite numbers"),
        (
            (Range("max_leaf_nodes", 8, 20, Scale.REVERSE_LOGARITHMIC),),
            "roc_auc",
            3,
            "an integer hyperparameter cannot use ReverseLogarithmic",
        ),
        (
            (Range("l2_regularization", 0.5, 2.0, Scale.REVERSE_LOGARITHMIC),),
            "roc_auc",
            3,
            "needs 0 <= min < max < 1",
        ),
        (
            (Range("l2_regularization", 0.0, 1.0, Scale.LOGARITHMIC),),
            "roc_auc",
            3,
            "needs min above 0, got 0",
        ),
        (
            (Range("max_iter", 10, 20), Range("max_iter", 30, 40)),
            "roc_auc",
            3,
            "max_iter: given more than one range",
        ),
    ],
)
def test_unusable_searches_are_refused_by_name(
    split: Split, ranges: tuple[Range, ...], metric: str, trials: int, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        tune(split, ranges, metric, trials, SEED, defaults=QUICK)


def test_the_default_ranges_are_usable() -> None:
    assert check(DEFAULT_RANGES) == []


# --- mlops train --tune ----------------------------------------------------------------------


def _run(tmp_path: Path, raw: Path | None, **options: Any) -> None:
    arguments: dict[str, Any] = {"tune": True, "trials": 3, "stack": None, **options}
    tuning_command.run(run_dir=tmp_path / "run", raw=raw, seed=SEED, **arguments)


def test_a_tuned_run_trains_with_the_best_and_records_the_search(
    raw_csv: Path, tmp_path: Path, capsys: Any
) -> None:
    _run(tmp_path, raw_csv)
    out = capsys.readouterr().out
    model = tmp_path / "run" / "model"
    record = json.loads((model / "tuning.json").read_text())
    manifest = json.loads((model / "manifest.json").read_text())
    assert record["trials"] == len(record["history"]) == 3
    assert record["objective"] == "validation:roc_auc"
    assert record["history"][0]["params"] == {
        r.name: getattr(Hyperparameters(), r.name) for r in DEFAULT_RANGES
    }
    assert record["best_score"] >= record["default_score"]
    # The final model is the best trial's: its hyperparameters, its validation score.
    assert manifest["hyperparameters"] == record["best_hyperparameters"]
    assert manifest["validation_metrics"]["roc_auc"] == record["best_score"]
    assert (tmp_path / "run" / "evaluation" / "evaluation.json").is_file()
    assert "best validation roc_auc" in out and "gain" in out and "tuning.json" in out


def test_a_stacks_ranges_and_metric_are_searched(
    raw_csv: Path, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from infra.config.settings import TuningRange
    from mlops.commands.common import stack_settings
    from training import tune as tune_module

    searched: list[tuple[tuple[Range, ...], str]] = []

    def stop(data: Split, ranges: tuple[Range, ...], metric: str, *args: Any, **kw: Any) -> Any:
        searched.append((ranges, metric))
        raise ValueError("stopped after reading the search")

    monkeypatch.setattr(tune_module, "tune", stop)
    with pytest.raises(typer.Exit):
        _run(tmp_path, raw_csv, stack="prod", project_dir=REPO)
    assert "cannot tune: stopped after reading the search" in capsys.readouterr().err
    prod = stack_settings("prod", REPO).training
    assert searched == [(prod.tuning.search_ranges, prod.metric_name)]
    # The stack's own ranges, not the kit's defaults, whenever the stack sets them.
    assert prod.tuning.ranges == {
        r.name: TuningRange(min=r.low, max=r.high, scale=r.scale) for r in DEFAULT_RANGES
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"trials": 0}, "--trials 0: a search needs at least 1 trial"),
        ({"trials": -3}, "--trials -3: a search needs at least 1 trial"),
        ({"tune": False}, "--trials only applies to a tuned run: add --tune"),
        ({"tune": False, "trials": None, "stack": "dev"}, "--stack only applies to a tuned run"),
    ],
)
def test_bad_options_are_one_line_errors_and_write_nothing(
    raw_csv: Path, tmp_path: Path, capsys: Any, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(typer.Exit) as exited:
        _run(tmp_path, raw_csv, **options)
    assert exited.value.exit_code == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
