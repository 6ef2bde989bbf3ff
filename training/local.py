"""Run ingest -> validate -> process -> train -> evaluate on this machine.

Each step calls the same entry-point functions SageMaker runs, with paths in a local run
folder laid out like the jobs' inputs and outputs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training import bias
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
    # Evaluation's bias findings over the given limits (reported, not fatal, locally).
    bias_violations: list[str] = field(default_factory=list)
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
    facets: Sequence[bias.Facet] = bias.DEFAULT_FACETS,
    bias_limits: Mapping[str, float] | None = None,
) -> LocalRun:
    """``on_step`` is told each step's name as it starts (for progress displays);
    ``facets`` and ``bias_limits`` are what evaluation measures and reports against."""
    bias_limits = bias_limits or {}
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
        outcome = evaluate_step.run(
            evaluate_step.Options(
                model=result.model_dir,
                test_dir=split.output_dir / "test",
                output_dir=run_dir / "evaluation",
                facets=tuple(facets),
                limits=tuple(bias_limits.items()),
                # Reported, not fatal: a local run shows the violations and keeps its files.
                fail_on_bias=False,
            ),
            log=lambda _: None,
        )
        result.test_metrics = headline(outcome.evaluation)
        result.bias_violations = [str(v) for v in outcome.violations]
    return result
