"""The display of a bench: many studies, one line each.

On a terminal a live area shows each running study (trial j/B, best so far, elapsed) and the bench (studies
k/N, elapsed, time left); each finished study leaves one line. Elsewhere plain lines: one per finished study,
and for a study running long at most one every ``plain_interval_s``. ``quiet``: nothing. Studies may run in
worker threads (``bench --jobs``): every method takes the one lock.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..optimize import Reporter
from ..records import TrialRecord
from ._format import duration, study_time_left
from ._live import LiveArea

__all__ = ["BenchDisplay"]


@dataclass
class _Study:
    name: str
    started: float
    budget: int = 0
    done: int = 0
    best: float | None = None
    last_line: float = field(default_factory=time.monotonic)

    def text(self, now: float) -> str:
        best = f", best {self.best:.6g}" if self.best is not None else ""
        return f"{self.name}: trial {self.done}/{self.budget}{best}, {duration(now - self.started)}"


class BenchDisplay(LiveArea):
    """``total`` studies to run, ``jobs`` at a time."""

    def __init__(
        self,
        total: int,
        *,
        jobs: int = 1,
        quiet: bool = False,
        console: Console | None = None,
        live: bool | None = None,
        plain_interval_s: float = 30.0,
    ) -> None:
        self.console = console or Console(highlight=False)
        self.total, self.jobs, self.quiet = total, jobs, quiet
        self.live = (self.console.is_terminal if live is None else live) and not quiet
        self.plain_interval_s = plain_interval_s
        self.count = 0
        self._started = time.monotonic()
        self._durations: list[float] = []
        self._running: dict[str, _Study] = {}
        super().__init__()
        if self.live and total:
            self._live = Live(get_renderable=self._render, console=self.console, refresh_per_second=4, transient=True)
            self._live.start()

    def study(self, name: str) -> Reporter:
        """The reporter of study ``name``, which starts now."""
        with self._lock:
            self._running[name] = _Study(name, time.monotonic())
        return _StudyReporter(self, name)

    def done(self, name: str, best: float | None, seconds: float) -> None:
        with self._lock:
            self.count += 1
            self._running.pop(name, None)
            self._durations.append(seconds)
            count = self.count
        if not self.quiet:
            shown = f"{best:.6g}" if best is not None else "none"
            self.console.print(f"[{count}/{self.total}] {escape(name)}: best {shown} ({seconds:.1f} s)", markup=False)

    def _update(
        self, name: str, budget: int | None = None, done: int | None = None, record: TrialRecord | None = None
    ) -> None:
        line = None
        with self._lock:
            study = self._running.get(name)
            if study is None:
                return
            if budget is not None:
                study.budget = budget
            if done is not None:
                study.done = done
            if record is not None:
                study.done += 1
            now = time.monotonic()
            if not self.live and not self.quiet and now - study.last_line >= self.plain_interval_s:
                study.last_line = now
                line = f"  {study.text(now)}"
        if line is not None:
            self.console.print(line, markup=False)

    def _best(self, name: str, best: TrialRecord | None) -> None:
        with self._lock:
            study = self._running.get(name)
            if study is not None and best is not None:
                study.best = best.value

    def _render(self) -> RenderableType:
        with self._lock:
            now = time.monotonic()
            grid = Table.grid()
            for study in self._running.values():
                grid.add_row(Text(study.text(now), no_wrap=True, overflow="ellipsis"))
            left = study_time_left(
                remaining=self.total - self.count,
                durations=self._durations,
                running=[(now - s.started, None) for s in self._running.values()],
                workers=self.jobs,
            )
            tail = f", ~{duration(left)} left" if left is not None else ""
            line = f"bench: {self.count}/{self.total} studies, {duration(now - self._started)} elapsed{tail}"
            return Group(grid, Text(line, style="bold"))


class _StudyReporter(Reporter):
    """Feeds one study's progress to its bench's display."""

    def __init__(self, display: BenchDisplay, name: str) -> None:
        self.display, self.name = display, name

    def started(
        self, *, study: str, budget: int, done: int, setup_failures: int = 0, learned_from: Sequence[str] = ()
    ) -> None:
        self.display._update(self.name, budget=budget, done=done)

    def trial_finished(self, record: TrialRecord, best: TrialRecord | None) -> None:
        self.display._best(self.name, best)
        self.display._update(self.name, record=record)
