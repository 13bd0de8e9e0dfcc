"""``python -m agent``: run a study (default), list tasks, and more.

python -m agent --task toy-branin --strategy random --budget 10 --seed 0 --save_dir out/r
python -m agent tasks
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import optuna
import structlog

from evaluators.base import Progress, SetupError
from evaluators.cifar.options import add_training_arguments

from .display import DurationHint, RichReporter, progress_text
from .errors import AgentError, ProviderError, UserError
from .executors import make_executor
from .loop import AgentSettings
from .optimize import StudySummary, optimize
from .preflight import check_setup
from .providers.base import Provider
from .space import SearchSpace
from .strategies.factory import DEFAULT_STRATEGY, LLM_STRATEGIES, STRATEGIES, make_strategy
from .study import StudyStore
from .tasks import ENTRY_POINT_GROUP, Task, build_task, list_tasks, resolve_tasks
from .templates import Templates

__all__ = ["build_parser", "main", "parse_budgets", "parse_strategies"]

COMMANDS = ("run", "tasks", "train", "bench", "report")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m agent",
        description="Tune hyperparameters with an LLM agent, or with random search and TPE side by side.",
        epilog="Commands: run (the default: `python -m agent --task ...`), tasks, train, bench, report. "
        "Re-running the same command resumes the study.",
    )
    sub = parser.add_subparsers(dest="command", metavar="{run,tasks,train,bench,report}")
    run = sub.add_parser("run", help="run or resume a study (default)", description="Run or resume a study.")
    add_run_arguments(run)
    sub.add_parser("tasks", help="list the tasks", description="List the tasks.")
    train = sub.add_parser(
        "train",
        help="one CIFAR-10 training run with explicit hyperparameters",
        description="One CIFAR-10 training run with the reference code's flags; writes SAVE_DIR/metrics.json.",
    )
    add_training_arguments(train)
    train.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    train.add_argument(
        "--save_dir", "--save-dir", dest="save_dir", default="runs/train", help="where metrics.json goes"
    )
    train.add_argument("--test", action="store_true", help="score the test set instead of the validation split")
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
    p.add_argument("--strategies", default="llm-bo,random,tpe", help="comma-separated (default: llm-bo,random,tpe)")
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
    p.add_argument("--provider", default=None, help="embedded (default), openai or ollama (env AGENT_PROVIDER)")
    p.add_argument("--model", "--llm", dest="model", default=None, help="model name or .gguf path (env AGENT_MODEL)")
    p.add_argument("--quiet", action="store_true", help="print only where the report is")


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("study")
    g.add_argument(
        "--task",
        required=True,
        help="a task name (`python -m agent tasks` lists them) or a task file (.yaml, .yml, .json) describing "
        "your own training; README 'Tune your own training script'",
    )
    g.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default=None,
        help=f"how to choose configurations (default: {DEFAULT_STRATEGY}); see README 'Strategies'",
    )
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
        "--final-test",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="CIFAR tasks: after the study, retrain the best configuration and score the test set (default: on)",
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

    a = p.add_argument_group("agent (strategies llm, llm-bo)")
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
    a.add_argument(
        "--provider-timeout",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="the most one model call may take, retries included (env AGENT_PROVIDER_TIMEOUT; default: 120 "
        "for openai, 600 for ollama, 900 for embedded)",
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
    m.add_argument("--provider", default=None, help="embedded (default), openai or ollama (env AGENT_PROVIDER)")
    m.add_argument(
        "--model",
        "--llm",
        dest="model",
        default=None,
        help="model name for openai/ollama, a .gguf path for embedded "
        "(env AGENT_MODEL; --llm is the reference spelling)",
    )
    add_training_arguments(p)


def parse_strategies(text: str) -> tuple[str, ...]:
    """Comma-separated strategy names, in order, without repeats."""
    chosen = tuple(dict.fromkeys(x.strip() for x in text.split(",") if x.strip()))
    unknown = [s for s in chosen if s not in STRATEGIES]
    if unknown or not chosen:
        raise UserError(f"--strategies {text!r}: choose from {', '.join(STRATEGIES)}")
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
    value = int(text)
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
        if args.command == "train":
            return _train(args)
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


class _CurrentStderr:
    """Whatever ``sys.stderr`` is when a line is written: the display's live area swaps it so that warnings
    print above the area instead of through it."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _quiet_library_logs() -> None:
    """Our own events go to events.jsonl; on the terminal only warnings (a retry, say) are worth showing."""
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(_CurrentStderr()),  # type: ignore[arg-type]
    )


