"""``python -m agent``: run a study (the default command), list what there is, run a bench, write a report.

python -m agent --task toy-branin --strategy random --budget 10 --seed 0 --save_dir out/r
python -m agent tasks

The flags of running a study and of ``bench`` are defined once (:mod:`agent.flags`), their choices and help
from the registries, the flags and commands of tasks (CIFAR's training flags, ``train``) from the tasks; this
module knows no strategy, provider or task by name. A study is assembled by :func:`agent.session.run_study`.
What it prints goes to stdout; a closed stdout (``| head -1``) does not stop a study: one line on stderr says
so, and the study goes on quietly.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

import anyio
import optuna

from evaluators.base import Progress

from .conversation import AgentSettings
from .display import RichReporter, progress_text
from .errors import AgentError, ProviderError, UserError
from .flags import add_bench_arguments, add_run_arguments, canonical_spelling
from .optimize import StudySummary
from .providers import list_providers
from .providers.registry import DEFAULT_PROVIDER
from .session import ExecutorSettings, ModelSettings, StudyConfig, run_study
from .space import SearchSpace
from .strategies.registry import DEFAULT_STRATEGY, get_strategy, list_strategies
from .tasks import ENTRY_POINT_GROUP, build_task, list_tasks, resolve_tasks, task_commands

__all__ = ["build_parser", "main", "parse_budgets", "parse_strategies"]

_PROG = "python -m agent"
_LOGGER = "agent"
_LISTINGS = ("tasks", "strategies", "providers")


class _Parser(argparse.ArgumentParser):
    """A flag error is one line and a pointer to the help, not the usage text; a multi-word flag takes both
    spellings (``--learn_from``, ``--learn-from``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message}\nrun `{self.prog} --help` for the flags\n")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        given = sys.argv[1:] if args is None else list(args)
        known = self._option_string_actions  # argparse's table of every spelling it was given
        return super().parse_known_args([canonical_spelling(a, known) for a in given], namespace)


