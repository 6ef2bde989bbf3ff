"""What each hostile request costs the handler: CPU time and peak memory, per body.

Run with ``.venv/bin/python -m benchmarks.hostile`` (about 20 seconds with a trained model
in runs/local/model; otherwise it trains one first). Every body of ``HOSTILE_INPUTS``
(tests/serving_cases.py) goes through ``handler.transform`` in its own child process under
the OS limits tests/test_hostile_inputs.py asserts with (tests/bounded_handler.py), and the
table shows, per body: the answer, the child's CPU time, its peak resident set size, and
how much of that it grew beyond what it inherited from the loaded model. The tests assert
the answers; this records the costs, which tests may not assert on.

``PYTHONPATH=<dir with another inference/> python -m benchmarks.hostile`` measures another
copy of the handler (e.g. the one before issue 16) the same way; raise ``--cpu-seconds`` to
see how long the slow ones really take.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the shared request tables and the bounded runner

from bounded_handler import Outcome, Request, run_bounded  # noqa: E402
from serving_cases import HOSTILE_INPUTS  # noqa: E402

console = Console(width=150)
MIB = 2**20


def _rows_and_model(model_dir: Path | None, work: Path) -> tuple[pd.DataFrame, Path]:
    from benchmarks.serving import ensure_model
    from training import dataset as ds

    if model_dir is None:
        model_dir, rows = ensure_model(work)
        return rows, model_dir
    tests = sorted(model_dir.parent.glob("**/processed/test/*.csv"))
    if not tests:
        raise SystemExit(f"no processed/test/*.csv beside {model_dir}; omit --model-dir")
    return pd.read_csv(tests[0]).loc[:, list(ds.FEATURES)], model_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_model = REPO / "runs" / "local" / "model"
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=default_model if default_model.exists() else None,
        help="A trained model (default: runs/local/model, or train one).",
    )
    parser.add_argument("--cpu-seconds", type=int, default=5, help="RLIMIT_CPU per request.")
    parser.add_argument(
        "--extra-memory-mib", type=int, default=1536, help="RLIMIT_AS above the helper's own."
    )
    parser.add_argument("--only", default="", help="Only the bodies whose id contains this.")
    parser.add_argument("--json", type=Path, help="Also write the outcomes here.")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="mlops-hostile-") as scratch:
        rows, model_dir = _rows_and_model(args.model_dir, Path(scratch))
        requests = [
            Request(bad.id, bad.payload(rows), bad.content_type, bad.accept)
            for bad in HOSTILE_INPUTS
            if args.only in bad.id
        ]
        outcomes = run_bounded(
            model_dir,
            requests,
            cpu_seconds=args.cpu_seconds,
            extra_memory=args.extra_memory_mib * MIB,
        )
    report(requests, outcomes)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(o) for o in outcomes], indent=2) + "\n")
    return 0


def report(requests: list[Request], outcomes: list[Outcome]) -> None:
    table = Table(title="Hostile bodies through handler.transform, one limited child each")
    for column in ("body", "size", "answer", "CPU s", "peak RSS MiB", "grew MiB"):
        table.add_column(column, justify="left" if column in ("body", "answer") else "right")
    for request, outcome in zip(requests, outcomes, strict=True):
        answer = f"{outcome.status}: {outcome.message[:60]}"
        if outcome.message_chars > 60:
            answer += f"… ({outcome.message_chars} chars)"
        table.add_row(
            outcome.id,
            f"{len(request.body) / MIB:.2f} MiB",
            answer,
            f"{outcome.cpu_seconds:.3f}",
            f"{outcome.peak_rss_bytes / MIB:.0f}",
            f"{outcome.extra_rss_bytes / MIB:.0f}",
        )
    console.print(table)
    worst_cpu = max(outcomes, key=lambda o: o.cpu_seconds)
    worst_rss = max(outcomes, key=lambda o: o.extra_rss_bytes)
    refused = sum(1 for o in outcomes if o.status is not None and 400 <= o.status < 500)
    console.print(
        f"{len(outcomes)} hostile bodies, {refused} refused with a 4xx; worst CPU "
        f"{worst_cpu.cpu_seconds:.3f} s ({worst_cpu.id}); worst peak RSS "
        f"{worst_rss.peak_rss_bytes / MIB:.0f} MiB, {worst_rss.extra_rss_bytes / MIB:.0f} MiB "
        f"over the loaded model ({worst_rss.id})"
    )


if __name__ == "__main__":
    raise SystemExit(main())
