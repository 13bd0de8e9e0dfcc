"""Suggestion latency, tokens per suggestion and reask share of an LLM strategy on toy and tabular tasks.

    python benchmarks/llm_latency.py --tasks toy-branin,hpobench-kc1 --budget 10 --seeds 1
    python benchmarks/llm_latency.py --strategy llm   # the paper's loop: the model proposes every trial

Uses whatever provider AGENT_PROVIDER / --provider selects (the embedded model by default). A suggestion is
one proposal round, timed by the runner (``propose_s``): every call it took, reasks and history reads
included, and for ``llm-bo`` (the default) the surrogate's proposals too.
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

from agent.loop import AgentSettings  # noqa: E402
from agent.optimize import optimize  # noqa: E402
from agent.providers import get_provider  # noqa: E402
from agent.providers.base import Provider  # noqa: E402
from agent.strategies.factory import DEFAULT_STRATEGY, LLM_STRATEGIES, make_strategy  # noqa: E402
from agent.study import StudyStore  # noqa: E402
from agent.tasks import build_task  # noqa: E402


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def one_study(
    provider: Provider, strategy_name: str, task_name: str, budget: int, seed: int, root: Path, history: str
) -> dict:
    task = build_task(task_name, seed=seed)
    store = StudyStore.open(save_dir=root / f"{task_name}-{seed}", study_name="s", space=task.space, meta={})
    strategy = make_strategy(
        strategy_name,
        task=task,
        store=store,
        budget=budget,
        seed=seed,
        provider=provider,
        settings=AgentSettings(history=history),  # type: ignore[arg-type]
    )
    try:
        await optimize(tool=task.tool, strategy=strategy, store=store, budget=budget, seed=seed)
        rounds = []
        for r in store.records():
            usage = r.proposal.usage
            rounds.append(
                {
                    "seconds": r.proposal.seconds or sum(u.latency_s for u in usage),
                    "calls": len(usage),
                    "prompt": sum(u.prompt_tokens for u in usage),
                    "completion": sum(u.completion_tokens for u in usage),
                    "reasks": r.proposal.reasks,
                    "fallback": r.source == "fallback",
                }
            )
        return {"task": task_name, "rounds": rounds}
    finally:
        store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strategy", choices=sorted(LLM_STRATEGIES), default=DEFAULT_STRATEGY)
    parser.add_argument("--tasks", default="toy-branin,hpobench-kc1")
    parser.add_argument("--budget", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--history", choices=("chat", "compressed"), default="chat")
    parser.add_argument("--provider", default=None)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    results = []
    async with get_provider(args.provider, args.model) as provider:
        with tempfile.TemporaryDirectory() as tmp:
            for task in args.tasks.split(","):
                for seed in range(args.seeds):
                    results.append(
                        await one_study(provider, args.strategy, task, args.budget, seed, Path(tmp), args.history)
                    )
        name = f"{provider.name} ({provider.model})"
    print(
        f"strategy {args.strategy}, provider {name}, history {args.history}, budget {args.budget}, "
        f"{args.seeds} seed(s); "
        f"wall time {time.perf_counter() - started:.0f} s (model load included)\n"
    )
    print(
        f"{'task':24} {'rounds':>6} {'median s':>9} {'p95 s':>7} {'calls/round':>11} {'prompt tok':>10} "
        f"{'output tok':>10} {'reasked':>8} {'fallback':>8}"
    )
    for task in args.tasks.split(","):
        rounds = [r for res in results if res["task"] == task for r in res["rounds"]]
        secs = [r["seconds"] for r in rounds]
        print(
            f"{task:24} {len(rounds):6d} {statistics.median(secs):9.2f} {_percentile(secs, 0.95):7.2f} "
            f"{statistics.mean(r['calls'] for r in rounds):11.2f} {statistics.mean(r['prompt'] for r in rounds):10.0f} "
            f"{statistics.mean(r['completion'] for r in rounds):10.0f} "
            f"{sum(r['reasks'] > 0 for r in rounds) / len(rounds):8.0%} "
            f"{sum(r['fallback'] for r in rounds) / len(rounds):8.0%}"
        )


if __name__ == "__main__":
    anyio.run(main)
