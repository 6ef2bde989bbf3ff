"""Run ingest -> validate -> process -> train -> evaluate on this machine.

Each step calls the same entry-point functions SageMaker runs, with paths in a local run
folder laid out like the jobs' inputs and outputs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training import evaluate as evaluate_step
from training import ingest as ingest_step
from training import process as process_step
from training import train as train_step
from training.features import Hyperparameters
from training.metrics import headline

STEPS = ("ingest", "validate + split", "train", "evaluate")


@dataclass
class LocalRun:
    run_dir: Path
    raw_uri: str = ""
    raw_sha256: str = ""
    rows: dict[str, int] = field(default_factory=dict)
    model_sha256: str = ""
    validation_metrics: dict[str, float] = field(default_factory=dict)
    test_metrics: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def model_dir(self) -> Path:
        return self.run_dir / "model"


StepHook = Callable[[str], Any]


def run(
    run_dir: Path,
    *,
    raw_csv: Path | None = None,
    hyperparameters: Hyperparameters | None = None,
    on_step: StepHook | None = None,
) -> LocalRun:
    """``on_step`` is told each step's name as it starts (for progress displays)."""
    hyperparameters = hyperparameters or Hyperparameters()
    result = LocalRun(run_dir)
    data_root = run_dir / "data"

    @contextmanager
    def step(name: str) -> Iterator[None]:
        if on_step is not None:
            on_step(name)
        started = time.perf_counter()
        yield
        result.seconds[name] = time.perf_counter() - started

    with step("ingest"):
        if raw_csv is None:
            version = ingest_step.ingest(str(data_root))
            result.raw_uri, raw_path = version.uri, Path(version.uri)
        else:
            result.raw_uri, raw_path = str(raw_csv), raw_csv

    with step("validate + split"):
        split = process_step.run(raw_path, data_root / "processed", seed=hyperparameters.seed)
        result.raw_sha256, result.rows = split.raw_sha256, split.rows

    with step("train"):
        document = train_step.train(
            hyperparameters,
            train_step.TrainingPaths(
                model_dir=result.model_dir,
                train=split.output_dir / "train",
                validation=split.output_dir / "validation",
                output_data_dir=run_dir / "output",
            ),
        )
        result.model_sha256 = document["model"]["sha256"]
        result.validation_metrics = document["validation_metrics"]

    with step("evaluate"):
        report = evaluate_step.evaluate(
            result.model_dir, split.output_dir / "test", run_dir / "evaluation", seed=0
        )
        result.test_metrics = headline(report)
    return result
