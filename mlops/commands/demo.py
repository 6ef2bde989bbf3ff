"""``mlops demo``: the model's whole lifecycle on a laptop, with moto standing in for AWS."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlops.commands.common import console, errors, fail

NOTE_INDENT = " " * 6


def demo(
    runs_root: Annotated[
        Path, typer.Option("--runs", help="Folder for run folders (one per run).")
    ] = Path("runs/demo"),
    phase_rows: Annotated[
        int, typer.Option(min=100, max=1500, help="Rows of traffic per phase.")
    ] = 1500,
) -> None:
    """The whole lifecycle on this machine, with moto as the AWS: train, register, gate,
    promote, serve, drift, alarm, retrain, promote again and swap without dropping a request."""
    from rich.table import Table

    from demo.lifecycle import STEPS, DemoError, DemoOptions, Lifecycle
    from mlops.commands.progress import Display
    from training.local import STEPS as TRAINING_STEPS

    # Training steps and requests sent, under the stage that runs them; on a terminal the
    # rows vanish when the stage's next line prints (the notes report the outcome).
    display = Display(console, transient=True, indent=NOTE_INDENT, steps=TRAINING_STEPS)

    def announce(number: int, name: str) -> None:
        display.close()
        console.print(f"[bold cyan][{number}/{len(STEPS)}][/] {name}")

    def note(text: str) -> None:
        display.close()
        console.print(f"{NOTE_INDENT}{text}", soft_wrap=True, markup=False, highlight=False)

    lifecycle = Lifecycle(
        DemoOptions(runs_root=runs_root, phase_rows=phase_rows),
        announce,
        note,
        on_step=display.step,
        on_sent=display.counter("traffic phase {n}", "requests"),
    )
    try:
        with display:
            result = lifecycle.run()
    except DemoError as exc:
        fail(f"the demo stopped at '{exc.step}': {exc.message}")
    except KeyboardInterrupt:
        errors.print("interrupted: the server and the embedded AWS are stopped")
        raise typer.Exit(code=130) from None
    table = Table(title="demo summary", show_header=False)
    for name, seconds in result.seconds.items():
        table.add_row(name, f"{seconds:.1f} s")
    table.add_row("total", f"{sum(result.seconds.values()):.1f} s")
    console.print(table)
    console.print(f"[green]done[/]: serving {result.served}; report {result.report}")
