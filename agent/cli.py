"""``python -m agent``: run a study (the default command), list what there is, run a bench, write a report.

python -m agent --task toy-branin --strategy random --budget 10 --seed 0 --save_dir out/r
python -m agent tasks

The choices and help of ``--strategy`` and ``--provider`` come from their registries, the flags and commands
of tasks (CIFAR's training flags, ``train``) from the tasks; this module knows no strategy, provider or task
by name. A study is assembled by :func:`agent.session.run_study`.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NoReturn

import anyio
import optuna

from evaluators.base import Progress

from .conversation import AgentSettings
from .display import RichReporter, progress_text
from .errors import AgentError, ProviderError, UserError
from .optimize import StudySummary
from .providers import list_providers
from .providers.registry import DEFAULT_PROVIDER
from .session import ExecutorSettings, ModelSettings, StudyConfig, run_study
from .space import SearchSpace
from .strategies.registry import DEFAULT_STRATEGY, get_strategy, list_strategies
from .tasks import ENTRY_POINT_GROUP, build_task, list_tasks, resolve_tasks, task_commands, task_flags

__all__ = ["build_parser", "main", "parse_budgets", "parse_strategies"]

_PROG = "python -m agent"
_LOGGER = "agent"
_LISTINGS = ("tasks", "strategies", "providers")


class _Parser(argparse.ArgumentParser):
    """A flag error is one line and a pointer to the help, not the usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message}\nrun `{self.prog} --help` for the flags\n")


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
        parser.add_argument("--save_dir", "--save-dir", dest="save_dir", required=True, help="the study's folder")
        parser.add_argument("--storage", default=None, help="storage URL (default: sqlite:///<save_dir>/study.db)")
        parser.add_argument("--study-name", default=None, help="the study, when the storage holds several")
    else:
        for task_command in task_commands():
            if task_command.name == command:
                parser.description = task_command.description
                task_command.add_arguments(parser)
    return parser


def _strategy_help() -> str:
    names = ", ".join(spec.name for spec in list_strategies())
    return (
        f"how to choose configurations: {names} (default: {DEFAULT_STRATEGY}; `{_PROG} strategies` says what each does)"
    )


