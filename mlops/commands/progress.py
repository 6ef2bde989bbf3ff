"""Progress of long stages: rich's live display on a terminal, plain lines anywhere else.

The lower layers (``training.local``, ``demo.traffic``, ``monitoring.drift``) only call
plain callbacks: a step's name as it starts, or counts. ``Display`` turns those into rich
progress rows. When the console is not a terminal (a pipe, a file, CI logs), a live
display would print nothing until it stops, or control codes: there each step becomes one
plain line and counts print nothing (the commands report their totals themselves).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

_STEP = "step"
_COUNT = "count"


class _CountBar(ProgressColumn):
    """A bar for counted tasks (pulsing while the total is unknown), nothing for steps."""

    def __init__(self) -> None:
        super().__init__()
        self.bar = BarColumn(bar_width=30)

    def render(self, task: Task) -> RenderableType:
        return self.bar.render(task) if task.fields.get("kind") == _COUNT else Text("")


class _CountText(ProgressColumn):
    """``120/300 requests``, or ``12,345 records`` while the total is unknown."""

    def render(self, task: Task) -> Text:
        if task.fields.get("kind") != _COUNT:
            return Text("")
        done = int(task.completed)
        shown = f"{done:,}" if task.total is None else f"{done:,}/{int(task.total):,}"
        return Text(f"{shown} {task.fields['unit']}", style="progress.download")


class Display:
    """Progress rows for one command; use as a context manager (it stops the live display).

    ``steps`` numbers known step names (``step 2/4: validate + split``). ``transient`` rows
    vanish when the display closes (the demo's notes report the outcome instead).
    """

    def __init__(
        self,
        console: Console,
        *,
        transient: bool = False,
        indent: str = "",
        steps: Sequence[str] = (),
    ) -> None:
        self.console = console
        self.transient = transient
        self.indent = indent
        self.steps = tuple(steps)
        # A live display only where the console is a terminal that can redraw lines.
        self.live = console.is_terminal and not console.is_dumb_terminal
        self._progress: Progress | None = None
        self._step: TaskID | None = None

    def __enter__(self) -> Display:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # A step that raised is left unticked.
        self.close(finished=exc_type is None)

    def label(self, name: str) -> str:
        if name in self.steps:
            return f"step {self.steps.index(name) + 1}/{len(self.steps)}: {name}"
        return name

    def step(self, name: str) -> None:
        """A step starts (and the one before it has finished): a StepHook."""
        if not self.live:
            self.console.print(
                f"{self.indent}{self.label(name)}", markup=False, highlight=False, soft_wrap=True
            )
            return
        progress = self._started()
        if self._step is not None:
            progress.update(self._step, completed=1)
        self._step = progress.add_task(self.label(name), total=1, kind=_STEP)

    def counter(self, label: str, unit: str) -> Callable[[int, int], None]:
        """A callback told (done, total). A count that starts again (done 0, or lower than
        before, or after the last reached its total) gets a new row: ``{n}`` in ``label``
        numbers them, e.g. ``traffic phase {n}``."""
        owner: Progress | None = None
        task = TaskID(0)
        rows = 0

        def update(done: int, total: int) -> None:
            nonlocal owner, task, rows
            if not self.live:
                return
            progress = self._started()
            current = _task(progress, task) if owner is progress else None
            if current is None or current.finished or done == 0 or done < current.completed:
                rows += 1
                description = label.format(n=rows)
                owner = progress
                task = progress.add_task(
                    description, total=total, completed=done, kind=_COUNT, unit=unit
                )
            else:
                progress.update(task, total=total, completed=done)

        return update

    def tally(self, label: str, unit: str) -> Callable[[int], None]:
        """A callback told how many were done so far, the total unknown (e.g. records read)."""
        owner: Progress | None = None
        task = TaskID(0)

        def update(done: int) -> None:
            nonlocal owner, task
            if not self.live:
                return
            progress = self._started()
            if owner is not progress:
                owner, task = progress, progress.add_task(label, total=None, kind=_COUNT, unit=unit)
            progress.update(task, completed=done)

        return update

    def close(self, *, finished: bool = True) -> None:
        """Stop the live display (a later callback starts a new one below what follows)."""
        if self._progress is None:
            return
        if finished and self._step is not None:
            self._progress.update(self._step, completed=1)
        self._progress.stop()
        self._progress = None
        self._step = None

    def _started(self) -> Progress:
        if self._progress is None:
            columns: list[ProgressColumn] = [
                SpinnerColumn(finished_text=Text("✓", style="green")),
                TextColumn("{task.description}"),
                _CountBar(),
                _CountText(),
                TimeElapsedColumn(),
            ]
            if self.indent:  # the demo's notes are indented: so are its progress rows
                columns.insert(0, TextColumn(self.indent))
            self._progress = Progress(*columns, console=self.console, transient=self.transient)
            self._progress.start()
        return self._progress


def _task(progress: Progress, task: TaskID) -> Task:
    return next(t for t in progress.tasks if t.id == task)