def _commands() -> dict[str, str]:
    """The commands besides running a study, with a line of help each."""
    out = {
        "tasks": "list the tasks",
        "strategies": "list the strategies",
        "providers": "list the model providers",
        "bench": "run strategies side by side on many tasks and seeds, then write a report",
        "report": "write the report of one study",
    }
    out.update({c.name: c.help for c in task_commands()})
    return out


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of ``command``; None: running a study (what ``python -m agent`` does)."""
    if command is None:
        listed = "\n".join(f"  {name:12} {text}" for name, text in _commands().items())
        parser = _Parser(
            prog=_PROG,
            description="Run or resume a study: an LLM agent, Bayesian optimization, random search or TPE tunes "
            "a task's hyperparameters. Re-running the same command resumes the study.",
            epilog=f"other commands (`{_PROG} COMMAND --help`):\n{listed}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        add_run_arguments(parser)
        return parser
    parser = _Parser(prog=f"{_PROG} {command}", description=_commands()[command])
    if command == "bench":
        parser.description = (
            "Run every (task, strategy, seed) study in one storage (resumable), then write OUT/report.md "
            "and OUT/plots/."
        )
        add_bench_arguments(parser)
    elif command == "report":
        parser.description = (
            "Write SAVE_DIR/report.md and SAVE_DIR/plots/ for one study: best-so-far plot, trials, and the "
            "conversation. Needs no provider."
        )
        parser.add_argument("--save_dir", required=True, help="the study's folder")
        parser.add_argument("--storage", default=None, help="storage URL (default: sqlite:///<save_dir>/study.db)")
        parser.add_argument("--study-name", default=None, help="the study, when the storage holds several")
    else:
        for task_command in task_commands():
            if task_command.name == command:
                parser.description = task_command.description
                task_command.add_arguments(parser)
    return parser


def parse_strategies(text: str) -> tuple[str, ...]:
    """Comma-separated strategy names, in order, without repeats; an unknown one is a ``UserError``."""
    chosen = tuple(dict.fromkeys(x.strip() for x in text.split(",") if x.strip()))
    if not chosen:
        raise UserError(f"--strategies {text!r}: name at least one strategy")
    for name in chosen:
        get_strategy(name, flag="--strategies")
    return chosen


def parse_budgets(text: str) -> tuple[int, ...]:
    try:
        budgets = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError as exc:
        raise UserError(f"--budget {text!r}: give positive integers separated by commas (10,30)") from exc
    if not budgets or budgets[0] < 1:
        raise UserError(f"--budget {text!r}: give positive integers separated by commas (10,30)")
    return tuple(budgets)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = args_list[0] if args_list and args_list[0] in _commands() else None
    if command is not None:
        args_list = args_list[1:]
    elif args_list and args_list[0] == "run":  # the explicit spelling of the default command
        args_list = args_list[1:]
    args = build_parser(command).parse_args(args_list)
    with _library_warnings_shown(), _stdout_may_close():
        return _main(command, args)


def _main(command: str | None, args: argparse.Namespace) -> int:
    try:
        if command in _LISTINGS:
            return _list(command)
        if command == "bench":
            return anyio.run(_bench, args)
        if command == "report":
            from .report import write_study_report

            print(f"report: {write_study_report(Path(args.save_dir), args.storage, args.study_name)}")
            return 0
        for task_command in task_commands():
            if task_command.name == command:
                return task_command.run(args, _epoch_lines)
        summary = anyio.run(_run, args)
        problem = summary.no_result()
        if problem is not None:  # a study that gave nothing to use is not a success, for a script either
            where = f" (each trial's reason is in {summary.save_dir / 'trials'})" if summary.save_dir else ""
            print(f"error: {problem}{where}", file=sys.stderr)
            return 1
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted: every finished trial is saved; run the same command again to resume.", file=sys.stderr)
        return 130
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ProviderError as exc:
        print(
            f"error: the model provider failed: {exc}\nFinished trials are saved; run the same command again "
            "to resume.",
            file=sys.stderr,
        )
        return 1
    except AgentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


class _ClosableStdout:
    """``sys.stdout`` while the CLI runs. When its reader goes away (``python -m agent ... | head -1``), writing
    fails with a broken pipe, and rich would end the program: instead one line on stderr says so, and from then
    on whatever is written goes to the null device; the study goes on and is saved as usual."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._reader_gone()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._reader_gone()

    def _reader_gone(self) -> None:
        self.gone = True
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, self._stream.fileno())  # what is left in the buffer, and the exit's flush, land there
        finally:
            os.close(null)
        print(
            "note: the output was closed (the reader of the pipe is gone); the study goes on without printing, and "
            "everything is saved as usual",
            file=sys.stderr,
            flush=True,
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def _stdout_may_close() -> Iterator[None]:
    """:class:`_ClosableStdout` for the length of a command; ``sys.stdout`` is put back after it."""
    before = sys.stdout
    sys.stdout = _ClosableStdout(before)
    try:
        yield
    finally:
        sys.stdout = before


class _CurrentStderr:
    """Whatever ``sys.stderr`` is when a line is written: the display's live area swaps it so that warnings
    print above the area instead of through it."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _OneLine(logging.Formatter):
    """``warning: provider_retry attempt=1 ...``, as the CLI's own ``error: ...`` lines."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


_WARNINGS = logging.StreamHandler(_CurrentStderr())
_WARNINGS.setFormatter(_OneLine())


@contextlib.contextmanager
def _library_warnings_shown() -> Iterator[None]:
    """The study's events go to events.jsonl; on the terminal only the agent's warnings (a retry, say) are worth
    showing, and none of Optuna's per-trial lines (our own display says the same). The application decides
    this, not the library (importing ``agent`` changes no logging setting); what it set is put back when
    :func:`main` returns, for a program that calls it."""
    agent_log = logging.getLogger(_LOGGER)
    before = (agent_log.level, agent_log.propagate, optuna.logging.get_verbosity())
    agent_log.setLevel(logging.WARNING)
    agent_log.addHandler(_WARNINGS)
    agent_log.propagate = False
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        agent_log.removeHandler(_WARNINGS)
        agent_log.setLevel(before[0])
        agent_log.propagate = before[1]
        optuna.logging.set_verbosity(before[2])


def _list(command: str) -> int:
    """``tasks``, ``strategies`` or ``providers``: a table on a terminal, plain ``name  summary`` lines in a pipe."""
    rows: list[tuple[str, ...]]
    if command == "tasks":
        header = ("task", "family", "what it is")
        rows = [(t.name, t.family, t.summary) for t in list_tasks()]
        caption = (
            f"--task also takes a task file of your own (.yaml, .yml, .json): README 'Tune your own training "
            f"script'. Packages add tasks under the entry-point group {ENTRY_POINT_GROUP}."
        )
    elif command == "strategies":
        header = ("strategy", "model", "what it does")
        rows = [
            (s.name, "yes" if s.needs_model else "no", s.summary + ("" if s.origin == "built-in" else f" ({s.origin})"))
            for s in list_strategies()
        ]
        caption = (
            f"--strategy NAME runs one (default: {DEFAULT_STRATEGY}). Packages add strategies under the entry-point "
            "group llm_hpo.strategies (README 'Adding a strategy')."
        )
    else:
        header = ("provider", "variables", "what it is")
        rows = [
            (p.name, ", ".join(p.variables), p.summary + ("" if p.origin == "built-in" else f" ({p.origin})"))
            for p in list_providers()
        ]
        caption = (
            f"--provider NAME or AGENT_PROVIDER chooses one (default: {DEFAULT_PROVIDER}); --model or AGENT_MODEL "
            "the model. Packages add providers under the entry-point group llm_hpo.providers."
        )
    if not sys.stdout.isatty():
        width = max(len(r[0]) for r in rows)
        for row in rows:
            print(f"{row[0]:{width}}  {row[-1]}")
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(*header, caption=caption)
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    return 0


async def _run(args: argparse.Namespace) -> StudySummary:
    strategy = "random" if args.random_hparams else (args.strategy or DEFAULT_STRATEGY)
    get_strategy(strategy)  # an unknown name fails before a task loads
    space = _space_file(args.search_space)
    options = vars(args)
    task = build_task(args.task, seed=args.seed, space=space, options=options)
    config = StudyConfig(
        task=task,
        strategy=strategy,
        budget=args.budget,
        seed=args.seed,
        save_dir=Path(args.save_dir) if args.save_dir else None,
        study_name=args.study_name,
        storage=args.storage,
        agent=AgentSettings(
            history=args.history,
            max_retries=args.max_retries,
            on_invalid=args.on_invalid,
            reject_repeats=not args.allow_repeats,
            temperature=args.temperature,
            max_tokens=args.max_tokens,
        ),
        prompts_dir=args.prompts_dir,
        model=ModelSettings(provider=args.provider, model=args.model, timeout_s=args.provider_timeout),
        executor=ExecutorSettings(
            kind=args.executor,
            workers=args.workers,
            address=args.ray_address,
            cpus_per_trial=args.cpus_per_trial,
            gpus_per_trial=args.gpus_per_trial,
        ),
        batch=args.batch,
        pruner=args.pruner,
        on_provider_error=args.on_provider_error,
        options=options,
        learn_from=tuple(args.learn_from),
        time_budget_s=args.time_budget,
    )
    with RichReporter(quiet=args.quiet, workers=args.workers, hint=task.duration_hint) as reporter:
        # What exists now (modules, the task's tables) lives as long as the run: keep the garbage collector
        # from rescanning it between the many small objects each trial makes.
        gc.freeze()
        return await run_study(config, reporter=reporter, progress=None if args.quiet else _epoch_lines)


def _space_file(path: str | None) -> SearchSpace | None:
    return SearchSpace.from_file(path) if path else None


def _epoch_lines(label: str) -> Callable[[Progress], None]:
    """A training's progress as one plain line per epoch, on stderr."""

    def line(progress: Progress) -> None:
        if progress.done == int(progress.done):
            print(f"{label} {progress_text(progress)}", file=sys.stderr, flush=True)

    return line


async def _bench(args: argparse.Namespace) -> int:
    from .bench import BenchConfig, run_bench
    from .report import write_bench_report

    config = BenchConfig(
        tasks=resolve_tasks(args.tasks),
        strategies=parse_strategies(args.strategies),
        budgets=parse_budgets(args.budget),
        seeds=args.seeds,
        out=Path(args.out),
        storage=args.storage,
        jobs=args.jobs,
        provider=args.provider,
        model=args.model,
        history=args.history,
        max_retries=args.max_retries,
        random_samples=args.random_samples,
        quiet=args.quiet,
        learn_from=tuple(args.learn_from),
        time_budget_s=args.time_budget,
    )
    result = await run_bench(config)
    for (task, strategy), found in sorted(result.learned_from().items()) if not config.quiet else ():
        for line, n in found.items():
            print(f"{task} {strategy} learned from {line} [{n}/{config.seeds} seeds]")
    print(f"report: {write_bench_report(result)}")
    return 0