def _provider_help() -> str:
    names = ", ".join(spec.name for spec in list_providers())
    return f"{names} (default: {DEFAULT_PROVIDER}; env AGENT_PROVIDER; `{_PROG} providers` lists them)"


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tasks", required=True, help="comma-separated task names and groups (toy, hpobench, nb201)")
    p.add_argument(
        "--strategies",
        default=f"{DEFAULT_STRATEGY},random,tpe",
        help=f"comma-separated (default: {DEFAULT_STRATEGY},random,tpe); any of `{_PROG} strategies`",
    )
    p.add_argument(
        "--budget",
        default="10",
        help="evaluations per study; several (10,30): studies run to the largest, smaller ones read the prefix",
    )
    p.add_argument("--seeds", type=_positive_int, default=10, help="seeds 0..N-1 per task and strategy (default: 10)")
    p.add_argument("--out", default="runs/bench", help="output folder (default: runs/bench)")
    p.add_argument("--storage", default=None, help="Optuna storage URL (default: sqlite:///<out>/bench.db)")
    p.add_argument(
        "--jobs",
        type=_positive_int,
        default=1,
        help="random/tpe studies at once, in threads (default: 1; Optuna's Python and SQLite writes "
        "serialize, so more did not run faster here)",
    )
    p.add_argument(
        "--random-samples",
        type=_positive_int,
        default=1000,
        help="single random evaluations per task for random search's expected curve (default: 1000)",
    )
    p.add_argument("--history", choices=("chat", "compressed"), default="chat", help="LLM history (default: chat)")
    p.add_argument("--max-retries", type=_non_negative_int, default=3, help="reasks per round (default: 3)")
    p.add_argument("--provider", default=None, help=_provider_help())
    p.add_argument("--model", "--llm", dest="model", default=None, help="model name or .gguf path (env AGENT_MODEL)")
    p.add_argument("--quiet", action="store_true", help="print only where the report is")
    p.add_argument(
        "--learn-from",
        action="append",
        default=[],
        metavar="SOURCE",
        help="learn from earlier studies: an Optuna storage URL (every study in it), a study's folder (holding "
        "study.db) or a bench's folder (holding bench.db); repeatable. The model judges and maps studies of "
        "another space; README 'Learn from earlier studies'",
    )


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("study")
    g.add_argument(
        "--task",
        required=True,
        help=f"a task name (`{_PROG} tasks` lists them) or a task file (.yaml, .yml, .json) describing "
        "your own training; README 'Tune your own training script'",
    )
    g.add_argument("--strategy", default=None, help=_strategy_help())
    g.add_argument("--random_hparams", action="store_true", help="reference spelling of --strategy random")
    g.add_argument(
        "--budget",
        "--rounds",
        dest="budget",
        type=_positive_int,
        default=10,
        help="evaluations in the whole study, earlier runs included (default: 10)",
    )
    g.add_argument("--seed", type=int, default=0, help="seed of samplers, benchmarks and the model (default: 0)")
    g.add_argument(
        "--save_dir",
        "--save-dir",
        dest="save_dir",
        default=None,
        help="folder for study.db, trial JSON files and events.jsonl (default: runs/<task>-<strategy>-seed<seed>)",
    )
    g.add_argument(
        "--storage",
        default=None,
        help="Optuna storage URL (default: sqlite:///<save_dir>/study.db); a *.log path uses a journal file",
    )
    g.add_argument(
        "--study-name", default=None, help="study name in the storage (default: <task>-<strategy>-seed<seed>)"
    )
    g.add_argument(
        "--search_space",
        "--search-space",
        dest="search_space",
        default=None,
        help="JSON or YAML file replacing the task's search space",
    )
    g.add_argument("--quiet", action="store_true", help="print only the final summary")
    g.add_argument(
        "--learn-from",
        action="append",
        default=[],
        metavar="SOURCE",
        help="learn from earlier studies: an Optuna storage URL (every study in it), a study's folder (holding "
        "study.db) or a bench's folder (holding bench.db); repeatable. The model judges and maps studies of "
        "another space; README 'Learn from earlier studies'",
    )

    x = p.add_argument_group("scaling out (README: Scaling out)")
    x.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="where evaluations run: this machine, or Ray tasks (pip install -e '.[ray]') (default: local)",
    )
    x.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="evaluations at once (local: worker processes for CIFAR; ray: tasks in flight) (default: 1)",
    )
    x.add_argument(
        "--batch",
        type=_positive_int,
        default=1,
        help="configurations the model proposes per answer, at most --workers (default: 1)",
    )
    x.add_argument("--ray-address", default=None, help="Ray cluster to join (env RAY_ADDRESS; default: a local one)")
    x.add_argument("--cpus-per-trial", type=float, default=1.0, help="Ray: CPUs per evaluation (default: 1)")
    x.add_argument("--gpus-per-trial", type=float, default=0.0, help="Ray: GPUs per evaluation (default: 0)")
    x.add_argument(
        "--pruner",
        choices=("none", "median"),
        default="none",
        help="early stopping of training tasks: Optuna's MedianPruner on the per-epoch validation error "
        "(default: none)",
    )

    needs_model = ", ".join(spec.name for spec in list_strategies() if spec.needs_model)
    a = p.add_argument_group(f"agent (strategies that ask a model: {needs_model})")
    a.add_argument(
        "--history",
        choices=("chat", "compressed"),
        default="chat",
        help="chat: the whole conversation; compressed: one message listing every result (default: chat)",
    )
    a.add_argument(
        "--max-retries",
        type=_non_negative_int,
        default=3,
        help="reasks of an invalid answer before giving up on the round (default: 3)",
    )
    a.add_argument(
        "--on-invalid",
        choices=("random", "stop"),
        default="random",
        help="after the reasks: evaluate a random configuration, or stop with an error (default: random)",
    )
    a.add_argument(
        "--on-provider-error",
        choices=("continue", "stop"),
        default="continue",
        help="when the model cannot be reached after its retries: propose that round without it and ask again "
        "later, backing off after repeated failures, or stop (re-running resumes) (default: continue)",
    )
    timeouts = ", ".join(f"{s.timeout_s:g} for {s.name}" for s in list_providers() if s.timeout_s is not None)
    a.add_argument(
        "--provider-timeout",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help=f"the most one model call may take, retries included (env AGENT_PROVIDER_TIMEOUT; default: {timeouts})",
    )
    a.add_argument(
        "--allow-repeats",
        action="store_true",
        help="evaluate a configuration the model proposes again (the paper's plain loop); default: reask it",
    )
    a.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (default: 0.7)")
    a.add_argument("--max-tokens", type=_positive_int, default=256, help="answer length limit (default: 256)")
    a.add_argument("--prompts-dir", default=None, help="folder with your own prompt templates (env AGENT_PROMPTS_DIR)")

    m = p.add_argument_group("model provider")
    m.add_argument("--provider", default=None, help=_provider_help())
    m.add_argument(
        "--model",
        "--llm",
        dest="model",
        default=None,
        help="model name for openai/ollama, a .gguf path for embedded "
        "(env AGENT_MODEL; --llm is the reference spelling)",
    )
    for flags in task_flags():
        flags.add_arguments(p)


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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = args_list[0] if args_list and args_list[0] in _commands() else None
    if command is not None:
        args_list = args_list[1:]
    elif args_list and args_list[0] == "run":  # the explicit spelling of the default command
        args_list = args_list[1:]
    args = build_parser(command).parse_args(args_list)
    with _library_warnings_shown():
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
    )
    result = await run_bench(config)
    print(f"report: {write_bench_report(result)}")
    return 0
