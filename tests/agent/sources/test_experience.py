"""Tests for agent/sources/experience.py: each source decided once, stored with the study, never asked again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.conversation import AgentSettings
from agent.errors import ProviderUnavailable, UserError
from agent.providers.scripted import ScriptedProvider
from agent.sources.experience import gather
from agent.sources.reading import locate
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