def _tasks() -> int:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        "task",
        "family",
        "what it is",
        caption="--task also takes a task file of your own (.yaml, .yml, .json): README 'Tune your own training "
        f"script'. Packages add tasks under the entry-point group {ENTRY_POINT_GROUP}.",
    )
    for info in list_tasks():
        table.add_row(info.name, info.family, info.summary)
    Console().print(table)
    return 0


async def _run(args: argparse.Namespace) -> StudySummary:
    strategy_name = "random" if args.random_hparams else (args.strategy or DEFAULT_STRATEGY)
    space = SearchSpace.from_file(args.search_space) if args.search_space else None
    task = build_task(args.task, seed=args.seed, space=space, options={"train_config": _train_config(args)})
    save_dir = Path(args.save_dir or f"runs/{task.name}-{strategy_name}-seed{args.seed}")
    study_name = args.study_name or f"{task.name}-{strategy_name}-seed{args.seed}"
    async with contextlib.AsyncExitStack() as stack:
        provider = None
        if strategy_name in LLM_STRATEGIES:
            from .providers import get_provider
            from .providers.breaker import CircuitBreaker

            # Made (not started: the embedded model loads at the first call) before the checks, which probe it.
            provider = await stack.enter_async_context(
                get_provider(args.provider, args.model, call_timeout_s=args.provider_timeout)
            )
            if args.on_provider_error == "continue":
                provider = CircuitBreaker(provider)
        # Before the model loads, before any trial, before study.db exists: a setup error ends here.
        await check_setup(task=task, save_dir=save_dir, storage=args.storage, provider=provider)
        store = StudyStore.open(
            save_dir=save_dir,
            study_name=study_name,
            space=task.space,
            storage=args.storage,
            meta={"task": task.name, "strategy": strategy_name, "seed": args.seed},
            direction=task.direction,
        )
        stack.callback(store.close)
        store.set_meta("budget", args.budget)  # the latest budget asked for
        if provider is not None:
            store.events.info("provider", provider=provider.name, model=provider.model)
        return await _study(args, strategy_name, task, store, provider, stack)
    raise AssertionError("unreachable")  # pragma: no cover (mypy: the stack may swallow exceptions)


async def _study(
    args: argparse.Namespace,
    strategy_name: str,
    task: Task,
    store: StudyStore,
    provider: Provider | None,
    stack: contextlib.AsyncExitStack,
) -> StudySummary:
    strategy = make_strategy(
        strategy_name,
        task=task,
        store=store,
        budget=args.budget,
        seed=args.seed,
        provider=provider,
        settings=AgentSettings(
            history=args.history,
            max_retries=args.max_retries,
            on_invalid=args.on_invalid,
            reject_repeats=not args.allow_repeats,
            temperature=args.temperature,
            max_tokens=args.max_tokens,
        ),
        templates=Templates(args.prompts_dir),
    )
    executor = make_executor(
        args.executor,
        workers=args.workers,
        address=args.ray_address,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
    )
    stack.callback(executor.close)
    reporter = stack.enter_context(RichReporter(quiet=args.quiet, workers=args.workers, hint=_duration_hint(task)))
    # What exists now (modules, the task's tables, the model's client) lives as long as the run: keep
    # the garbage collector from rescanning it between the many small objects each trial makes.
    gc.freeze()
    summary = await optimize(
        tool=task.tool,
        strategy=strategy,
        store=store,
        budget=args.budget,
        seed=args.seed,
        reporter=reporter,
        executor=executor,
        batch=min(args.batch, args.workers),
        pruner=optuna.pruners.MedianPruner() if args.pruner == "median" else None,
        on_provider_error=args.on_provider_error,
    )
    if task.family == "cifar" and args.final_test:
        await _final_test(task, store, summary, quiet=args.quiet)
    return summary


