"""Evaluation entry point, run as a SageMaker Processing job or locally.

Loads the trained model (a model directory or SageMaker's ``model.tar.gz``), checks its
hash against the manifest before unpickling it, scores the test split, and writes
``evaluation.json`` in Model Monitor's model-quality format for the pipeline's condition
step and the model registry.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from training import manifest, paths
from training.archive import extract_tar_gz
from training.features import split_xy
from training.metrics import binary_classification_metrics, headline
from training.train import read_channel

EVALUATION_FILE = "evaluation.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--model",
        type=Path,
        default=paths.processing_or_local("model", paths.LOCAL_ROOT / "model"),
        help="Model directory, model.tar.gz, or a folder holding model.tar.gz.",
    )
    parser.add_argument(
        "--test-dir",
        "--test_dir",
        type=Path,
        default=paths.processing_or_local("test", paths.local_processed("test")),
    )
    parser.add_argument(
        "--output-dir",
        "--output_dir",
        type=Path,
        default=paths.processing_or_local("evaluation", paths.LOCAL_ROOT / "evaluation"),
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed for the std resamples.")
    return parser.parse_args(argv)


def _model_dir(model: Path, scratch: Path) -> Path:
    archive = model / "model.tar.gz" if model.is_dir() else model
    if archive.is_file():
        return extract_tar_gz(archive, scratch)
    return model


def evaluate(model: Path, test_dir: Path, output_dir: Path, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = _model_dir(model, Path(scratch))
        pipeline = manifest.load_verified_model(model_dir)
    test, _ = read_channel(test_dir)
    x_test, y_test = split_xy(test)
    report = binary_classification_metrics(y_test, pipeline.predict_proba(x_test)[:, 1], seed=seed)
    output_dir.mkdir(parents=True, exist_ok=True)
    manifest.write_json(output_dir / EVALUATION_FILE, report)
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = evaluate(args.model, args.test_dir, args.output_dir, args.seed)
    except manifest.ModelIntegrityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    for name, value in headline(report).items():
        print(f"test:{name}={value:.6f};")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
