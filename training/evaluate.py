"""Evaluation entry point, run as a SageMaker Processing job or locally.

Loads the trained model (a model directory or SageMaker's ``model.tar.gz``), checks its
hash against the manifest before unpickling it, scores the test split, and writes into the
output folder:

- ``evaluation.json``: Model Monitor's model-quality format, for the pipeline's condition
  step and the registry's ``ModelMetrics.ModelQuality.Statistics``;
- ``bias/analysis.json``: Clarify's bias analysis of the test split for each ``--facet``
  (pre-training metrics of the labels, post-training metrics of the predicted labels at
  probability 0.5), for ``ModelMetrics.Bias``;
- ``explainability/analysis.json``: Clarify's explainability analysis (global SHAP values)
  of up to ``--explain-rows`` test rows, for ``ModelMetrics.Explainability``;
- ``model_card.json``: the model card (training.model_card);
- ``gates.json``: ``{"bias_violations": N, ...}``, the metrics over their ``--bias-limit``,
  for the pipeline's condition step.

A bias limit is a gate: see EXIT_CODES.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training import bias, explain, manifest, model_card, paths
from training.archive import extract_tar_gz
from training.features import split_xy
from training.hashing import sha256_files
from training.metrics import THRESHOLD, binary_classification_metrics, headline
from training.train import read_channel

EVALUATION_FILE = "evaluation.json"
BIAS_FILE = "bias/analysis.json"
EXPLAINABILITY_FILE = "explainability/analysis.json"
CARD_FILE = model_card.CARD_FILE
GATES_FILE = "gates.json"
# The key in gates.json the pipeline's condition step reads (JsonGet json_path).
BIAS_VIOLATIONS_KEY = "bias_violations"

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_INTEGRITY = 3
EXIT_BIAS = 4
EXIT_CODES = (
    "Exit codes: 0 evaluated; 2 bad arguments (an unknown facet column, say) or a model "
    "card that breaks its schema, nothing written; 3 the model "
    "file does not match its manifest, nothing written; 4 a bias metric is over its "
    "--bias-limit (everything is written, gates.json counts the violations; with "
    "--no-fail-on-bias that is exit 0, for pipelines whose condition step reads gates.json)."
)
DEFAULT_EXPLAIN_ROWS = explain.DEFAULT_EXPLAIN_ROWS
DEFAULT_BACKGROUND_ROWS = explain.DEFAULT_BACKGROUND_ROWS


class UsageError(Exception):
    """A caller mistake: exit code 2 with this message."""


@dataclass(frozen=True)
class Options:
    model: Path
    test_dir: Path
    output_dir: Path
    seed: int = 0
    facets: tuple[bias.Facet, ...] = ()
    limits: tuple[tuple[str, float], ...] = ()
    # 0 skips attributions.
    explain_rows: int = DEFAULT_EXPLAIN_ROWS
    background_rows: int = DEFAULT_BACKGROUND_ROWS
    fail_on_bias: bool = True
    provenance: model_card.Provenance = field(default_factory=model_card.Provenance)


@dataclass(frozen=True)
class Outcome:
    evaluation: dict[str, Any]
    violations: tuple[bias.BiasViolation, ...]
    written: tuple[str, ...]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="evaluate.py",
        description="Score the test split; write quality, bias, explainability and the card.",
        epilog=EXIT_CODES,
    )
    p.add_argument(
        "--model",
        type=Path,
        default=paths.processing_or_local("model", paths.LOCAL_ROOT / "model"),
        help="Model directory, model.tar.gz, or a folder holding model.tar.gz.",
    )
    p.add_argument(
        "--test-dir",
        "--test_dir",
        type=Path,
        default=paths.processing_or_local("test", paths.local_processed("test")),
    )
    p.add_argument(
        "--output-dir",
        "--output_dir",
        type=Path,
        default=paths.processing_or_local("evaluation", paths.LOCAL_ROOT / "evaluation"),
    )
    p.add_argument("--seed", type=int, default=0, help="Seed for resamples and row samples.")
    p.add_argument(
        "--facet",
        action="append",
        default=[],
        metavar="NAME=VALUE[,VALUE...]",
        help="A sensitive group for the bias metrics, e.g. international_plan=yes (repeatable).",
    )
    p.add_argument(
        "--bias-limit",
        action="append",
        default=[],
        metavar="METRIC=LIMIT",
        help=f"Largest deviation from fair a metric may show, e.g. DPPL=0.2 (repeatable; "
        f"metrics: {', '.join(bias.METRICS)}; DI's deviation is |DI - 1|).",
    )
    p.add_argument(
        "--fail-on-bias",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Exit 4 when a limit is exceeded (default); --no-fail-on-bias only records it.",
    )
    p.add_argument(
        "--explain-rows",
        type=int,
        default=DEFAULT_EXPLAIN_ROWS,
        help=f"Test rows to attribute with SHAP (default {DEFAULT_EXPLAIN_ROWS}; 0 skips).",
    )
    p.add_argument(
        "--background-rows",
        type=int,
        default=DEFAULT_BACKGROUND_ROWS,
        help=f"Rows SHAP's baseline is drawn from (default {DEFAULT_BACKGROUND_ROWS}).",
    )
    card = p.add_argument_group("model card", "Where things live, for the card's lineage.")
    card.add_argument("--model-name", default="churn")
    card.add_argument("--training-data", help="URI of the training data.")
    card.add_argument("--test-data", help="URI of the test split.")
    card.add_argument("--sourcedir", help="URI of the code bundle that trained the model.")
    card.add_argument("--image", help="Image URI the model trains and serves with.")
    card.add_argument("--model-artifact", help="URI of the model.tar.gz.")
    card.add_argument(
        "--risk-rating", default="Medium", choices=model_card.RISK_RATINGS, help="(Medium)"
    )
    return p


def parse_options(argv: list[str] | None) -> Options:
    args = parser().parse_args(argv)
    try:
        facets = tuple(bias.parse_facet(text) for text in args.facet)
        limits = dict(bias.parse_limit(text) for text in args.bias_limit)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.explain_rows < 0:
        raise UsageError(f"--explain-rows must be 0 or more, got {args.explain_rows}")
    if args.background_rows < 1:
        raise UsageError(f"--background-rows must be at least 1, got {args.background_rows}")
    return Options(
        model=args.model,
        test_dir=args.test_dir,
        output_dir=args.output_dir,
        seed=args.seed,
        facets=facets,
        limits=tuple(sorted(limits.items())),
        explain_rows=args.explain_rows,
        background_rows=args.background_rows,
        fail_on_bias=args.fail_on_bias,
        provenance=model_card.Provenance(
            model_name=args.model_name,
            training_data=args.training_data,
            test_data=args.test_data,
            sourcedir=args.sourcedir,
            image=args.image,
            model_artifact=args.model_artifact,
            risk_rating=args.risk_rating,
        ),
    )


def _log(message: str) -> None:
    print(message, flush=True)


def _model_dir(model: Path, scratch: Path) -> Path:
    archive = model / "model.tar.gz" if model.is_dir() else model
    if archive.is_file():
        return extract_tar_gz(archive, scratch)
    return model


def run(options: Options, log: Callable[[str], None] = _log) -> Outcome:
    """Everything but the exit code; raises ModelIntegrityError, UsageError."""
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = _model_dir(options.model, Path(scratch))
        pipeline = manifest.load_verified_model(model_dir)
        described = manifest.read(model_dir)
    test, test_files = read_channel(options.test_dir)
    x_test, y_test = split_xy(test)
    scores = pipeline.predict_proba(x_test)[:, 1]
    evaluation = binary_classification_metrics(y_test, scores, seed=options.seed)
    predicted = (scores >= THRESHOLD).astype(np.int64)
    try:
        analysis = bias.analysis(x_test, y_test, predicted, options.facets)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    violations = tuple(bias.violations(analysis, dict(options.limits)))
    attributions = _explain(pipeline, x_test, options, log)

    results = model_card.Results(
        evaluation=evaluation,
        bias=analysis,
        explainability=attributions,
        test_sha256=sha256_files(test_files, options.test_dir),
    )
    card = model_card.build(described, results, options.provenance)
    if model_card.can_validate():
        model_card.validate(card)
    else:
        log("model card not validated here (no jsonschema or schema file); promotion checks it")

    documents: dict[str, Any] = {
        EVALUATION_FILE: evaluation,
        BIAS_FILE: analysis,
        CARD_FILE: card,
        GATES_FILE: _gates(violations, options.limits),
    }
    if attributions is not None:
        documents[EXPLAINABILITY_FILE] = attributions
    texts = {}
    for name, document in documents.items():
        try:
            # Strict JSON: SageMaker's readers and the condition step reject NaN.
            texts[name] = json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n"
        except ValueError as exc:
            raise UsageError(f"{name} would not be strict JSON: {exc}") from None
    written = []
    for name, text in texts.items():
        target = options.output_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        written.append(str(target))
    return Outcome(evaluation, violations, tuple(written))


def _explain(
    pipeline: Any, features: pd.DataFrame, options: Options, log: Callable[[str], None]
) -> dict[str, Any] | None:
    if options.explain_rows == 0:
        return None
    rows = features.sample(
        n=min(options.explain_rows, len(features)), random_state=options.seed
    ).reset_index(drop=True)
    began = time.perf_counter()
    document: dict[str, Any] = explain.explain(
        pipeline, rows, background_rows=options.background_rows, seed=options.seed
    )
    log(f"attributions for {len(rows)} rows in {time.perf_counter() - began:.1f}s")
    return document


def _gates(
    violations: tuple[bias.BiasViolation, ...], limits: tuple[tuple[str, float], ...]
) -> dict[str, Any]:
    return {
        BIAS_VIOLATIONS_KEY: len(violations),
        "bias_limits": dict(limits),
        "violations": [str(v) for v in violations],
    }


def evaluate(model: Path, test_dir: Path, output_dir: Path, seed: int) -> dict[str, Any]:
    """evaluation.json's content, with every other output written next to it (no facets)."""
    return run(Options(model=model, test_dir=test_dir, output_dir=output_dir, seed=seed)).evaluation


def report(outcome: Outcome, limits: Mapping[str, float]) -> list[str]:
    """The job's closing lines: the metrics the training job's regexes read, then bias."""
    lines = [f"test:{name}={value:.6f};" for name, value in headline(outcome.evaluation).items()]
    if outcome.violations:
        lines.append(f"bias: {len(outcome.violations)} metric(s) over their limit:")
        lines.extend(f"  {v}" for v in outcome.violations)
    elif limits:
        lines.append(f"bias: every metric within its limit ({', '.join(sorted(limits))})")
    return lines


def main(argv: list[str] | None = None) -> int:
    try:
        options = parse_options(argv)
        outcome = run(options)
    except manifest.ModelIntegrityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INTEGRITY
    except (UsageError, model_card.CardError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for line in report(outcome, dict(options.limits)):
        print(line)
    if outcome.violations and options.fail_on_bias:
        print(
            f"error: {len(outcome.violations)} bias metric(s) over their limit; see "
            f"{options.output_dir / GATES_FILE}",
            file=sys.stderr,
        )
        return EXIT_BIAS
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
