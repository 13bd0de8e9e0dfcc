"""The model's mapping decisions alone, measured: what the ``renamed`` arm of ``benchmarks/transfer.py`` asks,
without running the studies, plus a case whose ranges differ.

    python benchmarks/transfer_mapping.py --out runs/transfer-mapping
    python benchmarks/transfer_mapping.py --out runs/transfer-mapping --cases ranges

Sources: one 30-trial ``bo`` study of each HPOBench table (seed 1000, as ``benchmarks/transfer.py`` makes them).
Cases, each a target space and the sources it learns from, decided by :func:`agent.sources.experience.gather`
(the path a study takes):

- ``renamed``: each of the 7 target tables under other parameter names and order
  (:data:`agent.tasks.variants.HPOBENCH_RENAMED`), learning from the 7 other tables: 49 mapping questions,
  each of 5 parameters with one right answer;
- ``ranges``: an MLP whose space is the digits example's (``learning_rate`` 1e-4..0.3, ``l2_penalty`` 1e-6..0.1,
  ``hidden`` 8..256, ``batch_size`` 32..256) under other names, learning from each of the 8 tables (whose
  ``learning_rate_init`` spans 1e-5..1, ``alpha`` 1e-8..1): the same hyperparameters over other ranges.

Each parameter of a mapped source is counted as mapped right (the true earlier parameter, no scale), left
unmapped, or mapped wrong; sources by how they entered. ``OUT/mapping.db`` keeps the sources, ``OUT/<case>.json``
every decision as stored. Uses whatever provider AGENT_PROVIDER names (the embedded model by default).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import anyio  # noqa: E402
import optuna  # noqa: E402

from agent.conversation import AgentSettings  # noqa: E402
from agent.providers.base import Provider  # noqa: E402
from agent.session import ModelSettings, StudyConfig, open_model, run_study  # noqa: E402
from agent.sources.experience import gather  # noqa: E402
from agent.sources.reading import locate  # noqa: E402
from agent.space import SearchSpace  # noqa: E402
from agent.tasks import build_task  # noqa: E402
from agent.tasks.variants import HPOBENCH_RENAMED, renamed  # noqa: E402
from agent.templates import Templates  # noqa: E402

HPOBENCH = [
    "hpobench-australian",
    "hpobench-blood_transfusion",
    "hpobench-car",
    "hpobench-credit_g",
    "hpobench-kc1",
    "hpobench-phoneme",
    "hpobench-segment",
    "hpobench-vehicle",
]
TARGETS = [t for t in HPOBENCH if t != "hpobench-car"]  # as benchmarks/transfer.py
SOURCE_SEED = 1000
HORIZON = 30
CASES = ("renamed", "ranges")

#: The ``ranges`` case: the digits example's MLP under other names, and which HPOBench parameter each one is.
RANGES_SPACE = {
    "lr": {"type": "float", "low": 1e-4, "high": 0.3, "log": True},
    "l2_penalty": {"type": "float", "low": 1e-6, "high": 0.1, "log": True},
    "hidden": {"type": "int", "low": 8, "high": 256, "log": True},
    "batch_size": {"type": "categorical", "choices": [32, 64, 128, 256]},
}
RANGES_TRUTH = {"lr": "learning_rate_init", "l2_penalty": "alpha", "hidden": "width", "batch_size": "batch_size"}
RANGES_DESCRIPTION = (
    "A neural network with one hidden layer (scikit-learn's MLPClassifier, Adam, 10 epochs) classifying 8x8 images "
    "of handwritten digits; the value is the error rate on a held-out validation split."
)


async def make_sources(out: Path) -> dict[str, Path]:
    """One 30-trial ``bo`` study of each HPOBench table, in a folder of its own (skipped when done)."""
    folders = {}
    for name in HPOBENCH:
        folder = out / "sources" / name
        folders[name] = folder
        if (folder / "study.db").is_file():
            continue
        task = build_task(name, seed=SOURCE_SEED)
        config = StudyConfig(task=task, strategy="bo", budget=HORIZON, seed=SOURCE_SEED, save_dir=folder, checks=False)
        await run_study(config, say=lambda line: None)
    return folders


def questions(case: str, folders: dict[str, Path]) -> list[tuple[str, str, SearchSpace, list[str], dict[str, str]]]:
    """(target, its description, its space, its sources, the truth: new parameter -> earlier one)."""
    out = []
    if case == "renamed":
        truth = {new: old for old, new in HPOBENCH_RENAMED.items()}
        for target in TARGETS:
            task = renamed(build_task(target, seed=0), HPOBENCH_RENAMED)
            sources = [str(folders[t]) for t in HPOBENCH if t != target]
            out.append((task.name, task.description, task.space, sources, truth))
    else:
        space = SearchSpace.from_dict(RANGES_SPACE)
        out.append(("digits-mlp", RANGES_DESCRIPTION, space, [str(folders[t]) for t in HPOBENCH], RANGES_TRUTH))
    return out


async def decide(case: str, folders: dict[str, Path], provider: Provider) -> list[dict[str, Any]]:
    """Every decision of ``case``, as stored, each with its target."""
    decisions = []
    for target, description, space, sources, truth in questions(case, folders):
        meta: dict[str, Any] = {}

        def set_meta(key: str, value: Any, meta: dict[str, Any] = meta) -> None:
            meta[key] = json.loads(json.dumps(value))

        began = time.perf_counter()
        await gather(
            [locate(s) for s in sources],
            meta=meta,
            set_meta=set_meta,
            exclude=("sqlite:///nowhere", "this"),
            description=description,
            space=space,
            provider=provider,
            settings=AgentSettings(),
            templates=Templates(),
            say=lambda line: None,
        )
        for d in meta.get("experience") or []:
            decisions.append({"target": target, "truth": truth, **d})
        print(f"{case} {target}: {time.perf_counter() - began:.0f} s", flush=True)
    return decisions


def count(decisions: list[dict[str, Any]]) -> dict[str, Any]:
    """Sources by how they entered; parameters of the mapped ones right, unmapped, wrong (as transfer.py counts)."""
    hows: dict[str, int] = {}
    right = unmapped = wrong = calls = 0
    for d in decisions:
        hows[d["how"]] = hows.get(d["how"], 0) + 1
        calls += int(d.get("calls", 0))
        if d["how"] != "mapped" or not d.get("mapping"):
            continue
        for new, old in d["mapping"]["params"].items():
            scaled = float(d["mapping"].get("scale", {}).get(new, 1.0)) != 1.0
            if old is None:
                unmapped += 1
            elif old == d["truth"].get(new) and not scaled:
                right += 1
            else:
                wrong += 1
    return {"sources": hows, "right": right, "unmapped": unmapped, "wrong": wrong, "calls": calls}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/transfer-mapping"))
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--provider", default=None)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if unknown := sorted(set(cases) - set(CASES)):
        parser.error(f"unknown cases {unknown}; choose from {', '.join(CASES)}")
    args.out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folders = await make_sources(args.out)
    async with open_model(ModelSettings(provider=args.provider, model=args.model)) as provider:
        for case in cases:
            decisions = await decide(case, folders, provider)
            (args.out / f"{case}.json").write_text(json.dumps(decisions, indent=1))
            counts = count(decisions)
            total = counts["right"] + counts["unmapped"] + counts["wrong"]
            print(
                f"{case}: sources {counts['sources']}; parameters of the mapped sources: {counts['right']} mapped "
                f"right, {counts['unmapped']} left unmapped, {counts['wrong']} mapped wrong (of {total}); "
                f"{counts['calls']} calls",
                flush=True,
            )


if __name__ == "__main__":
    anyio.run(main)
