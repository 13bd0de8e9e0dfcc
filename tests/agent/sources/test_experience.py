"""Tests for agent/sources/experience.py: each source decided once, stored with the study, never asked again."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import optuna
import pytest

from agent.conversation import AgentSettings
from agent.errors import ProviderUnavailable, UserError
from agent.providers.scripted import ScriptedProvider
from agent.report import write_study_report
from agent.session import StudyConfig, run_study
from agent.sources.experience import dump_decisions, gather, load_decisions
from agent.sources.reading import locate, read_sources
from agent.space import SearchSpace
from agent.tasks import build_task
from agent.tasks.variants import HPOBENCH_RENAMED, renamed
from agent.templates import Templates

from .conftest import Run

pytestmark = pytest.mark.anyio
KC1 = build_task("hpobench-kc1")
RENAMED = renamed(KC1, HPOBENCH_RENAMED)
RIGHT = {new: old for old, new in HPOBENCH_RENAMED.items()}


class Meta(dict[str, Any]):
    """A study's attributes, as the store keeps them (JSON round trip)."""

    def set(self, key: str, value: Any) -> None:
        self[key] = json.loads(json.dumps(value))


def mapping(relevant: bool = True, parameters: dict[str, str] | None = None) -> str:
    arguments = {"relevant": relevant, "parameters": parameters or RIGHT}
    return json.dumps({"tool": "map_study", "arguments": arguments})


async def gather_for(task: Any, sources: list[str], meta: Meta, provider: Any, lines: list[str] | None = None) -> Any:
    return await gather(
        [locate(s) for s in sources],
        meta=meta,
        set_meta=meta.set,
        exclude=("sqlite:///nowhere", "this"),
        description=task.description,
        space=task.space,
        provider=provider,
        settings=AgentSettings(),
        templates=Templates(),
        say=(lines if lines is not None else []).append,
    )


async def test_a_source_of_the_same_space_is_used_as_it_is_without_a_model(earlier: Run) -> None:
    folder = await earlier("hpobench-car", "car", budget=6)
    meta = Meta()
    experience = await gather_for(KC1, [str(folder)], meta, provider=None)
    (decision,) = experience.decisions
    assert decision.how == "identical" and decision.calls == 0
    assert len(experience.data) == 1 and len(experience.data[0].values) == 6
    assert meta["learn_from"] == [locate(str(folder))] and meta["experience_complete"] is True


async def test_the_model_maps_another_space_once_and_a_resume_asks_nothing(earlier: Run) -> None:
    folder = await earlier("hpobench-car", "car", budget=6)
    meta = Meta()
    provider = ScriptedProvider([mapping()])
    experience = await gather_for(RENAMED, [str(folder)], meta, provider)
    (decision,) = experience.decisions
    assert decision.how == "mapped" and decision.calls == 1
    assert set(experience.data[0].params) == set(RENAMED.space.params)
    assert provider.calls[0].temperature == 0.0
    prompt = provider.calls[0].messages[-1].content
    assert "init_lr" in prompt and "learning_rate_init" in prompt and "-> " in prompt, "both spaces, best trials"

    silent = ScriptedProvider([])  # a resume: every decision is read back, nothing asked or read again
    again = await gather_for(RENAMED, [], meta, silent)
    assert silent.calls == [] and again.sources == experience.sources
    assert again.data[0] == experience.data[0]


async def test_a_mapped_range_that_merely_differs_says_how_many_values_were_clipped(earlier: Run) -> None:
    """Issue 25 item 6, as the user reads it: the pairing is kept and the note counts the clipped values."""
    folder = await earlier("hpobench-car", "car", budget=8)
    narrow = SearchSpace.from_dict(
        {
            "lr": {"type": "float", "low": 1e-4, "high": 0.3, "log": True},
            "hidden": {"type": "int", "low": 8, "high": 256, "log": True},
        }
    )
    task = SimpleNamespace(description="an MLP", space=narrow)
    provider = ScriptedProvider([mapping(parameters={"lr": "learning_rate_init", "hidden": "width"})])
    experience = await gather_for(task, [str(folder)], Meta(), provider)
    (decision,) = experience.decisions
    (source,), _ = read_sources([locate(str(folder))])
    lr = sum(not 1e-4 <= float(c["learning_rate_init"]) <= 0.3 for c, _ in source.trials)  # type: ignore[arg-type]
    hidden = sum(not 8 <= float(c["width"]) <= 256 for c, _ in source.trials)  # type: ignore[arg-type]
    assert lr > 0 and hidden > 0, "the seed's draws lie outside both ranges"
    assert decision.how == "mapped"
    assert decision.note == (
        "mapped by the model: lr <- learning_rate_init, hidden <- width; "
        f"clipped into the new range: lr {lr} of 8, hidden {hidden} of 8"
    )
    assert all(narrow.validate_config(c) for c in experience.data[0].configs), "carried into the new range"


