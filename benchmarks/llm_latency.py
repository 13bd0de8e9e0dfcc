"""What each model call of a strategy costs: tokens sent, tokens the server actually processed, tokens generated,
and seconds (median and 95th percentile), per task.

    python benchmarks/llm_latency.py                                   # hybrid, toy-branin and hpobench-kc1
    python benchmarks/llm_latency.py --strategy llm --budget 10        # the paper's loop
    python benchmarks/llm_latency.py --tasks hpobench-kc1 --budget 30 --seeds 3

Uses whatever provider AGENT_PROVIDER / --provider selects (the embedded model by default). "Processed" is the
prompt minus what the server took from its prompt cache (llama.cpp reports it): with a prompt whose prefix
never changes, a call processes only the text added since the previous one. A call includes its reasks and
history reads as calls of their own. Run it on a quiet machine: these 2 cores read some 70 prompt tokens and
write some 20 to 26 tokens a second, and anything else running slows both.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import anyio  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402

from agent.conversation import AgentSettings  # noqa: E402
from agent.messages import Usage  # noqa: E402
from agent.providers.base import Provider  # noqa: E402
from agent.session import ModelSettings, StudyConfig, open_model, run_study  # noqa: E402
from agent.strategies.registry import list_strategies  # noqa: E402
from agent.study import default_storage_url, opened_storage, stored_records  # noqa: E402
from agent.tasks import build_task  # noqa: E402


async def one_study(
    provider: Provider, strategy_name: str, task_name: str, budget: int, seed: int, root: Path, history: str
) -> list[Usage]:
    """Every model call of one study, in order."""
    task = build_task(task_name, seed=seed)
    config = StudyConfig(
        task=task,
        strategy=strategy_name,
        budget=budget,
        seed=seed,
        save_dir=root / f"{task_name}-{seed}",
        study_name="s",
        agent=AgentSettings(history=history),  # type: ignore[arg-type]
        checks=False,
    )
    await run_study(config, provider=provider)
    with opened_storage(default_storage_url(config.folder)) as storage:
        return [u for r in stored_records(storage, "s") for u in r.proposal.usage]


def summary(calls: list[Usage]) -> str:
    if not calls:
        return "no model call"
    seconds = [u.latency_s for u in calls]
    median, p95 = np.percentile(seconds, [50, 95])
    sent = statistics.mean(u.prompt_tokens for u in calls)
    processed = statistics.mean(u.prompt_tokens - u.cached_tokens for u in calls)
    generated = statistics.mean(u.completion_tokens for u in calls)
    return f"{len(calls):5d} {sent:9.0f} {processed:9.0f} {generated:9.1f} {median:8.2f} {p95:7.2f} {max(seconds):7.2f}"


async def main() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # a script decides what it shows; agent changes nothing
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strategy", choices=[s.name for s in list_strategies() if s.needs_model], default="hybrid")
    parser.add_argument("--tasks", default="toy-branin,hpobench-kc1")
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--history", choices=("chat", "compressed"), default="chat")
    parser.add_argument("--provider", default=None)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    calls: dict[str, list[Usage]] = {}
    async with open_model(ModelSettings(provider=args.provider, model=args.model)) as provider:
        with tempfile.TemporaryDirectory() as tmp:
            for task in args.tasks.split(","):
                for seed in range(args.seeds):
                    study = await one_study(provider, args.strategy, task, args.budget, seed, Path(tmp), args.history)
                    calls.setdefault(task, []).extend(study)
        name = f"{provider.name} ({provider.model})"
    print(
        f"strategy {args.strategy}, provider {name}, budget {args.budget}, {args.seeds} seed(s); wall time "
        f"{time.perf_counter() - started:.0f} s (model load included)\n"
    )
    header = ("calls", "sent", "processed", "generated", "median s", "p95 s", "max s")
    widths = (5, 9, 9, 9, 8, 7, 7)
    print(f"{'task':24} " + " ".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
    for task, used in calls.items():
        print(f"{task:24} {summary(used)}")
    every = [u for used in calls.values() for u in used]
    print(f"{'all':24} {summary(every)}")


if __name__ == "__main__":
    anyio.run(main)
