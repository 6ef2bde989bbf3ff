"""The entry points run as SageMaker runs them: from the extracted bundle, with SM_* set."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import joblib
import pandas as pd
import pytest
from conftest import run_job

from inference import handler
from training import dataset as ds
from training import manifest
from training.features import Hyperparameters
from training.hashing import sha256_file
from training.train import TrainingPaths, parse_hyperparameters, train

FAST = ["--max_iter", "60"]


def _sm_env(opt_ml: Path, processed: Path, model_dir: Path) -> dict[str, str]:
    return {
        "SM_MODEL_DIR": str(model_dir),
        "SM_CHANNEL_TRAIN": str(processed / "train"),
        "SM_CHANNEL_VALIDATION": str(processed / "validation"),
        "SM_OUTPUT_DATA_DIR": str(opt_ml / "output" / "data"),
    }


@pytest.fixture(scope="module")
def trained(opt_ml: Path, processed: Path) -> tuple[Path, str]:
    model_dir = opt_ml / "model"
    job = run_job(
        opt_ml, "train.py", *FAST, "--learning_rate", '"0.2"', "--sagemaker_program", "train.py",
        env=_sm_env(opt_ml, processed, model_dir),
    )  # fmt: skip
    assert job.returncode == 0, job.stderr
    return model_dir, job.stdout


def test_processing_writes_stratified_splits_with_lineage(processed: Path, raw_csv: Path) -> None:
    raw = pd.read_csv(raw_csv)
    overall = (raw[ds.TARGET] == "yes").mean()
    sizes = {}
    for split in ("train", "validation", "test"):
        frame = pd.read_csv(processed / split / f"{split}.csv")
        sizes[split] = len(frame)
        assert abs((frame[ds.TARGET] == "yes").mean() - overall) < 0.01, split
        lineage = json.loads((processed / split / "lineage.json").read_text())
        assert lineage["raw_sha256"] == sha256_file(raw_csv)
    assert sizes == {"train": 3500, "validation": 750, "test": 750}
    report = json.loads((processed / "report" / "validation_report.json").read_text())
    assert report == {"failures": [], "ok": True, "rows": 5000}


def test_processing_rejects_bad_data_before_anything_is_split(
    opt_ml: Path, raw_csv: Path, tmp_path: Path
) -> None:
    bad = pd.read_csv(raw_csv)
    bad.loc[0:9, "total_day_minutes"] = -1.0
    bad_path = tmp_path / "raw" / "bad.csv"
    bad_path.parent.mkdir()
    bad.to_csv(bad_path, index=False)

    job = run_job(
        opt_ml, "process.py", "--input", str(bad_path.parent), "--output-dir", str(tmp_path / "out")
    )

    assert job.returncode == 2
    assert "total_day_minutes: in_range(0, 720) failed for 10 value(s)" in job.stderr
    assert not (tmp_path / "out" / "train").exists()
    report = json.loads((tmp_path / "out" / "report" / "validation_report.json").read_text())
    assert report["ok"] is False


def test_training_job_writes_model_manifest_baseline_and_handler(
    trained: tuple[Path, str],
) -> None:
    model_dir, stdout = trained
    assert sorted(p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*.*")) == [
        "baseline.json",
        "code/inference.py",
        "manifest.json",
        "model.joblib",
    ]
    # The job ran from the unpacked bundle, and still shipped the serving handler as is.
    assert (model_dir / "code" / "inference.py").read_bytes() == Path(handler.__file__).read_bytes()

    document = manifest.read(model_dir)
    assert document["model"]["sha256"] == sha256_file(model_dir / "model.joblib")
    assert document["hyperparameters"]["max_iter"] == 60
    assert document["hyperparameters"]["learning_rate"] == 0.2
    assert document["seed"] == 42
    assert document["data"]["train_rows"] == 3500
    assert len(document["data"]["raw_sha256"]) == 64
    assert document["libraries"]["scikit-learn"] == "1.9.0"
    assert len(document["code"]["package_sha256"]) == 64
    assert "validation:roc_auc=" in stdout

    model = manifest.load_verified_model(model_dir)
    sample = pd.DataFrame(
        [
            dict.fromkeys(ds.NUMERIC_FEATURES, 1)
            | {
                "state": "KS",
                "area_code": "area_code_415",
                "international_plan": "no",
                "voice_mail_plan": "yes",
            }
        ]
    )
    assert model.predict_proba(sample).shape == (1, 2)


def test_baseline_describes_every_training_feature(trained: tuple[Path, str]) -> None:
    model_dir, _ = trained
    baseline = json.loads((model_dir / "baseline.json").read_text())
    assert set(baseline["features"]) == set(ds.FEATURES)
    assert baseline["rows"] == 3500
    minutes = baseline["features"]["total_day_minutes"]
    assert minutes["type"] == "numeric"
    assert sum(minutes["histogram"]["counts"]) == 3500
    assert sum(minutes["histogram"]["proportions"]) == pytest.approx(1.0)
    assert minutes["quantiles"]["0"] <= minutes["quantiles"]["0.5"] <= minutes["quantiles"]["1"]
    states = baseline["features"]["state"]
    assert states["type"] == "categorical"
    assert sum(states["frequencies"].values()) == pytest.approx(1.0)
    assert len(states["frequencies"]) == 51


def test_evaluation_job_reads_sagemakers_model_tar_gz(
    opt_ml: Path, processed: Path, trained: tuple[Path, str], tmp_path: Path
) -> None:
    model_dir, _ = trained
    mounted = tmp_path / "processing" / "model"
    mounted.mkdir(parents=True)
    with tarfile.open(mounted / "model.tar.gz", "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)  # code/ included, as SageMaker tars the dir

    job = run_job(
        opt_ml, "evaluate.py", "--model", str(mounted), "--test-dir", str(processed / "test"),
        "--output-dir", str(tmp_path / "evaluation"),
    )  # fmt: skip

    assert job.returncode == 0, job.stderr
    report = json.loads((tmp_path / "evaluation" / "evaluation.json").read_text())
    metrics = report["binary_classification_metrics"]
    for key in ("accuracy", "precision", "recall", "f1", "auc"):
        assert 0.0 <= metrics[key]["value"] <= 1.0
        assert isinstance(metrics[key]["standard_deviation"], float)  # 750 rows >= 200
    assert metrics["auc"]["value"] > 0.8
    matrix = metrics["confusion_matrix"]
    assert sum(matrix[a][p] for a in "01" for p in "01") == 750
    assert "test:roc_auc=" in job.stdout


def test_evaluation_refuses_a_tampered_model(
    opt_ml: Path, processed: Path, trained: tuple[Path, str], tmp_path: Path
) -> None:
    model_dir, _ = trained
    tampered = tmp_path / "model"
    shutil.copytree(model_dir, tampered)
    with (tampered / "model.joblib").open("ab") as handle:
        handle.write(b"\0")

    job = run_job(
        opt_ml, "evaluate.py", "--model", str(tampered), "--test-dir", str(processed / "test"),
        "--output-dir", str(tmp_path / "evaluation"),
    )  # fmt: skip

    assert job.returncode == 3
    assert "refusing to load it" in job.stderr
    assert not (tmp_path / "evaluation" / "evaluation.json").exists()


def test_without_sagemaker_variables_everything_lands_under_runs_local(
    opt_ml: Path, processed: Path, tmp_path: Path
) -> None:
    shutil.copytree(processed, tmp_path / "runs" / "local" / "processed")
    job = run_job(opt_ml, "train.py", *FAST, cwd=tmp_path)
    assert job.returncode == 0, job.stderr
    assert (tmp_path / "runs" / "local" / "model" / "model.joblib").is_file()
    assert (tmp_path / "runs" / "local" / "output" / "validation_metrics.json").is_file()


def test_training_is_reproducible(processed: Path, tmp_path: Path) -> None:
    def run(name: str, seed: int) -> tuple[bytes, dict[str, float], str]:
        where = TrainingPaths(
            tmp_path / name, processed / "train", processed / "validation", tmp_path / f"{name}-out"
        )
        document = train(Hyperparameters(max_iter=60, seed=seed), where)
        return (
            (where.model_dir / "model.joblib").read_bytes(),
            document["validation_metrics"],
            (where.model_dir / "manifest.json").read_text(),
        )

    first, second, other_seed = run("a", 42), run("b", 42), run("c", 7)
    assert first[0] == second[0]  # byte-identical model file
    assert first[1] == second[1]  # identical metrics
    assert first[2] == second[2]  # identical manifest
    assert other_seed[0] != first[0]


def test_the_model_file_does_not_depend_on_the_trainings_cpu_count(
    processed: Path, tmp_path: Path
) -> None:
    """The fitted binner kept its OpenMP thread count, so each instance type saved other bytes."""
    from threadpoolctl import threadpool_limits

    saved = []
    for threads in (1, 2):
        where = TrainingPaths(
            tmp_path / f"{threads}", processed / "train", processed / "validation", tmp_path / "out"
        )
        with threadpool_limits(limits=threads, user_api="openmp"):
            train(Hyperparameters(max_iter=20), where)
        saved.append((where.model_dir / "model.joblib").read_bytes())
    assert saved[0] == saved[1]


def test_unchanged_model_loads_with_joblib_directly(trained: tuple[Path, str]) -> None:
    model_dir, _ = trained
    assert joblib.load(model_dir / "model.joblib").classes_.tolist() == [0, 1]


def test_a_model_saved_after_dill_was_imported_needs_only_what_the_image_has(
    processed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pulumi imports dill, which adds its reducers to the pickler joblib uses; a model
    # naming dill cannot be unpickled in the serving image, which has no dill.
    import pickle

    import dill
    import joblib.numpy_pickle

    dill.extend(True)
    extended = dict(pickle._Pickler.dispatch)  # type: ignore[attr-defined]
    where = TrainingPaths(tmp_path / "m", processed / "train", processed / "validation", tmp_path)
    train(Hyperparameters(max_iter=10), where)
    # The rest of the process keeps the pickling it had.
    assert pickle._Pickler.dispatch == extended  # type: ignore[attr-defined]

    modules: set[str] = set()
    find_class = joblib.numpy_pickle.NumpyUnpickler.find_class

    def record(self: object, module: str, name: str) -> object:
        modules.add(module.split(".")[0])
        return find_class(self, module, name)  # type: ignore[arg-type]

    monkeypatch.setattr(joblib.numpy_pickle.NumpyUnpickler, "find_class", record)
    joblib.load(where.model_dir / "model.joblib")
    assert modules <= {"builtins", "copyreg", "joblib", "numpy", "sklearn", "scipy"}, modules


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--learning_rate", "0.05", "--max-iter", "10"], {"learning_rate": 0.05, "max_iter": 10}),
        (["--class_weight", '"none"'], {"class_weight": "none"}),
        (["--seed", "7", "--sagemaker_region", '"eu-west-1"'], {"seed": 7}),
    ],
)
def test_hyperparameters_accept_sagemaker_spellings(
    argv: list[str], expected: dict[str, object]
) -> None:
    parsed = parse_hyperparameters(argv)
    for name, value in expected.items():
        assert getattr(parsed, name) == value


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--learning_rate", "3"], "learning_rate must be in (0, 1]"),
        (["--max_iter", "lots"], "invalid int value"),
        (["--class_weight", "heavy"], "class_weight must be 'balanced' or 'none'"),
        (["--max_depth", "3"], "unknown hyperparameters: --max_depth"),
    ],
)
def test_bad_hyperparameters_fail_with_a_clear_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_hyperparameters(argv)
    assert caught.value.code == 2
    assert message in capsys.readouterr().err


def test_a_job_with_only_a_raw_channel_validates_splits_and_trains(
    opt_ml: Path, raw_csv: Path, tmp_path: Path
) -> None:
    """The stack's baseline training job gets the raw data, not the pipeline's splits."""
    model_dir = tmp_path / "model"
    job = run_job(
        opt_ml, "train.py", *FAST,
        env={"SM_MODEL_DIR": str(model_dir), "SM_CHANNEL_RAW": str(raw_csv.parent),
             "SM_OUTPUT_DATA_DIR": str(tmp_path / "output")},
    )  # fmt: skip

    assert job.returncode == 0, job.stderr
    document = manifest.read(model_dir)
    assert document["data"]["raw_sha256"] == sha256_file(raw_csv)
    assert document["data"]["train_rows"] == 3500
    assert document["data"]["validation_rows"] == 750
    assert "validation:roc_auc=" in job.stdout


def test_a_raw_channel_that_breaks_the_contract_trains_nothing(
    opt_ml: Path, raw_csv: Path, tmp_path: Path
) -> None:
    bad = pd.read_csv(raw_csv)
    bad.loc[0:4, "state"] = "XX"
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    bad.to_csv(raw_dir / "churn.csv", index=False)
    model_dir = tmp_path / "model"

    job = run_job(
        opt_ml, "train.py", *FAST,
        env={"SM_MODEL_DIR": str(model_dir), "SM_CHANNEL_RAW": str(raw_dir),
             "SM_OUTPUT_DATA_DIR": str(tmp_path / "output")},
    )  # fmt: skip

    assert job.returncode == 2
    assert "state: isin(" in job.stderr
    assert not model_dir.exists()