async def test_irrelevant_invalid_and_unmappable_sources_are_left_out_saying_why(earlier: Run) -> None:
    folder = await earlier("hpobench-car", "car", budget=6)
    lines: list[str] = []
    irrelevant = await gather_for(RENAMED, [str(folder)], Meta(), ScriptedProvider([mapping(relevant=False)]), lines)
    assert irrelevant.data == [] and irrelevant.decisions[0].how == "not relevant"
    wrong = {**RIGHT, "init_lr": "width"}
    invalid = await gather_for(RENAMED, [str(folder)], Meta(), ScriptedProvider([mapping(parameters=wrong)] * 4))
    assert invalid.data == [] and invalid.decisions[0].how == "invalid mapping"
    assert "outside init_lr's range" in invalid.decisions[0].note
    no_model = await gather_for(RENAMED, [str(folder)], Meta(), provider=None)
    assert no_model.data == [] and no_model.decisions[0].how == "no model"
    assert "no model to map it" in no_model.lines()[0]


async def test_an_unreachable_model_leaves_a_source_out_for_now_and_asks_again_later(earlier: Run) -> None:
    folder = await earlier("hpobench-car", "car", budget=6)

    def down(messages: Any) -> str:
        raise ProviderUnavailable("connection refused")

    meta = Meta()
    lines: list[str] = []
    first = await gather_for(RENAMED, [str(folder)], meta, ScriptedProvider([down]), lines)
    assert first.data == [] and meta["experience_complete"] is False
    assert any("could not be reached" in line for line in lines)
    second = await gather_for(RENAMED, [], meta, ScriptedProvider([mapping()]))
    assert len(second.data) == 1 and meta["experience_complete"] is True


async def test_other_sources_on_resume_are_refused(earlier: Run, tmp_path: Path) -> None:
    car = await earlier("hpobench-car", "car", budget=3)
    kc1 = await earlier("hpobench-kc1", "kc1", budget=3)
    meta = Meta()
    await gather_for(KC1, [str(car)], meta, None)
    with pytest.raises(UserError, match="run it again without --learn-from"):
        await gather_for(KC1, [str(kc1)], meta, None)


async def test_a_source_named_twice_counts_once(earlier: Run) -> None:
    """Issue 25, item 9: the same folder twice, or the folder and its study.db, read as "(+1 more)", twice the
    trials."""
    folder = await earlier("hpobench-car", "car", budget=6)
    meta = Meta()
    named = [str(folder), str(folder), str(folder / "study.db")]
    experience = await gather_for(KC1, named, meta, provider=None)
    (decision,) = experience.decisions
    assert decision.studies == (f"{locate(str(folder))}#hpobench-car-random-seed0",)
    assert len(experience.data[0].values) == 6 and "(+" not in decision.label
    assert meta["learn_from"] == [locate(str(folder))]
    again = await gather_for(KC1, [str(folder / "study.db"), str(folder)], meta, provider=None)
    assert again.sources == experience.sources, "the same sources, named otherwise, resume"


async def test_the_study_itself_as_a_source_is_said_to_be_itself(earlier: Run) -> None:
    """Issue 25, item 10: it said "none of the sources has a finished trial"."""
    folder = await earlier("hpobench-car", "car", budget=3)
    lines: list[str] = []
    experience = await gather(
        [locate(str(folder))],
        meta=Meta(),
        set_meta=Meta().set,
        exclude=(locate(str(folder)), "hpobench-car-random-seed0"),
        description=KC1.description,
        space=KC1.space,
        provider=None,
        settings=AgentSettings(),
        templates=Templates(),
        say=lines.append,
    )
    assert experience.decisions == ()
    assert any("is this study itself, which does not learn from itself" in line for line in lines), lines
    assert not any("finished trial" in line for line in lines), lines


