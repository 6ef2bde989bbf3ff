"""Training entry point in SageMaker script mode.

SageMaker runs ``python train.py --learning_rate 0.1 ...`` with SM_MODEL_DIR,
SM_CHANNEL_TRAIN, SM_CHANNEL_VALIDATION and SM_OUTPUT_DATA_DIR set; without them the
same command reads and writes under runs/local. A job given only a ``raw`` channel
(the stack's baseline training job) validates and splits it first, with process.py's code.
The model directory receives:

- ``model.joblib``: the fitted Pipeline, feature transformation included;
- ``manifest.json``: data and code versions, libraries, hyperparameters, seed, model hash;
- ``baseline.json``: training-feature statistics for drift detection;
- ``code/inference.py``: the serving handler, so SageMaker's ``model.tar.gz`` of this
  directory is what the scikit-learn serving container runs (SAGEMAKER_PROGRAM).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

from training import baseline, manifest, paths
from training.features import Hyperparameters, build_pipeline, forget_thread_count, split_xy
from training.hashing import sha256_files
from training.metrics import binary_classification_metrics, headline


@contextlib.contextmanager
def stock_pickling() -> Iterator[None]:
    """Pickle with the standard library's reducers only, whatever this process imported.

    Importing dill (pulumi does) adds dill's reducers to the pure-Python pickler, and joblib
    copies that pickler's table when it is imported. A model saved with them names
    ``dill._dill`` and cannot be unpickled where dill is absent, as in the serving image.
    """
    import pickle

    from joblib.numpy_pickle import NumpyPickler

    def dill_is_on() -> bool:
        stock = pickle._Pickler.dispatch.values()
        return any(getattr(f, "__module__", "").startswith("dill") for f in stock)

    dill = sys.modules.get("dill") if dill_is_on() else None
    saved = NumpyPickler.dispatch
    if dill is not None:
        dill.extend(False)  # dill's own switch: its reducers out of pickle's table
    NumpyPickler.dispatch = pickle._Pickler.dispatch.copy()
    try:
        yield
    finally:
        NumpyPickler.dispatch = saved
        if dill is not None:
            dill.extend(True)


# SageMaker passes its own bookkeeping as hyperparameters too; they are not ours to parse.
SAGEMAKER_RESERVED_PREFIX = "--sagemaker_"
# Identical inputs must give an identical file; compression level is part of that.
JOBLIB_COMPRESSION = 3
# Same exit code as process.py when the data contract rejects the input.
EXIT_INVALID_DATA = 2
# Where the serving container looks for the handler inside the model archive.
HANDLER_IN_MODEL = Path("code") / "inference.py"


@dataclass(frozen=True)
class TrainingPaths:
    model_dir: Path
    train: Path
    validation: Path
    output_data_dir: Path

    @classmethod
    def from_env(cls) -> TrainingPaths:
        return cls(
            model_dir=paths.from_env("SM_MODEL_DIR", paths.LOCAL_ROOT / "model"),
            train=paths.from_env("SM_CHANNEL_TRAIN", paths.local_processed("train")),
            validation=paths.from_env("SM_CHANNEL_VALIDATION", paths.local_processed("validation")),
            output_data_dir=paths.from_env("SM_OUTPUT_DATA_DIR", paths.LOCAL_ROOT / "output"),
        )


def parse_hyperparameters(argv: list[str] | None) -> Hyperparameters:
    parser = argparse.ArgumentParser(description="Train the churn model.")
    defaults = Hyperparameters()
    for field in fields(Hyperparameters):
        dashed = "--" + field.name.replace("_", "-")
        parser.add_argument(
            dashed,
            "--" + field.name,
            dest=field.name,
            type=_strip_quotes(type(getattr(defaults, field.name))),
            default=getattr(defaults, field.name),
        )
    known, unknown = parser.parse_known_args(argv)
    unexpected = [
        a for a in unknown if a.startswith("--") and not a.startswith(SAGEMAKER_RESERVED_PREFIX)
    ]
    if unexpected:
        parser.error(f"unknown hyperparameters: {' '.join(unexpected)}")
    try:
        return Hyperparameters(**vars(known))
    except ValueError as exc:
        parser.error(str(exc))


def _strip_quotes(kind: type) -> Any:
    # Some SDKs JSON-encode hyperparameter values, so strings can arrive as '"balanced"'.
    def convert(raw: str) -> Any:
        return kind(raw.strip('"'))

    convert.__name__ = kind.__name__
    return convert


def read_channel(directory: Path) -> tuple[pd.DataFrame, list[Path]]:
    files = sorted(directory.glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no CSV files in channel {directory}")
    frame = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    return frame, files


def train(hp: Hyperparameters, where: TrainingPaths) -> dict[str, Any]:
    train_frame, train_files = read_channel(where.train)
    validation_frame, validation_files = read_channel(where.validation)

    model = build_pipeline(hp)
    x_train, y_train = split_xy(train_frame)
    forget_thread_count(model.fit(x_train, y_train))

    x_val, y_val = split_xy(validation_frame)
    validation_report = binary_classification_metrics(
        y_val, model.predict_proba(x_val)[:, 1], seed=hp.seed
    )
    validation_metrics = headline(validation_report)

    where.model_dir.mkdir(parents=True, exist_ok=True)
    model_path = where.model_dir / paths.MODEL_FILE
    with stock_pickling():
        joblib.dump(model, model_path, compress=JOBLIB_COMPRESSION)
    manifest.write_json(where.model_dir / paths.BASELINE_FILE, baseline.compute(x_train))
    copy_handler(where.model_dir)

    lineage_file = where.train / "lineage.json"
    data = {
        "train_sha256": sha256_files(train_files, where.train),
        "validation_sha256": sha256_files(validation_files, where.validation),
        "train_rows": len(train_frame),
        "validation_rows": len(validation_frame),
        "raw_sha256": json.loads(lineage_file.read_text())["raw_sha256"]
        if lineage_file.is_file()
        else None,
    }
    document = manifest.build(
        model_path=model_path,
        hyperparameters=hp,
        data=data,
        validation_metrics=validation_metrics,
    )
    manifest.write_json(where.model_dir / paths.MANIFEST_FILE, document)

    where.output_data_dir.mkdir(parents=True, exist_ok=True)
    manifest.write_json(where.output_data_dir / "validation_metrics.json", validation_report)
    return document


def handler_source() -> Path:
    """The handler, from the installed package or from the unpacked code bundle."""
    from inference import handler

    return Path(handler.__file__)


def copy_handler(model_dir: Path) -> None:
    target = model_dir / HANDLER_IN_MODEL
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(handler_source(), target)


def split_raw_channel(raw: Path, where: TrainingPaths, seed: int) -> TrainingPaths:
    """Validate and split a raw channel exactly as the pipeline's processing step does."""
    from training import process

    splits = Path(tempfile.mkdtemp(prefix="splits-"))
    process.run(raw, splits, seed=seed)
    return replace(where, train=splits / "train", validation=splits / "validation")


def main(argv: list[str] | None = None) -> int:
    hp = parse_hyperparameters(argv)
    where = TrainingPaths.from_env()
    raw = os.environ.get("SM_CHANNEL_RAW")
    if raw and "SM_CHANNEL_TRAIN" not in os.environ:
        from training.contract import DataValidationError

        try:
            where = split_raw_channel(Path(raw), where, seed=hp.seed)
        except DataValidationError as exc:
            print(exc, file=sys.stderr)
            return EXIT_INVALID_DATA
    document = train(hp, where)
    # One "name=value;" line per metric, for SageMaker metric definitions to scrape.
    for name, value in document["validation_metrics"].items():
        print(f"validation:{name}={value:.6f};")
    print(f"model sha256 {document['model']['sha256']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
