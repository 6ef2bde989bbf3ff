"""Progress of long stages: the callbacks the lower layers call, and how they are shown.

The lower layers (training.local, demo.traffic, monitoring.drift) report through plain
callbacks; mlops.commands.progress draws them with rich on a terminal and prints plain
lines (steps only) anywhere else.
"""

from __future__ import annotations

import io
import itertools
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from demo import traffic
from demo.lifecycle import DemoOptions, Lifecycle
from mlops.cli import app
from mlops.commands.progress import Display
from monitoring import drift
from training import dataset as ds
from training import local

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 shipped rows (the contract's minimum is 500): every step, in a couple of seconds."""
    path = tmp_path_factory.mktemp("raw") / "small.csv"
    ds.load_shipped().sample(600, random_state=0).to_csv(path, index=False)
    return path


class _Ok(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    """An HTTP server that answers every POST with 200: what traffic.send needs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _counts_up_to(calls: list[tuple[int, int]], total: int) -> None:
    assert calls == [(done, total) for done in range(total + 1)]


# --- the lower layers' callbacks ------------------------------------------------------------


def test_training_reports_every_step_in_order(tmp_path: Path, small_csv: Path) -> None:
    started: list[str] = []
    run = local.run(tmp_path / "run", raw_csv=small_csv, on_step=started.append)
    assert started == list(local.STEPS)
    assert list(run.seconds) == list(local.STEPS)
    assert (run.model_dir / "model.joblib").is_file()


def test_training_reports_up_to_the_step_that_rejects_the_data(tmp_path: Path) -> None:
    from training.contract import DataValidationError

    bad = tmp_path / "bad.csv"
    ds.load_shipped().drop(columns=["state"]).to_csv(bad, index=False)
    started: list[str] = []
    with pytest.raises(DataValidationError):
        local.run(tmp_path / "run", raw_csv=bad, on_step=started.append)
    assert started == ["ingest", "validate + split"]


def test_traffic_reports_requests_sent_up_to_the_total(endpoint: str) -> None:
    bodies = traffic.batches(ds.load_shipped().head(23), 5)
    calls: list[tuple[int, int]] = []
    result = traffic.send(
        endpoint, bodies, progress=lambda done, total: calls.append((done, total))
    )
    assert result.sent == len(bodies) == 5
    assert result.failed == 0
    _counts_up_to(calls, len(bodies))


@pytest.fixture
def refusing_url() -> str:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # closed again: every request is refused


def test_traffic_counts_failed_requests_as_sent(refusing_url: str) -> None:
    calls: list[tuple[int, int]] = []
    result = traffic.send(refusing_url, ["a,b\n"] * 3, progress=lambda d, t: calls.append((d, t)))
    assert result.failed == result.sent == 3
    _counts_up_to(calls, 3)


def _drift_options(root: Path) -> drift.Options:
    from benchmarks.drift import END

    return drift.Options(
        capture=str(root / "capture"),
        baseline=str(root / "baseline.json"),
        output=str(root / "out"),
        window_hours=24,
        end=END,
        psi_threshold=0.2,
        ks_alpha=0.01,
        namespace=None,
        endpoint_name=None,
        publish=False,
        region=None,
        endpoint_url=None,
    )


@pytest.fixture(scope="module")
def capture_day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A day of synthetic capture (the drift benchmark's), 12,345 records with malformed ones."""
    from benchmarks.drift import generate

    root = tmp_path_factory.mktemp("drift")
    generate(root, 12_345)
    return root


def test_drift_reports_records_read_increasing_to_the_total(capture_day: Path) -> None:
    read: list[int] = []
    report = drift.run(_drift_options(capture_day), log=lambda _: None, progress=read.append)

    assert report.counts.lines == 12_345
    assert read[0] == 0 and read[-1] == report.counts.lines
    assert all(a < b for a, b in itertools.pairwise(read))
    # Throttled: one call per PROGRESS_EVERY_RECORDS records, not one per record.
    every = drift.PROGRESS_EVERY_RECORDS
    assert read[1:-1] == list(range(every, report.counts.lines, every))


def test_drift_progress_changes_nothing_in_the_report(capture_day: Path) -> None:
    quiet = drift.run(_drift_options(capture_day), log=lambda _: None)
    watched = drift.run(_drift_options(capture_day), log=lambda _: None, progress=lambda _: None)
    assert watched.counts == quiet.counts
    assert watched.drift_score == quiet.drift_score
    assert watched.drifted == quiet.drifted


def test_drift_main_passes_progress_through(capture_day: Path) -> None:
    read: list[int] = []
    argv = ["--capture", str(capture_day / "capture"), "--baseline"]
    argv += [str(capture_day / "baseline.json"), "--output", str(capture_day / "main")]
    argv += ["--end", _drift_options(capture_day).end.isoformat()]
    assert drift.main(argv, progress=read.append) == drift.EXIT_OK
    assert read[0] == 0 and read[-1] == 12_345


def test_an_empty_window_reports_zero_once(tmp_path: Path, capture_day: Path) -> None:
    options = _drift_options(capture_day)
    later = drift.Options(**{**options.__dict__, "end": options.end + timedelta(days=30)})
    read: list[int] = []
    report = drift.run(later, log=lambda _: None, progress=read.append)
    assert report.counts.lines == 0
    assert read == [0]


def test_the_demo_passes_its_callbacks_to_training_and_traffic(
    tmp_path: Path, small_csv: Path, endpoint: str
) -> None:
    steps: list[str] = []
    sent: list[tuple[int, int]] = []
    lifecycle = Lifecycle(
        DemoOptions(runs_root=tmp_path, phase_rows=20),
        announce=lambda number, name: None,
        note=lambda text: None,
        on_step=steps.append,
        on_sent=lambda done, total: sent.append((done, total)),
    )
    run = lifecycle._train_quietly("v1", small_csv)
    assert steps == list(local.STEPS)

    held_out = lifecycle._held_out(run.run_dir)
    lifecycle._traffic(endpoint, held_out)
    bodies = len(traffic.batches(held_out, lifecycle.options.batch_rows))
    assert bodies == 4
    phase = [(done, bodies) for done in range(bodies + 1)]
    assert sent == phase * 3  # normal, concept drift, then drifted
    result = lifecycle.result
    assert result.normal.sent == result.concept.sent == result.drifted.sent == bodies


def test_lower_layers_do_not_import_rich_or_the_cli() -> None:
    """They run inside SageMaker's containers, where rich is not installed: hide it."""
    code = (
        "import sys\n"
        "sys.modules['rich'] = None  # import rich now raises ImportError\n"
        "import monitoring.drift, monitoring.capture, training.local\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'mlops', 'demo')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "['rich']"  # only the blocked entry itself


# --- the display ------------------------------------------------------------------------------


def _exercise(display: Display) -> None:
    with display:
        display.step("a")
        display.step("b")
        sent = display.counter("phase {n}", "requests")
        for _ in range(2):  # two phases: each starts again at 0
            for done in range(4):
                sent(done, 3)
        read = display.tally("reading", "records")
        read(0)
        read(12_345)


def test_a_non_terminal_gets_plain_step_lines_and_nothing_for_counts() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=100)
    assert not console.is_terminal
    _exercise(Display(console, indent="  ", steps=("a", "b")))
    assert buffer.getvalue() == "  step 1/2: a\n  step 2/2: b\n"


def test_a_terminal_gets_a_row_per_step_and_per_count() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=120, force_terminal=True, color_system=None)
    _exercise(Display(console, steps=("a", "b")))
    output = buffer.getvalue()
    # The last frame, drawn as the display stops (rows stay: not transient).
    final = output[output.rindex("step 1/2") :]
    rows = [" ".join(line.split()) for line in final.splitlines() if line.strip()]
    assert rows[0].startswith("step 1/2: a")
    assert rows[1].startswith("✓ step 2/2: b")
    assert "phase 1 ━" in rows[2] and "3/3 requests" in rows[2]
    assert "phase 2 ━" in rows[3] and "3/3 requests" in rows[3]
    assert "reading" in rows[4] and "12,345 records" in rows[4]


def test_a_step_that_raised_is_not_ticked() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=100, force_terminal=True, color_system=None)

    def fail_in_step_b() -> None:
        with Display(console, steps=("a", "b")) as display:
            display.step("a")
            display.step("b")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail_in_step_b()
    output = buffer.getvalue()
    final = output[output.rindex("step 1/2") :]
    assert "✓ step 2/2" not in final
    assert "step 2/2: b" in final


