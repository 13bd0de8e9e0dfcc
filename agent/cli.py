"""``python -m agent``: run a study (default), list tasks, and more.

python -m agent --task toy-branin --strategy random --budget 10 --seed 0 --save_dir out/r
python -m agent tasks
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio
import structlog

from tools.read_history import ReadHistory

from .display import RichReporter
from .errors import AgentError, ProviderError, UserError
from .loop import Agent, AgentSettings
from .optimize import StudySummary, optimize
from .providers.base import Provider
from .space import SearchSpace
from .strategies.base import Strategy
from .strategies.llm import LLMStrategy
from .strategies.samplers import RandomStrategy, TPEStrategy
from .study import StudyStore
from .tasks import Task, build_task, list_tasks
from .templates import Templates

__all__ = ["build_parser", "main"]

STRATEGIES = ("llm", "random", "tpe")
COMMANDS = ("run", "tasks", "bench", "report")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m agent",
        description="Tune hyperparameters with an LLM agent, or with random search and TPE side by side.",
        epilog="Commands: run (the default: `python -m agent --task ...`), tasks, bench, report. "
        "Re-running the same command resumes the study.",
    )
    sub = parser.add_subparsers(dest="command", metavar="{run,tasks,bench,report}")
    run = sub.add_parser("run", help="run or resume a study (default)", description="Run or resume a study.")
    add_run_arguments(run)
    sub.add_parser("tasks", help="list the tasks", description="List the tasks.")
    bench = sub.add_parser(
        "bench",
        help="run strategies side by side on many tasks and seeds, then write a report",
        description="Run every (task, strategy, seed) study in one storage (resumable), then write "
        "OUT/report.md and OUT/plots/.",
    )
    add_bench_arguments(bench)
    report = sub.add_parser(
        "report",
        help="write the report of one study",
        description="Write SAVE_DIR/report.md and SAVE_DIR/plots/ for one study: best-so-far plot, trials, "
        "and the conversation. Needs no provider.",
    )
    report.add_argument("--save_dir", "--save-dir", dest="save_dir", required=True, help="the study's folder")
    report.add_argument("--storage", default=None, help="storage URL (default: sqlite:///<save_dir>/study.db)")
    report.add_argument("--study-name", default=None, help="the study, when the storage holds several")
    return parser


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tasks", required=True, help="comma-separated task names and groups (toy, hpobench, nb201)")
    p.add_argument("--strategies", default="llm,random,tpe", help="comma-separated (default: llm,random,tpe)")
    p.add_argument(
        "--budget",
        default="10",
        help="evaluations per study; several (10,30): studies run to the largest, smaller ones read the prefix",
    )
    p.add_argument("--seeds", type=_positive_int, default=10, help="seeds 0..N-1 per task and strategy (default: 10)")
    p.add_argument("--out", default="runs/bench", help="output folder (default: runs/bench)")
    p.add_argument("--storage", default=None, help="Optuna storage URL (default: sqlite:///<out>/bench.db)")
    p.add_argument("--jobs", type=_positive_int, default=2, help="random/tpe studies at once (default: 2)")
    p.add_argument(
        "--random-samples",
        type=_positive_int,
        default=1000,
        help="single random evaluations per task for random search's expected curve (default: 1000)",
    )
    p.add_argument("--history", choices=("chat", "compressed"), default="chat", help="LLM history (default: chat)")
    p.add_argument("--max-retries", type=_non_negative_int, default=3, help="reasks per round (default: 3)")
    p.add_argument("--provider", default=None, help="embedded (default), openai or ollama (env AGENT_PROVIDER)")
    p.add_argument("--model", "--llm", dest="model", default=None, help="model name or .gguf path (env AGENT_MODEL)")
    p.add_argument("--quiet", action="store_true", help="print only where the report is")


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("study")
    g.add_argument("--task", required=True, help="task name; `python -m agent tasks` lists them")
    g.add_argument("--strategy", choices=STRATEGIES, default=None, help="how to choose configurations (default: llm)")
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

    a = p.add_argument_group("agent (strategy llm)")
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
    a.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (default: 0.7)")
    a.add_argument("--max-tokens", type=_positive_int, default=256, help="answer length limit (default: 256)")
    a.add_argument("--prompts-dir", default=None, help="folder with your own prompt templates (env AGENT_PROMPTS_DIR)")

    m = p.add_argument_group("model provider")
    m.add_argument("--provider", default=None, help="embedded (default), openai or ollama (env AGENT_PROVIDER)")
    m.add_argument(
        "--model",
        "--llm",
        dest="model",
        default=None,
        help="model name for openai/ollama, a .gguf path for embedded "
        "(env AGENT_MODEL; --llm is the reference spelling)",
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or args_list[0] not in (*COMMANDS, "-h", "--help"):
        args_list.insert(0, "run")
    args = build_parser().parse_args(args_list)
    _quiet_library_logs()
    try:
        if args.command == "tasks":
            return _tasks()
        if args.command == "bench":
            return anyio.run(_bench, args)
        if args.command == "report":
            from .report import write_study_report

            print(f"report: {write_study_report(Path(args.save_dir), args.storage, args.study_name)}")
            return 0
        anyio.run(_run, args)
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


def _quiet_library_logs() -> None:
    """Our own events go to events.jsonl; on the terminal only warnings (a retry, say) are worth showing."""
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


def _tasks() -> int:
    from rich.console import Console
    from rich.table import Table

    table = Table("task", "family", "what it is")
    for info in list_tasks():
        table.add_row(info.name, info.family, info.summary)
    Console().print(table)
    return 0


async def _run(args: argparse.Namespace) -> StudySummary:
    strategy_name = "random" if args.random_hparams else (args.strategy or "llm")
    space = SearchSpace.from_file(args.search_space) if args.search_space else None
    task = build_task(args.task, seed=args.seed, space=space)
    save_dir = Path(args.save_dir or f"runs/{task.name}-{strategy_name}-seed{args.seed}")
    study_name = args.study_name or f"{task.name}-{strategy_name}-seed{args.seed}"
    store = StudyStore.open(
        save_dir=save_dir,
        study_name=study_name,
        space=task.space,
        storage=args.storage,
        meta={"task": task.name, "strategy": strategy_name, "seed": args.seed},
    )
    try:
        async with contextlib.AsyncExitStack() as stack:
            provider = None
            if strategy_name == "llm":
                from .providers import get_provider

                provider = await stack.enter_async_context(get_provider(args.provider, args.model))
                store.events.info("provider", provider=provider.name, model=provider.model)
            strategy = _make_strategy(strategy_name, task, store, args, provider)
            store.study.sampler = strategy.sampler(args.seed, len(store.study.get_trials(deepcopy=False)))
            return await optimize(
                tool=task.tool,
                strategy=strategy,
                store=store,
                budget=args.budget,
                seed=args.seed,
                reporter=RichReporter(quiet=args.quiet),
            )
    finally:
        store.close()


async def _bench(args: argparse.Namespace) -> int:
    from .bench import BenchConfig, parse_budgets, resolve_tasks, run_bench
    from .report import write_bench_report

    config = BenchConfig(
        tasks=resolve_tasks(args.tasks),
        strategies=tuple(s.strip() for s in args.strategies.split(",") if s.strip()),
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
    )
    result = await run_bench(config)
    print(f"report: {write_bench_report(result)}")
    return 0


def _make_strategy(
    name: str, task: Task, store: StudyStore, args: argparse.Namespace, provider: Provider | None
) -> Strategy:
    if name == "random":
        return RandomStrategy()
    if name == "tpe":
        return TPEStrategy.for_budget(args.budget)
    assert provider is not None, "the llm strategy needs a provider"
    agent = Agent(
        provider=provider,
        eval_tool=task.tool,
        task_description=task.description,
        task_template=task.template,
        budget=args.budget,
        seed=args.seed,
        settings=AgentSettings(
            history=args.history,
            max_retries=args.max_retries,
            on_invalid=args.on_invalid,
            temperature=args.temperature,
            max_tokens=args.max_tokens,
        ),
        templates=Templates(args.prompts_dir),
        extra_tools=[ReadHistory(store.records)],
        events=store.events,
    )
    return LLMStrategy(agent)
