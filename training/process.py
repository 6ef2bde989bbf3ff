"""Processing entry point: validate raw data against the contract, then split it.

Runs as a SageMaker Processing job (raw data mounted at /opt/ml/processing/input/raw,
splits written under /opt/ml/processing/output) or locally with the same arguments.
Invalid data stops here, before any training, with a report naming every failing check.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from training import dataset as ds
from training import paths
from training.hashing import sha256_bytes

SPLITS = ("train", "validation", "test")
VALIDATION_FRACTION = 0.15
TEST_FRACTION = 0.15
SEED = 42
EXIT_INVALID_DATA = 2


@dataclass(frozen=True)
class SplitResult:
    raw_sha256: str
    rows: dict[str, int]
    output_dir: Path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--input",
        type=Path,
        default=paths.processing_or_local("input/raw", paths.LOCAL_ROOT / "raw"),
        help="Raw CSV file, or a folder holding exactly one.",
    )
    parser.add_argument(
        "--output-dir",
        "--output_dir",
        type=Path,
        default=paths.processing_or_local("output", paths.LOCAL_ROOT / "processed"),
    )
    parser.add_argument(
        "--validation-fraction", "--validation_fraction", type=float, default=VALIDATION_FRACTION
    )
    parser.add_argument("--test-fraction", "--test_fraction", type=float, default=TEST_FRACTION)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    if not 0 < args.validation_fraction < 1 or not 0 < args.test_fraction < 1:
        parser.error("split fractions must lie strictly between 0 and 1")
    if args.validation_fraction + args.test_fraction >= 1:
        parser.error("validation and test fractions must leave rows for training")
    return args


def resolve_input(path: Path) -> Path:
    if path.is_file():
        return path
    candidates = sorted(path.glob("*.csv")) if path.is_dir() else []
    if len(candidates) != 1:
        raise FileNotFoundError(f"expected one raw CSV at {path}, found {len(candidates)}")
    return candidates[0]


def split(
    frame: pd.DataFrame, *, validation_fraction: float, test_fraction: float, seed: int
) -> dict[str, pd.DataFrame]:
    """Stratified on the label, so every split keeps the churn rate."""
    rest, test = train_test_split(
        frame, test_size=test_fraction, stratify=frame[ds.TARGET], random_state=seed
    )
    train, validation = train_test_split(
        rest,
        test_size=validation_fraction / (1 - test_fraction),
        stratify=rest[ds.TARGET],
        random_state=seed,
    )
    return {
        "train": train.reset_index(drop=True),
        "validation": validation.reset_index(drop=True),
        "test": test.reset_index(drop=True),
    }


def run(
    input_path: Path,
    output_dir: Path,
    *,
    validation_fraction: float = VALIDATION_FRACTION,
    test_fraction: float = TEST_FRACTION,
    seed: int = SEED,
) -> SplitResult:
    from training import contract  # installs pandera first where the image lacks it

    raw = resolve_input(input_path).read_bytes()
    report_dir = output_dir / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    try:
        frame = contract.read_csv(raw)
        validated = contract.require_valid(frame)
    except contract.DataValidationError as exc:
        (report_dir / "validation_report.json").write_text(contract.report_json(exc.report))
        raise
    (report_dir / "validation_report.json").write_text(
        contract.report_json(contract.ValidationReport(len(validated), []))
    )

    parts = split(
        validated,
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
        seed=seed,
    )
    raw_sha256 = sha256_bytes(raw)
    rows = {name: len(part) for name, part in parts.items()}
    lineage = {"raw_sha256": raw_sha256, "seed": seed, "rows": rows}
    for name, part in parts.items():
        target = output_dir / name
        target.mkdir(parents=True, exist_ok=True)
        part.to_csv(target / f"{name}.csv", index=False, lineterminator="\n")
        (target / "lineage.json").write_text(json.dumps(lineage, indent=2, sort_keys=True) + "\n")
    return SplitResult(raw_sha256, rows, output_dir)


def main(argv: list[str] | None = None) -> int:
    from training.contract import DataValidationError

    args = parse_args(argv)
    try:
        result = run(
            args.input,
            args.output_dir,
            validation_fraction=args.validation_fraction,
            test_fraction=args.test_fraction,
            seed=args.seed,
        )
    except DataValidationError as exc:
        print(exc, file=sys.stderr)
        return EXIT_INVALID_DATA
    print(f"validated {result.raw_sha256[:12]}; split rows {result.rows} -> {result.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
