"""The flags of ``python -m agent`` (running a study) and ``python -m agent bench``, each defined once.

A flag is a :class:`Flag` (its spellings and argparse options); the run's groups and the bench list which
flags they take, so a flag both commands have (``--learn-from``, ``--history``, the model's) is written once.
Every multi-word flag takes both spellings, ``--save_dir`` and ``--save-dir``, ``--learn-from`` and
``--learn_from`` (:func:`canonical_spelling`, applied by the CLI's parser); the help shows the first.
The choices and help of ``--strategy`` and ``--provider`` come from their registries.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass, field
from typing import Any

from .deadline import parse_duration
from .providers import list_providers
from .providers.registry import DEFAULT_PROVIDER
from .strategies.registry import DEFAULT_STRATEGY, list_strategies
from .study.scheduler import DEFAULT_PRUNER, PRUNERS
from .tasks import TASK_GROUPS, task_flags

__all__ = ["Flag", "add_bench_arguments", "add_run_arguments", "canonical_spelling"]

_PROG = "python -m agent"


@dataclass(frozen=True)
class Flag:
    """One flag: its spellings and argparse options (``help`` may be made when the parser is, from a
    registry)."""

    names: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)
    help: str | Callable[[], str] = ""

    def add(self, group: Any, **changes: Any) -> None:
        text = self.help() if callable(self.help) else self.help
        group.add_argument(*self.names, **{"help": text, **self.options, **changes})


def canonical_spelling(token: str, known: Container[str]) -> str:
    """``token`` with its flag spelled as the parser knows it: ``--learn_from`` as ``--learn-from``,
    ``--save-dir=x`` as ``--save_dir=x``; anything else unchanged."""
    if not token.startswith("--") or token == "--":
        return token
    name, eq, value = token.partition("=")
    if name in known:
        return token
    for other in ("--" + name[2:].replace("_", "-"), "--" + name[2:].replace("-", "_")):
        if other in known:
            return other + eq + value
    return token


# ---- value types: a wrong value is argparse's one-line error (exit 2) ---------------------------------


def positive_int(text: str) -> int:
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = _whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def seed(text: str) -> int:
    value = _whole(text)
    if not 0 <= value < 2**31:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to {2**31 - 1}, got {value}")
    return value


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def duration(text: str) -> float:
    """Seconds of a duration (``90s``, ``30m``, ``2h``, ``1h30m``)."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None


# ---- helps made from the registries -------------------------------------------------------------------


def _strategy_help() -> str:
    names = ", ".join(spec.name for spec in list_strategies())
    return (
        f"how to choose configurations: {names} (default: {DEFAULT_STRATEGY}; `{_PROG} strategies` says what each does)"
    )


def _provider_help() -> str:
    names = ", ".join(spec.name for spec in list_providers())
    return f"{names} (default: {DEFAULT_PROVIDER}; env AGENT_PROVIDER; `{_PROG} providers` lists them)"


def _timeout_help() -> str:
    timeouts = ", ".join(f"{s.timeout_s:g} for {s.name}" for s in list_providers() if s.timeout_s is not None)
    return f"the most one model call may take, retries included (env AGENT_PROVIDER_TIMEOUT; default: {timeouts})"


# ---- the flags ----------------------------------------------------------------------------------------

#: Flags of both commands.
LEARN_FROM = Flag(
    ("--learn-from",),
    {"action": "append", "default": [], "metavar": "SOURCE"},
    "learn from earlier studies: an Optuna storage URL (every study in it), a study's folder (holding study.db) or "
    "a bench's folder (holding bench.db); repeatable. The model judges and maps studies of another space; README "
    "'Learn from earlier studies'",
)
HISTORY = Flag(
    ("--history",),
    {"choices": ("chat", "compressed"), "default": "chat"},
    "chat: the whole conversation; compressed: one message listing every result (default: chat)",
)
MAX_RETRIES = Flag(
    ("--max-retries",),
    {"type": non_negative_int, "default": 3},
    "reasks of an invalid answer before giving up on the round (default: 3)",
)
PROVIDER = Flag(("--provider",), {"default": None}, _provider_help)
MODEL = Flag(
    ("--model", "--llm"),
    {"dest": "model", "default": None},
    "model name for openai/ollama, a .gguf path for embedded (env AGENT_MODEL; --llm is the reference spelling)",
)
TIME_BUDGET = Flag(
    ("--time-budget",),
    {"dest": "time_budget", "type": duration, "default": None, "metavar": "DURATION"},
    "stop starting trials once this much wall-clock time is spent (90s, 30m, 2h, 1h30m), the model's calls "
    "included; a running trial stops at its next report. With --budget, whichever is spent first ends the study. "
    "A resumed study goes on with the time left; replayed tables count their recorded seconds. README 'Time budgets'",
)
QUIET = Flag(("--quiet",), {"action": "store_true"}, "print only the final summary")

