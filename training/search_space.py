"""The hyperparameters tuning may search, and over which ranges by default.

One definition serves both engines: SageMaker's tuning step (Bayesian search over
``ContinuousParameterRanges`` / ``IntegerParameterRanges``) and ``mlops train --tune`` on a
laptop. The objective is the validation metric train.py prints as ``validation:<name>=<v>;``.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, fields

from training.features import Hyperparameters


class Scale(enum.StrEnum):
    """SageMaker's ScalingType values (botocore's HyperParameterScalingType enum)."""

    AUTO = "Auto"
    LINEAR = "Linear"
    LOGARITHMIC = "Logarithmic"
    REVERSE_LOGARITHMIC = "ReverseLogarithmic"


@dataclass(frozen=True)
class Range:
    name: str  # a Hyperparameters field
    low: float
    high: float
    scale: Scale = Scale.AUTO

    @property
    def integer(self) -> bool:
        return NUMERIC_TYPES[self.name] is int


# Numeric hyperparameters, by type: the ones a range can be given for. ``seed`` is not one:
# tuning the seed only finds a lucky split.
NUMERIC_TYPES: dict[str, type] = {
    f.name: type(getattr(Hyperparameters(), f.name))
    for f in fields(Hyperparameters)
    if f.name != "seed" and isinstance(getattr(Hyperparameters(), f.name), int | float)
}

DEFAULT_RANGES: tuple[Range, ...] = (
    Range("learning_rate", 0.02, 0.3, Scale.LOGARITHMIC),
    Range("max_leaf_nodes", 8, 64),
    Range("min_samples_leaf", 5, 100),
    Range("l2_regularization", 0.0, 1.0),
)


def check(ranges: tuple[Range, ...]) -> list[str]:
    """Every problem with ``ranges``, each naming the hyperparameter; [] when usable."""
    problems = []
    for r in ranges:
        if r.name not in NUMERIC_TYPES:
            problems.append(
                f"{r.name}: not a tunable hyperparameter; use one of {', '.join(NUMERIC_TYPES)}"
            )
            continue
        if not (math.isfinite(r.low) and math.isfinite(r.high)):
            problems.append(f"{r.name}: min and max must be finite numbers")
            continue
        if not r.low < r.high:
            problems.append(f"{r.name}: min {r.low:g} must be below max {r.high:g}")
        if r.integer and (r.low != int(r.low) or r.high != int(r.high)):
            problems.append(f"{r.name}: an integer hyperparameter needs whole-number bounds")
        # SageMaker's API reference (IntegerParameterRange, ContinuousParameterRange):
        # logarithmic needs values above 0; reverse logarithmic is for continuous ranges
        # entirely within 0 <= x < 1.
        if r.scale == Scale.LOGARITHMIC and r.low <= 0:
            problems.append(f"{r.name}: a {r.scale} scale needs min above 0, got {r.low:g}")
        if r.scale == Scale.REVERSE_LOGARITHMIC:
            if r.integer:
                problems.append(f"{r.name}: an integer hyperparameter cannot use {r.scale}")
            elif not 0 <= r.low < r.high < 1:
                problems.append(f"{r.name}: a {r.scale} scale needs 0 <= min < max < 1")
        try:  # the bounds themselves must be values train.py accepts
            Hyperparameters(**{r.name: NUMERIC_TYPES[r.name](r.low)})
            Hyperparameters(**{r.name: NUMERIC_TYPES[r.name](r.high)})
        except ValueError as exc:
            problems.append(f"{r.name}: {exc}")
    return problems