def _duration_hint(task: Task) -> DurationHint | None:
    """CIFAR on a CPU: the study's length after its first epoch, and how to shorten it past an hour."""
    if task.family != "cifar":
        return None  # before importing torch
    from agent.tools.train_cifar import TrainCifar
    from evaluators.cifar.train import resolve_device

    if not isinstance(task.tool, TrainCifar):
        return None

    if resolve_device(task.tool.base.device).type != "cpu":
        return None
    return DurationHint(
        where="on CPU",
        shorten="--subset N (train on N images, e.g. --subset 5000) or --num_train_epochs N (fewer epochs), "
        "or a GPU (--device cuda)",
    )


def _train_config(args: argparse.Namespace) -> Any:
    """The fixed parts of a CIFAR run (epochs, batches, data, device) from the training flags."""
    from evaluators.cifar.options import train_config_from_args

    return train_config_from_args(args, seed=args.seed)


async def _final_test(task: Task, store: StudyStore, summary: StudySummary, *, quiet: bool = False) -> None:
    """Retrain the best configuration and score the test set once (tuning never sees the test set)."""
    from agent.tools.train_cifar import TrainCifar
    from evaluators.cifar.train import evaluate_test

    best = summary.best
    if best is None or not isinstance(task.tool, TrainCifar):
        return
    done = store.meta.get("final_test")
    if isinstance(done, dict) and done.get("trial") == best.number:
        print(f"test error of the best configuration (trial #{best.number}): {done['test_error']:.4f}")
        return
    print(f"training the best configuration (trial #{best.number}) once more to score the test set...")
    cfg = task.tool.config_for(best.config)
    progress = None if quiet else _epoch_lines("final run")
    result = await anyio.to_thread.run_sync(evaluate_test, cfg, progress, abandon_on_cancel=True)
    if result.state != "complete" or result.value is None:
        print(f"the final test run failed: {result.error}")
        return
    store.set_meta("final_test", {"trial": best.number, "test_error": result.value, **result.metrics})
    store.events.info("final_test", trial=best.number, test_error=result.value)
    print(f"test error of the best configuration (trial #{best.number}): {result.value:.4f}")


def _epoch_lines(label: str) -> Callable[[Progress], None]:
    """A training's progress as one plain line per epoch, on stderr."""

    def line(progress: Progress) -> None:
        if progress.done == int(progress.done):
            print(f"{label} {progress_text(progress)}", file=sys.stderr, flush=True)

    return line


def _train(args: argparse.Namespace) -> int:
    import json

    from evaluators.cifar.data import CifarNotFoundError
    from evaluators.cifar.train import evaluate_test, resolve_device, train

    cfg = _train_config(args)
    lines = _epoch_lines(f"[{cfg.arch} {resolve_device(cfg.device)}]")
    try:
        result = evaluate_test(cfg, lines) if args.test else train(cfg, on_progress=lines)
    except CifarNotFoundError as exc:
        raise UserError(f"{exc} (--dataset_dir)") from exc
    except SetupError as exc:
        raise UserError(str(exc)) from exc
    save_dir = Path(args.save_dir)
    try:
        save_dir.mkdir(parents=True, exist_ok=True)
        body = {
            "config": dataclasses.asdict(cfg),
            "state": result.state,
            "value": result.value,
            "error": result.error,
            "metrics": result.metrics,
        }
        (save_dir / "metrics.json").write_text(json.dumps(body, indent=2, default=str))
    except OSError as exc:
        raise UserError(f"--save_dir {save_dir}: cannot write metrics.json ({exc.strerror})") from exc
    split = "test" if args.test else "validation"
    if result.state != "complete":
        print(f"training failed: {result.error}", file=sys.stderr)
        return 1
    print(f"{split} error {result.value:.4f}; metrics in {save_dir / 'metrics.json'}")
    return 0


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
    )
    result = await run_bench(config)
    print(f"report: {write_bench_report(result)}")
    return 0