async def test_each_question_to_the_model_is_announced_and_its_cost_counted(earlier: Run) -> None:
    """Issue 25, item 8: 20-35 s of mapping showed nothing, and its calls were missing from the LLM usage."""
    car = await earlier("hpobench-car", "car", budget=4)
    kc1 = await earlier("hpobench-kc1", "kc1", budget=4)
    meta = Meta()
    said: list[str] = []
    provider = ScriptedProvider([mapping(parameters={**RIGHT, "init_lr": "width"}), mapping(), mapping()])
    experience = await gather(
        [locate(str(car)), locate(str(kc1))],
        meta=meta,
        set_meta=meta.set,
        exclude=("sqlite:///nowhere", "this"),
        description=RENAMED.description,
        space=RENAMED.space,
        provider=provider,
        settings=AgentSettings(),
        templates=Templates(),
        say=lambda line: None,
        progress=said.append,
    )
    assert said == ["mapping S1 of 2 (hpobench-car-random-seed0)", "mapping S2 of 2 (hpobench-kc1-random-seed0)"]
    usage = experience.usage
    assert (usage.llm_calls, usage.reasks) == (3, 1)
    assert usage.prompt_tokens == sum(sum(len(m.content) for m in c.messages) // 4 for c in provider.calls), (
        "the scripted provider's usage: a token per 4 characters"
    )
    assert [d.usage.llm_calls for d in experience.decisions] == [2, 1]
    resumed = await gather_for(RENAMED, [], meta, ScriptedProvider([]))
    assert resumed.usage == usage, "read back from the stored conversations"


FIXTURE = Path(__file__).parent / "data" / "learned_study_fa91d4f.json"


def study_in_todays_format(folder: Path) -> dict[str, Any]:
    """A study that learned from a source, as main at fa91d4f stored it (``data/learned_study_fa91d4f.json``: the
    user attributes and trials of a renamed-kc1 ``llm-bo`` study learning from a car study, written by that
    code): rebuilt with plain Optuna into ``folder/study.db``."""
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    folder.mkdir(parents=True)
    study = optuna.create_study(study_name=data["study_name"], storage=f"sqlite:///{folder / 'study.db'}")
    for key, value in data["user_attrs"].items():
        study.set_user_attr(key, value)
    for t in data["trials"]:
        distributions = {k: optuna.distributions.json_to_distribution(v) for k, v in t["distributions"].items()}
        study.add_trial(
            optuna.trial.create_trial(
                params=t["params"], distributions=distributions, value=t["value"], user_attrs=t["user_attrs"]
            )
        )
    return data


async def test_a_study_stored_by_earlier_code_opens_resumes_reports_and_serves_as_a_source(tmp_path: Path) -> None:
    data = study_in_todays_format(tmp_path / "kc1")
    stored = data["user_attrs"]["experience"]
    assert dump_decisions(load_decisions(stored)) == stored, "the one codec reads and writes the stored format"
    (decision,) = load_decisions(stored)
    assert decision.mapping is not None and decision.mapping.params["init_lr"] == "learning_rate_init"
    assert decision.usage.llm_calls == 1 and decision.source_data is not None

    provider = ScriptedProvider([])  # the sources are gone; nothing is read or asked again
    config = StudyConfig(task=RENAMED, strategy="llm-bo", budget=6, seed=0, save_dir=tmp_path / "kc1", checks=False)
    summary = await run_study(config, provider=provider, say=lambda line: None)
    assert provider.calls == [] and summary.n_trials == 6 and summary.n_new == 2
    assert summary.learned_from == (f"{decision.label}: {decision.note} (5 trials)",)

    report = write_study_report(tmp_path / "kc1").read_text()
    assert "## Learned from" in report and "S1 hpobench-car-random-seed0" in report

    (source,), notes = read_sources([locate(str(tmp_path / "kc1"))])
    assert notes == [] and len(source.trials) == 6 and set(source.space.params) == set(RENAMED.space.params)


async def test_without_a_display_the_mapping_is_said(earlier: Run) -> None:
    folder = await earlier("hpobench-car", "car", budget=3)
    lines: list[str] = []
    await gather_for(RENAMED, [str(folder)], Meta(), ScriptedProvider([mapping()]), lines)
    assert lines == ["mapping S1 of 1 (hpobench-car-random-seed0) ..."]
