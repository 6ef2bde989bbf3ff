"""Hyperparameter search on this machine: what the pipeline's Tune step does, with Optuna.

Both search the same ranges (training.search_space) for the same objective: the validation
metric train.py reports, on the train/validation split process.py makes. SageMaker runs a
Bayesian search; here Optuna's TPE sampler, seeded, so a seed gives the same trials. The
hyperparameters' defaults are scored first as trial 0: the baseline every other trial is
compared against, and the result is never worse than it (ties go to the earlier trial).

There is no pruner: train.py's model reports its metric once, after fitting (the boosting
has no validation-based early stopping), so a trial has no intermediate values to judge.
Early stopping is SageMaker-only (the Tune step's ``TrainingJobEarlyStoppingType``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from training.features import Hyperparameters, build_pipeline, split_xy
from training.metric_names import METRIC_KEYS
from training.metrics import binary_classification_metrics, headline
from training.search_space import Range, Scale, check

BASELINE_TRIAL = 0


@dataclass(frozen=True)
class Split:
    """The data a trial fits on and is scored on."""

    train: pd.DataFrame
    validation: pd.DataFrame

    @classmethod
    def read(cls, processed: Path) -> Split:
        """The ``train`` and ``validation`` folders process.py wrote, read as train.py does."""
        from training.train import read_channel

        return cls(read_channel(processed / "train")[0], read_channel(processed / "validation")[0])


@dataclass(frozen=True)
class Trial:
    number: int
    hyperparameters: Hyperparameters
    # The objective on the validation split; nan when the metric was undefined there.
    score: float
    seconds: float


@dataclass(frozen=True)
class TuneResult:
    metric: str
    # The searched hyperparameters' names, in range order.
    tuned: tuple[str, ...]
    best: Trial
    default_score: float
    trials: int
    seconds: float
    history: tuple[Trial, ...]

    @property
    def best_params(self) -> dict[str, float | int]:
        return {name: getattr(self.best.hyperparameters, name) for name in self.tuned}

    @property
    def best_score(self) -> float:
        return self.best.score

    @property
    def gain(self) -> float:
        return self.best_score - self.default_score

    def as_json(self) -> dict[str, Any]:
        return {
            "objective": f"validation:{self.metric}",
            "trials": self.trials,
            "seconds": round(self.seconds, 3),
            "best_trial": self.best.number,
            "best_params": self.best_params,
            "best_score": self.best_score,
            "default_score": self.default_score,
            "gain": self.gain,
            "best_hyperparameters": vars(self.best.hyperparameters),
            "history": [
                {
                    "trial": t.number,
                    "params": {name: getattr(t.hyperparameters, name) for name in self.tuned},
                    # JSON has no NaN: a failed trial's score is null.
                    "score": t.score if math.isfinite(t.score) else None,
                    "seconds": round(t.seconds, 3),
                }
                for t in self.history
            ],
        }


TrialHook = Callable[[Trial], Any]


def tune(
    data: Split,
    ranges: tuple[Range, ...],
    metric: str,
    trials: int,
    seed: int,
    progress: TrialHook | None = None,
    *,
    defaults: Hyperparameters | None = None,
) -> TuneResult:
    """Search ``ranges`` for ``trials`` trials (the defaults first) maximising ``metric``.

    ``progress`` is told each trial as it ends. Hyperparameters without a range keep their
    value in ``defaults`` (``seed`` included, so the model's randomness is the seed's too).
    Raises ValueError naming the problem for unusable ranges, metric or trial count.
    """
    defaults = replace(defaults or Hyperparameters(), seed=seed)
    _check_arguments(ranges, metric, trials)
    started = time.perf_counter()
    # TPE's own seed: the same seed proposes the same hyperparameters, trial by trial.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    history = [_run(BASELINE_TRIAL, defaults, data, metric, progress)]
    baseline_params = {_param_name(r): _encoded(r, getattr(defaults, r.name)) for r in ranges}
    if all(_within(r, getattr(defaults, r.name)) for r in ranges) and math.isfinite(
        history[0].score
    ):
        # The sampler learns from the baseline as from any trial it proposed.
        study.add_trial(
            optuna.trial.create_trial(
                params=baseline_params,
                distributions={_param_name(r): _distribution(r) for r in ranges},
                value=history[0].score,
            )
        )
    for number in range(1, trials):
        asked = study.ask()
        suggested: dict[str, Any] = {r.name: _suggest(asked, r) for r in ranges}
        hp = replace(defaults, **suggested)
        trial = _run(number, hp, data, metric, progress)
        if math.isfinite(trial.score):
            study.tell(asked, trial.score)
        else:
            study.tell(asked, state=optuna.trial.TrialState.FAIL)
        history.append(trial)
    scored = [t for t in history if math.isfinite(t.score)]
    if not scored:
        raise ValueError(
            f"validation:{metric} was undefined in every trial; check the validation split"
        )
    best = max(scored, key=lambda t: (t.score, -t.number))
    return TuneResult(
        metric=metric,
        tuned=tuple(r.name for r in ranges),
        best=best,
        default_score=history[0].score,
        trials=len(history),
        seconds=time.perf_counter() - started,
        history=tuple(history),
    )


def _check_arguments(ranges: tuple[Range, ...], metric: str, trials: int) -> None:
    if trials < 1:
        raise ValueError(f"trials must be at least 1, got {trials}")
    if metric not in METRIC_KEYS:
        raise ValueError(f"unknown metric {metric!r}; use one of {', '.join(METRIC_KEYS)}")
    if not ranges:
        raise ValueError("no ranges to search; give at least one")
    names = [r.name for r in ranges]
    repeated = sorted({n for n in names if names.count(n) > 1})
    problems = [f"{n}: given more than one range" for n in repeated] + check(ranges)
    if problems:
        raise ValueError("; ".join(problems))


def score(hp: Hyperparameters, data: Split, metric: str) -> float:
    """The objective: train.py's fit and its validation metric (training.train.train)."""
    model = build_pipeline(hp)
    x_train, y_train = split_xy(data.train)
    # One OpenMP thread: on a few thousand rows the boosting's threads mostly wait on each
    # other, and on a busy machine they spin (a 600-row fit took 12x longer with two cores
    # shared by other work). The fitted model does not depend on the thread count.
    with threadpool_limits(limits=1, user_api="openmp"):
        model.fit(x_train, y_train)
    x_val, y_val = split_xy(data.validation)
    try:
        report = binary_classification_metrics(
            y_val, model.predict_proba(x_val)[:, 1], seed=hp.seed
        )
    except ValueError:  # one class only: no AUC, no rates
        return math.nan
    return headline(report)[metric]


