"""Model versions scored on the same held-out rows, so their numbers can be compared.

Each version's own evaluation scores it on its own test split: v1 on the data it was trained
for, v2 on the drifted data it was retrained on. Those two numbers answer different questions.
Here the pipeline's evaluation step (training.evaluate) scores every version on each held-out
set in turn, and every score records how many rows it covered and the hash of their files.

The splits make the sets fair to both versions: process.py splits stratified on the label
with a fixed seed, and the drift moves features, never labels, so the fresh data's test and
validation splits hold the same customers as the first data's. Neither version trained on them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from training import evaluate as evaluate_step
from training.hashing import sha256_files
from training.metrics import headline

HEADLINE_METRIC = "roc_auc"


@dataclass(frozen=True)
class HeldOut:
    key: str  # folder and JSON name
    title: str  # what a person calls it: "drifted test rows"
    description: str
    channel: Path  # CSV files with the label column, like the evaluation step's test channel


@dataclass(frozen=True)
class Score:
    version: str
    rows: int  # rows the metrics were computed on (the confusion matrix's total)
    data_sha256: str  # of the channel's files as this version was scored
    metrics: dict[str, float]


@dataclass(frozen=True)
class HeldOutScores:
    data: HeldOut
    scores: tuple[Score, ...]

    @property
    def rows(self) -> int:
        return self.scores[0].rows

    def value(self, version: str, metric: str = HEADLINE_METRIC) -> float:
        return next(s.metrics[metric] for s in self.scores if s.version == version)

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.data.title,
            "description": self.data.description,
            "channel": str(self.data.channel),
            "rows": self.rows,
            "scores": {
                s.version: {"rows": s.rows, "data_sha256": s.data_sha256, "metrics": s.metrics}
                for s in self.scores
            },
        }


@dataclass(frozen=True)
class Comparison:
    versions: tuple[str, ...]
    sets: tuple[HeldOutScores, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": HEADLINE_METRIC,
            "versions": list(self.versions),
            "held_out": {s.data.key: s.as_dict() for s in self.sets},
        }


def compare(models: Mapping[str, Path], held_out: Sequence[HeldOut], output: Path) -> Comparison:
    """Score every model directory on every held-out set; ``output`` gets the evaluations."""
    sets = []
    for data in held_out:
        scores = tuple(
            _score(version, model_dir, data, output / data.key / version)
            for version, model_dir in models.items()
        )
        if len({(s.rows, s.data_sha256) for s in scores}) != 1:
            raise RuntimeError(f"{data.title}: the versions were not scored on the same rows")
        sets.append(HeldOutScores(data, scores))
    return Comparison(tuple(models), tuple(sets))


def _score(version: str, model_dir: Path, data: HeldOut, output: Path) -> Score:
    files = sorted(data.channel.glob("*.csv"))  # what the evaluation step reads
    digest = sha256_files(files, data.channel)
    report = evaluate_step.evaluate(model_dir, data.channel, output, seed=0)
    matrix = report["binary_classification_metrics"]["confusion_matrix"]
    rows = sum(count for row in matrix.values() for count in row.values())
    return Score(version, rows, digest, headline(report))


def write_channel(frame: pd.DataFrame, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / f"{folder.name}.csv", index=False, lineterminator="\n")
    return folder


def demo_sets(run_dir: Path, drifted_traffic: pd.DataFrame) -> list[HeldOut]:
    """The demo's held-out sets: drifted test rows first (the case v2 was trained for)."""
    processed = {label: run_dir / label / "data" / "processed" for label in ("v1", "v2")}
    traffic_channel = write_channel(
        drifted_traffic, run_dir / "comparison" / "data" / "drifted-traffic"
    )
    return [
        HeldOut(
            "drifted-test",
            "drifted test rows",
            "v2's test split: the fresh, drifted data's held-out 15%. The same customers as "
            "v1's test split, after the drift, so neither version trained on them.",
            processed["v2"] / "test",
        ),
        HeldOut(
            "drifted-traffic",
            "drifted traffic rows",
            "The rows the endpoint served in the drifted traffic phase, with their known "
            "churn labels: held-out customers of both versions, after the drift.",
            traffic_channel,
        ),
        HeldOut(
            "normal-test",
            "normal test rows",
            "v1's test split: the original data's held-out 15%, before the drift. v1's own "
            "test score comes from these rows.",
            processed["v1"] / "test",
        ),
    ]