STUDY = [
    Flag(
        ("--task",),
        {"required": True},
        f"a task name (`{_PROG} tasks` lists them) or a task file (.yaml, .yml, .json) describing your own training; "
        "README 'Tune your own training script'",
    ),
    Flag(("--strategy",), {"default": None}, _strategy_help),
    Flag(("--random_hparams",), {"action": "store_true"}, "reference spelling of --strategy random"),
    Flag(
        ("--budget", "--rounds"),
        {"dest": "budget", "type": positive_int, "default": 10},
        "evaluations in the whole study, earlier runs included (default: 10)",
    ),
    Flag(("--seed",), {"type": seed, "default": 0}, "seed of samplers, benchmarks and the model (default: 0)"),
    Flag(
        ("--save_dir",),
        {"default": None},
        "folder for study.db, trial JSON files and events.jsonl (default: runs/<task>-<strategy>-seed<seed>)",
    ),
    Flag(
        ("--storage",),
        {"default": None},
        "Optuna storage URL (default: sqlite:///<save_dir>/study.db); a *.log path uses a journal file",
    ),
    Flag(("--study-name",), {"default": None}, "study name in the storage (default: <task>-<strategy>-seed<seed>)"),
    Flag(("--search_space",), {"default": None}, "JSON or YAML file replacing the task's search space"),
    TIME_BUDGET,
    QUIET,
    LEARN_FROM,
]
SCALING = [
    Flag(
        ("--executor",),
        {"choices": ("local", "ray"), "default": "local"},
        "where evaluations run: this machine, or Ray tasks (pip install -e '.[ray]') (default: local)",
    ),
    Flag(
        ("--workers",),
        {"type": positive_int, "default": 1},
        "evaluations at once (local: worker processes for CIFAR; ray: tasks in flight) (default: 1)",
    ),
    Flag(
        ("--batch",),
        {"type": positive_int, "default": 1},
        "configurations the model proposes per answer, at most --workers (default: 1)",
    ),
    Flag(("--ray-address",), {"default": None}, "Ray cluster to join (env RAY_ADDRESS; default: a local one)"),
    Flag(("--cpus-per-trial",), {"type": float, "default": 1.0}, "Ray: CPUs per evaluation (default: 1)"),
    Flag(("--gpus-per-trial",), {"type": float, "default": 0.0}, "Ray: GPUs per evaluation (default: 0)"),
    Flag(
        ("--pruner",),
        {"choices": PRUNERS, "default": None},
        "early stopping at the steps a task reports (epochs, a task file's steps): asha (successive halving), "
        f"hyperband, median or none (default: {DEFAULT_PRUNER} for a task that reports steps, else none)",
    ),
]
AGENT = [
    HISTORY,
    MAX_RETRIES,
    Flag(
        ("--on-invalid",),
        {"choices": ("random", "stop"), "default": "random"},
        "after the reasks: evaluate a random configuration, or stop with an error (default: random)",
    ),
    Flag(
        ("--on-provider-error",),
        {"choices": ("continue", "stop"), "default": "continue"},
        "when the model cannot be reached after its retries: propose that round without it and ask again later, "
        "backing off after repeated failures, or stop (re-running resumes) (default: continue)",
    ),
    Flag(("--provider-timeout",), {"type": positive_seconds, "default": None, "metavar": "SECONDS"}, _timeout_help),
    Flag(
        ("--allow-repeats",),
        {"action": "store_true"},
        "evaluate a configuration the model proposes again (the paper's plain loop); default: reask it",
    ),
    Flag(("--temperature",), {"type": float, "default": 0.7}, "sampling temperature (default: 0.7)"),
    Flag(("--max-tokens",), {"type": positive_int, "default": 256}, "answer length limit (default: 256)"),
    Flag(("--prompts-dir",), {"default": None}, "folder with your own prompt templates (env AGENT_PROMPTS_DIR)"),
]
MODEL_GROUP = [PROVIDER, MODEL]

BENCH = [
    Flag(("--tasks",), {"required": True}, f"comma-separated task names and groups ({', '.join(TASK_GROUPS)})"),
    Flag(
        ("--strategies",),
        {"default": f"{DEFAULT_STRATEGY},random,tpe"},
        f"comma-separated (default: {DEFAULT_STRATEGY},random,tpe); any of `{_PROG} strategies`",
    ),
    Flag(
        ("--budget",),
        {"default": "10"},
        "evaluations per study; several (10,30): studies run to the largest, smaller ones read the prefix",
    ),
    TIME_BUDGET,
    Flag(("--seeds",), {"type": positive_int, "default": 10}, "seeds 0..N-1 per task and strategy (default: 10)"),
    Flag(("--out",), {"default": "runs/bench"}, "output folder (default: runs/bench)"),
    Flag(("--storage",), {"default": None}, "Optuna storage URL (default: sqlite:///<out>/bench.db)"),
    Flag(
        ("--jobs",),
        {"type": positive_int, "default": 1},
        "random/tpe studies at once, in threads (default: 1; Optuna's Python and SQLite writes serialize, so more "
        "did not run faster here)",
    ),
    Flag(
        ("--random-samples",),
        {"type": positive_int, "default": 1000},
        "single random evaluations per task for random search's expected curve (default: 1000)",
    ),
    HISTORY,
    MAX_RETRIES,
    PROVIDER,
    MODEL,
    LEARN_FROM,
]


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of running a study, in their groups, then those the tasks add."""
    needs_model = ", ".join(spec.name for spec in list_strategies() if spec.needs_model)
    groups = {
        "study": STUDY,
        "scaling out (README: Scaling out)": SCALING,
        f"agent (strategies that ask a model: {needs_model})": AGENT,
        "model provider": MODEL_GROUP,
    }
    for title, flags in groups.items():
        group = p.add_argument_group(title)
        for flag in flags:
            flag.add(group)
    for added in task_flags():
        added.add_arguments(p)


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``bench``: its own, and those it shares with running a study."""
    for flag in BENCH:
        flag.add(p)
    QUIET.add(p, help="print only where the report is")