def _run(
    number: int, hp: Hyperparameters, data: Split, metric: str, progress: TrialHook | None
) -> Trial:
    started = time.perf_counter()
    trial = Trial(number, hp, score(hp, data, metric), time.perf_counter() - started)
    if progress is not None:
        progress(trial)
    return trial


# Optuna has no reverse-logarithmic scale (SageMaker's, for values near 1): such a range
# is searched as 1 - x on a logarithmic one, under this name.
def _param_name(r: Range) -> str:
    return f"1-{r.name}" if r.scale == Scale.REVERSE_LOGARITHMIC else r.name


def _encoded(r: Range, value: float) -> float:
    return 1 - value if r.scale == Scale.REVERSE_LOGARITHMIC else value


def _within(r: Range, value: float) -> bool:
    return r.low <= value <= r.high


def _distribution(r: Range) -> optuna.distributions.BaseDistribution:
    # Auto is SageMaker's choice of scale; searched linearly here.
    log = r.scale == Scale.LOGARITHMIC
    if r.integer:
        return optuna.distributions.IntDistribution(int(r.low), int(r.high), log=log)
    if r.scale == Scale.REVERSE_LOGARITHMIC:
        return optuna.distributions.FloatDistribution(1 - r.high, 1 - r.low, log=True)
    return optuna.distributions.FloatDistribution(r.low, r.high, log=log)


def _suggest(trial: optuna.Trial, r: Range) -> float | int:
    log = r.scale == Scale.LOGARITHMIC
    if r.integer:
        return trial.suggest_int(r.name, int(r.low), int(r.high), log=log)
    if r.scale == Scale.REVERSE_LOGARITHMIC:
        value = 1 - trial.suggest_float(_param_name(r), 1 - r.high, 1 - r.low, log=True)
        return min(max(value, r.low), r.high)  # 1 - (1 - x) may round past a bound
    return trial.suggest_float(r.name, r.low, r.high, log=log)