def test_the_demo_command_shows_training_steps_under_their_stage(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The CLI hands the lifecycle its display's callbacks (the lifecycle itself is faked)."""
    import demo.lifecycle

    class FakeLifecycle:
        def __init__(self, options: DemoOptions, announce: Any, note: Any, **hooks: Any) -> None:
            self.announce, self.note, self.hooks = announce, note, hooks

        def run(self) -> Any:
            self.announce(2, "ingest, validate, train, evaluate")
            for name in local.STEPS:
                self.hooks["on_step"](name)
            self.note("v1: trained")
            self.announce(5, "traffic: normal, concept drift, data drift")
            for done in range(3):
                self.hooks["on_sent"](done, 2)
            self.note("normal: 2 requests")
            return SimpleNamespace(seconds={"x": 1.0}, served="version 1", report=tmp_path)

    monkeypatch.setattr(demo.lifecycle, "Lifecycle", FakeLifecycle)
    result = CliRunner().invoke(app, ["demo", "--runs", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = lines.index("[2/10] ingest, validate, train, evaluate")
    assert lines[start + 1 : start + 6] == [
        "      step 1/4: ingest",
        "      step 2/4: validate + split",
        "      step 3/4: train",
        "      step 4/4: evaluate",
        "      v1: trained",
    ]
    # Not a terminal: the requests sent print nothing (the note reports them).
    start = lines.index("[5/10] traffic: normal, concept drift, data drift")
    assert lines[start + 1] == "      normal: 2 requests"
