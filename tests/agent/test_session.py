"""Tests for agent/session.py: a study assembled in one place, learning from earlier studies (real SQLite studies,
a scripted model, and the embedded one)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import optuna
import pytest

from agent.errors import UserError
from agent.providers.scripted import ScriptedProvider
from agent.session import StudyConfig, run_study
from agent.strategies.base import BuildContext, Strategy, StrategySpec
from agent.strategies.baselines import RandomStrategy
from agent.study import study_records
from agent.tasks import build_task
from agent.tasks.variants import HPOBENCH_RENAMED, renamed

pytestmark = pytest.mark.anyio
RIGHT = {new: old for old, new in HPOBENCH_RENAMED.items()}


async def earlier(tmp_path: Path, task: str = "hpobench-car", budget: int = 12) -> Path:
    save = tmp_path / f"earlier-{task}"
    config = StudyConfig(task=build_task(task, seed=5), strategy="random", budget=budget, seed=5, save_dir=save)
    await run_study(config, say=lambda line: None)
    return save


def load(save: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{save / 'study.db'}")


async def test_bo_opens_with_the_sources_best_and_weighs_them_then_a_resume_goes_on(tmp_path: Path) -> None:
    source = await earlier(tmp_path)
    save = tmp_path / "kc1"
    config = StudyConfig(
        task=build_task("hpobench-kc1"), strategy="bo", budget=6, save_dir=save, learn_from=(str(source),)
    )
    summary = await run_study(config, say=lambda line: None)
    assert summary.learned_from == ("S1 hpobench-car-random-seed5: the same space, used as it is (12 trials)",)
    study = load(save, "hpobench-kc1-bo-seed0")
    records = study_records(study)
    assert [r.source for r in records] == ["transfer"] + ["surrogate"] * 5, "one source: one opener"
    car_best = {
        json.dumps(c, sort_keys=True) for c in [t.params for t in load(source, "hpobench-car-random-seed5").trials]
    }
    assert json.dumps(records[0].config, sort_keys=True) in car_best, "an opener is one of the source's trials"
    weights = records[-1].proposal.decision["weights"]
    assert set(weights) == {"S1 hpobench-car-random-seed5", "target"} and sum(weights.values()) == pytest.approx(
        1, abs=0.01
    )
    assert study.user_attrs["experience_complete"] is True

    again = StudyConfig(task=build_task("hpobench-kc1"), strategy="bo", budget=8, save_dir=save)  # no --learn-from
    await run_study(again, say=lambda line: None)
    records = study_records(load(save, "hpobench-kc1-bo-seed0"))
    assert len(records) == 8 and [r.source for r in records[6:]] == ["surrogate", "surrogate"]
    assert "weights" in records[-1].proposal.decision, "the resumed study still learns from its sources"


async def test_a_source_that_is_no_storage_stops_before_anything_is_made(tmp_path: Path) -> None:
    save = tmp_path / "s"
    config = StudyConfig(
        task=build_task("toy-branin"), strategy="random", save_dir=save, learn_from=(str(tmp_path / "x"),)
    )
    with pytest.raises(UserError, match="--learn-from .*x: no such file or folder"):
        await run_study(config)
    assert not save.exists()


async def test_the_default_strategy_has_its_model_map_another_space_and_asks_it_nothing_else(tmp_path: Path) -> None:
    source = await earlier(tmp_path)
    task = renamed(build_task("hpobench-kc1"), HPOBENCH_RENAMED)
    provider = ScriptedProvider(
        [json.dumps({"tool": "map_study", "arguments": {"relevant": True, "parameters": RIGHT}})]
    )
    save = tmp_path / "renamed"
    config = StudyConfig(task=task, strategy="llm-bo", budget=5, save_dir=save, learn_from=(str(source),))
    summary = await run_study(config, provider=provider, say=lambda line: None)
    assert len(provider.calls) == 1, "one mapping call; the openers replace the model's first guess"
    assert summary.llm_calls == 1, "the summary's LLM usage counts the mapping call (issue 25 item 8)"
    assert "mapped by the model: n_units <- width, init_lr <- learning_rate_init" in summary.learned_from[0]
    records = study_records(load(save, "hpobench-kc1-renamed-llm-bo-seed0"))
    assert [r.source for r in records] == ["transfer"] + ["surrogate"] * 4
    assert set(records[0].config) == set(task.space.params)


async def test_a_sampler_strategy_opens_with_them_too(tmp_path: Path) -> None:
    source = await earlier(tmp_path)
    save = tmp_path / "tpe"
    config = StudyConfig(
        task=build_task("hpobench-kc1"), strategy="tpe", budget=5, save_dir=save, learn_from=(str(source),)
    )
    await run_study(config, say=lambda line: None)
    records = study_records(load(save, "hpobench-kc1-tpe-seed0"))
    assert [r.source for r in records] == ["transfer"] + ["sampler"] * 4


@pytest.mark.slow
@pytest.mark.embedded
async def test_the_embedded_model_maps_a_renamed_space_or_leaves_the_source_out(
    tmp_path: Path, needs_xllamacpp: None
) -> None:
    """The real model reads a car study beside kc1 under other names and maps it, every pairing right (with
    seed 0 it leaves the L2 penalty out; measured: n_units <- width, init_lr <- learning_rate_init,
    n_layers <- depth, bs <- batch_size); the openers come from it."""
    source = await earlier(tmp_path)
    task = renamed(build_task("hpobench-kc1"), HPOBENCH_RENAMED)
    save = tmp_path / "renamed"
    config = StudyConfig(task=task, strategy="llm-bo", budget=4, save_dir=save, learn_from=(str(source),))
    summary = await run_study(config, say=lambda line: None)
    study = load(save, "hpobench-kc1-renamed-llm-bo-seed0")
    (decision,) = study.user_attrs["experience"]
    assert decision["how"] == "mapped", decision["note"]
    mapped = {new: old for new, old in decision["mapping"]["params"].items() if old is not None}
    assert {new: old for new, old in mapped.items() if RIGHT[new] != old} == {}, mapped
    assert {"n_units", "init_lr", "n_layers", "bs"} <= set(mapped), mapped
    assert [r.source for r in study_records(study)][:1] == ["transfer"], "one source: one opener"
    assert summary.n_trials == 4


# ---- one assembler --------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
#: What assembles a study or a strategy by hand, bypassing the session: calls of these...
_ASSEMBLY = {"optimize", "StudyLoop", "make_strategy", "gather"}
#: ... and opening a study's store (``StudyStore.attach``, a view of a study Optuna runs, is not assembling).
_OPENING = ("StudyStore", "open")


def _assembled(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in _ASSEMBLY:
            found.append(f"{func.id}()")
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            if (func.value.id, func.attr) == _OPENING:
                found.append("StudyStore.open()")
    return found


#: What a module may call by hand, and why: the mapping bench measures the model's mapping decisions alone,
#: with no study to assemble.
_EXEMPT = {"transfer_mapping.py": ["gather()"]}


@pytest.mark.parametrize("path", [ROOT / "agent" / "sampler.py", *sorted((ROOT / "benchmarks").glob("*.py"))])
def test_the_sampler_and_every_benchmark_assemble_through_the_session(path: Path) -> None:
    assert _assembled(path) == _EXEMPT.get(path.name, [])


async def test_a_strategy_of_the_callers_own_runs_through_the_session(tmp_path: Path) -> None:
    """A benchmark's variant of a strategy (a spec of its own, not in the registry) gets the study the CLI gets."""
    built: list[BuildContext] = []

    def build(ctx: BuildContext) -> Strategy:
        built.append(ctx)
        return RandomStrategy()

    spec = StrategySpec(name="variant", summary="a benchmark's variant", build=build)
    config = StudyConfig(task=build_task("toy-branin"), strategy=spec, budget=3, save_dir=tmp_path)
    summary = await run_study(config, say=lambda line: None)
    assert summary.n_trials == 3 and len(built) == 1 and built[0].budget == 3
    study = load(tmp_path, "toy-branin-variant-seed0")
    assert study.user_attrs["strategy"] == "variant" and len(study.trials) == 3
