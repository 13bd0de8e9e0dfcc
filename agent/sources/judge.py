"""The model's part in learning from an earlier study: it reads the earlier study beside the new task and says
whether it is relevant and how its parameters map (``prompts/map_source.j2``, the :class:`~agent.sources.
map_study.MapStudy` tool, validated and reasked like every answer). One call per source (plus reasks), at
temperature 0: a judgment, not an exploration. An earlier study that recorded no description (a plain Optuna
study) is shown as such: the model judges it by its parameters and their values alone."""

from __future__ import annotations

from dataclasses import dataclass

from agent.conversation import AgentSettings, ask_tool
from agent.events import EventSink
from agent.messages import ChatMessage, Part, Usage, UserPart
from agent.providers.base import Provider
from agent.records import short_value
from agent.space import SearchSpace
from agent.strategies.grid import relaxed_space
from agent.templates import Templates

from .map_study import MapStudy
from .mapping import SpaceMapping
from .reading import SourceStudy

__all__ = ["Judgment", "judge"]

_SHOWN = 3  # best trials shown: a small model reads every digit as a token
#: At temperature 0 a model answers a reask exactly as it answered before; a reask samples.
_REASK_TEMPERATURE = 0.7


@dataclass(frozen=True)
class Judgment:
    """The model's mapping, or None when its answers stayed invalid; what was said and what it cost."""

    mapping: SpaceMapping | None
    parts: tuple[Part, ...]
    usage: tuple[Usage, ...]
    reasks: int
    #: Why there is no mapping (the last errors), for the study's record.
    reason: str | None = None


async def judge(
    provider: Provider,
    source: SourceStudy,
    *,
    description: str,
    space: SearchSpace,
    templates: Templates,
    settings: AgentSettings,
    events: EventSink | None = None,
    seed: int = 0,
) -> Judgment:
    """Ask the model about ``source`` for a study of ``space`` described by ``description``."""
    tool = MapStudy(source, space)
    shown, old_shown = relaxed_space(space), relaxed_space(source.space)  # grids as the ranges they span
    goal = "highest" if source.direction == "maximize" else "lowest"
    old_names = list(source.space.params)
    best = [
        ", ".join(f"{n}={short_value(config[n])}" for n in old_names) + f" -> {value:.4g}"
        for config, value in source.best(_SHOWN)
    ]
    prompt = templates.render(
        "map_source",
        new={
            "description": description,
            "params": [{"name": n, "domain": shown.describe_param(n)} for n in space.params],
        },
        old={
            "name": source.name,
            "description": source.description if source.described else None,
            "params": [{"name": n, "domain": old_shown.describe_param(n)} for n in old_names],
            "goal": goal,
            "best": best,
        },
        tool=tool.name,
    )
    system = templates.render("system", tools=[{"name": tool.name, "description": tool.description, "example": ""}])
    answer = await ask_tool(
        provider,
        [ChatMessage(role="system", content=system), ChatMessage(role="user", content=prompt)],
        tool,
        templates=templates,
        max_retries=settings.max_retries,
        temperature=0.0,
        reask_temperature=_REASK_TEMPERATURE,
        max_tokens=settings.max_tokens,
        seed=seed,
        events=events,
    )
    parts = (UserPart(content=prompt), *answer.parts)
    if answer.arguments is None:
        errors = "; ".join(f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in answer.errors[:3])
        reason = f"no valid mapping after {answer.reasks} reasks ({errors})"
        return Judgment(None, parts, tuple(answer.usage), answer.reasks, reason)
    return Judgment(tool.accepted, parts, tuple(answer.usage), answer.reasks)
