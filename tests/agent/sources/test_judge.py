"""Tests for agent/sources/judge.py: the question the model is asked about an earlier study, and its answer as a
typed mapping; on the embedded model, the issue's case of one earlier parameter given to two new ones."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import pytest

from agent.conversation import AgentSettings
from agent.messages import ChatMessage
from agent.providers.base import Completion, Provider
from agent.providers.embedded import EmbeddedProvider, EmbeddedServer
from agent.providers.scripted import ScriptedProvider
from agent.sources.judge import judge
from agent.sources.mapping import SpaceMapping
from agent.sources.reading import SourceStudy, locate, read_sources
from agent.templates import Templates

from .test_mapping import KC1, KC1_SOURCE, RENAMED, RIGHT

pytestmark = pytest.mark.anyio


def plain_study(folder: Path) -> SourceStudy:
    """A plain Optuna study tuning ``lr`` (no description, no task recorded), as issue 25 item 5 found it."""
    folder.mkdir()
    study = optuna.create_study(
        study_name="plain", storage=f"sqlite:///{folder / 'plain.db'}", sampler=optuna.samplers.RandomSampler(seed=0)
    )
    study.optimize(lambda t: (math.log10(t.suggest_float("lr", 1e-5, 1.0, log=True)) + 2.5) ** 2 / 10 + 0.1, 20)
    (source,), _ = read_sources([locate(str(folder / "plain.db"))])
    return source


async def ask(provider: Provider, source: SourceStudy, task: Any = KC1) -> Any:
    return await judge(
        provider,
        source,
        description=task.description,
        space=task.space,
        templates=Templates(),
        settings=AgentSettings(),
    )


async def test_the_model_is_shown_both_studies_and_its_answer_is_a_typed_mapping() -> None:
    provider = ScriptedProvider(
        [json.dumps({"tool": "map_study", "arguments": {"relevant": True, "parameters": RIGHT}})]
    )
    judgment = await ask(provider, KC1_SOURCE, RENAMED)
    assert judgment.mapping == SpaceMapping(relevant=True, params=RIGHT) and judgment.reasks == 0
    (call,) = provider.calls
    prompt = call.messages[-1].content
    assert "Earlier study: an earlier study\n" in prompt and "init_lr: a number in [1e-5, 1], log scale" in prompt
    assert "alpha=1e-6, batch_size=64" in prompt, "its best trials"
    assert "alpha and learning_rate_init both from lr is wrong" in prompt and "n_units_1 and n_units_2" in prompt
    assert call.temperature == 0.0 and call.json_schema is not None


async def test_a_source_without_a_description_is_judged_on_its_space_alone(tmp_path: Path) -> None:
    source = plain_study(tmp_path / "plain")
    assert not source.described
    answer = {
        "relevant": True,
        "parameters": {n: "lr" if n == "learning_rate_init" else "none" for n in KC1.space.params},
    }
    provider = ScriptedProvider([json.dumps({"tool": "map_study", "arguments": answer})])
    judgment = await ask(provider, source)
    prompt = provider.calls[0].messages[-1].content
    assert "Earlier study: plain, with no description: judge it by its parameters and their values alone." in prompt
    assert "study plain" not in prompt, "its name is no description"
    assert judgment.mapping is not None and judgment.mapping.mapped == ["learning_rate_init"]


async def test_answers_that_stay_invalid_are_a_judgment_without_a_mapping_saying_why() -> None:
    wrong = json.dumps({"tool": "map_study", "arguments": {"relevant": True, "parameters": {**RIGHT, "bs": "alpha"}}})
    provider = ScriptedProvider([wrong] * 4)
    judgment = await ask(provider, KC1_SOURCE, RENAMED)
    assert judgment.mapping is None and judgment.reasks == 3 and len(judgment.usage) == 4
    assert (
        judgment.reason is not None and "no valid mapping after 3 reasks (arguments.parameters.bs:" in judgment.reason
    )
    assert [c.temperature for c in provider.calls] == [0.0, 0.7, 0.7, 0.7], "a reask samples"


# ---- the embedded model ------------------------------------------------------------------------------


class FirstAnswer(Provider):
    """Answers the first call with ``first`` (what the model once answered), and every later one with ``inner``."""

    def __init__(self, first: str, inner: Provider) -> None:
        self.first, self.inner = first, inner
        self.name, self.model = inner.name, inner.model
        self.answers: list[str] = []

    async def complete(self, messages: Sequence[ChatMessage], **options: Any) -> Completion:
        if not self.answers:
            completion = Completion(text=self.first, usage=(await self.inner.complete(messages, **options)).usage)
        else:
            completion = await self.inner.complete(messages, **options)
        self.answers.append(completion.text)
        return completion


@pytest.mark.slow
@pytest.mark.embedded
async def test_the_embedded_model_maps_lr_to_learning_rate_init_alone(
    tmp_path: Path, embedded_server: EmbeddedServer
) -> None:
    """Issue 25, item 5: a plain Optuna study tuning lr was mapped as alpha <- lr, learning_rate_init <- lr."""
    source = plain_study(tmp_path / "plain")
    async with EmbeddedProvider(server=embedded_server) as model:
        judgment = await ask(model, source)
        assert judgment.mapping is not None, judgment.reason
        assert [new for new, old in judgment.mapping.params.items() if old == "lr"] == ["learning_rate_init"]
        # The answer the issue saw, then the reask to the real model: it gives lr to the one it is.
        shared = {n: "lr" if n in ("alpha", "learning_rate_init") else "none" for n in KC1.space.params}
        first = json.dumps({"tool": "map_study", "arguments": {"relevant": True, "parameters": shared}})
        replayed = FirstAnswer(first, model)
        reasked = await ask(replayed, source)
    assert reasked.reasks >= 1 and "you gave lr to both" in reasked.parts[2].content
    assert reasked.mapping is not None, reasked.reason
    assert [new for new, old in reasked.mapping.params.items() if old == "lr"] == ["learning_rate_init"], (
        replayed.answers
    )
