"""The terminal display of a running study (rich): round, best so far, current proposal, final summary."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from .optimize import Reporter, StudySummary
from .records import TrialRecord, compact_config
from .space import Choice

__all__ = ["RichReporter"]


class RichReporter(Reporter):
    """Prints one line per trial and a summary; stays quiet about the LLM's words (see events.jsonl)."""

    def __init__(self, console: Console | None = None, *, quiet: bool = False) -> None:
        self.console = console or Console(highlight=False)
        self.quiet = quiet
        self.budget = 0

    def started(self, *, study: str, budget: int, done: int) -> None:
        self.budget = budget
        if self.quiet:
            return
        verb = "resuming" if done else "starting"
        self.console.print(f"[bold]{verb}[/] study [cyan]{study}[/]: {done}/{budget} trials done")

    def proposing(self, number: int) -> None:
        if self.console.is_terminal and not self.quiet:
            self.console.print(f"[dim]trial #{number}: choosing a configuration...[/]", end="\r")

    def trial_started(self, number: int, config: dict[str, Choice], source: str) -> None:
        if self.quiet:
            return
        tag = f" [yellow]({source})[/]" if source not in ("llm", "sampler", "surrogate") else ""
        self.console.print(f"trial #{number}{tag}: {json.dumps(compact_config(config))}", end=" ", soft_wrap=True)

    def trial_finished(self, record: TrialRecord, best: TrialRecord | None) -> None:
        if self.quiet:
            return
        if record.state == "complete":
            outcome = f"-> [green]{record.value:.6g}[/]"
        elif record.state == "pruned":
            outcome = "-> [yellow]pruned[/]"
        else:
            outcome = f"-> [red]failed[/] ({record.error})"
        best_text = f"  best {best.value:.6g} (#{best.number})" if best and best.value is not None else ""
        self.console.print(f"{outcome}[dim]{best_text}[/]", soft_wrap=True)

    def finished(self, summary: StudySummary) -> None:
        table = Table(show_header=False, box=None, padding=(0, 1))
        table.add_row("trials", f"{summary.n_trials} ({summary.n_new} in this run)")
        if summary.best is not None and summary.best.value is not None:
            table.add_row("best value", f"[bold green]{summary.best.value:.6g}[/] (trial #{summary.best.number})")
            table.add_row("best configuration", json.dumps(compact_config(summary.best.config)))
        else:
            table.add_row("best value", "[red]no trial completed[/]")
        if summary.llm_calls:
            table.add_row(
                "LLM usage",
                f"{summary.llm_calls} calls, {summary.prompt_tokens + summary.completion_tokens} tokens "
                f"({summary.prompt_tokens} prompt, {summary.completion_tokens} completion), "
                f"{summary.llm_seconds:.1f} s, {summary.reasks} reasks, {summary.fallbacks} rounds without the model",
            )
        self.console.print(table)
