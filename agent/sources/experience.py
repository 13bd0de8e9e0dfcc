"""What a study learns from earlier studies, decided once and kept with the study.

:func:`gather` reads the sources ``--learn-from`` names (:mod:`agent.sources.reading`), and for each (studies
that tuned the same thing pooled) decides how it enters the new study: a source with the same space as it
is; any other mapped by the model (:mod:`agent.sources.judge`) when the strategy has one, and left out when it
has none, when the model judges it not relevant, or when its mapping stays invalid after the reasks. Each
decision is stored on the study as it is made (the study attribute ``experience``: the mapping, the
conversation, and the source's trials in the new space's terms), with the sources themselves
(``learn_from``), so a resumed study asks nothing again, reads nothing again, and learns from exactly what it
learned from before, whatever happened to the sources since.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agent.conversation import AgentSettings, EventSink
from agent.errors import ProviderUnavailable, UserError
from agent.messages import dump_parts
from agent.providers.base import Provider
from agent.records import SourceData
from agent.space import SearchSpace
from agent.templates import Templates

from .judge import judge
from .mapping import Mapping, apply, identity
from .reading import SourceStudy, read_sources

__all__ = ["Decision", "Experience", "gather", "sources_of"]

How = Literal["identical", "mapped", "not relevant", "maps nothing", "invalid mapping", "no model"]
_LEARN_FROM = "learn_from"
_EXPERIENCE = "experience"
_COMPLETE = "experience_complete"


@dataclass(frozen=True)
class Decision:
    """How one source (studies that tuned the same thing) enters the study."""

    key: str
    studies: tuple[str, ...]
    label: str
    how: How
    mapping: Mapping | None = None
    data: SourceData | None = None
    note: str = ""
    #: What the model was told and answered (empty when it was not asked).
    conversation: list[dict[str, Any]] = field(default_factory=list)
    calls: int = 0

    @property
    def used(self) -> bool:
        return self.data is not None

    def line(self) -> str:
        """One line for the user."""
        trials = f" ({len(self.data.values)} trials)" if self.data is not None else ""
        return f"{self.label}: {self.note}{trials}"

    def to_dict(self) -> dict[str, Any]:
        data = None
        if self.data is not None:
            data = {
                "configs": list(self.data.configs),
                "values": list(self.data.values),
                "direction": self.data.direction,
            }
        return {
            "key": self.key,
            "studies": list(self.studies),
            "label": self.label,
            "how": self.how,
            "mapping": None if self.mapping is None else self.mapping.to_dict(),
            "note": self.note,
            "data": data,
            "conversation": self.conversation,
            "calls": self.calls,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Decision:
        data = None
        if d.get("data"):
            raw = d["data"]
            data = SourceData(d["label"], tuple(raw["configs"]), tuple(raw["values"]), raw["direction"])
        mapping = Mapping.from_dict(d["mapping"]) if d.get("mapping") else None
        return cls(
            d["key"],
            tuple(d["studies"]),
            d["label"],
            d["how"],
            mapping,
            data,
            d.get("note", ""),
            list(d.get("conversation") or []),
            int(d.get("calls", 0)),
        )


@dataclass(frozen=True)
class Experience:
    """The study's sources (storage URLs) and what it decided about each."""

    sources: tuple[str, ...]
    decisions: tuple[Decision, ...]

    @property
    def data(self) -> list[SourceData]:
        """The sources' trials in the study's terms, for the optimizer."""
        return [d.data for d in self.decisions if d.data is not None]

    def lines(self) -> list[str]:
        return [d.line() for d in self.decisions]


def sources_of(meta: dict[str, Any]) -> tuple[str, ...]:
    """The sources a study recorded (empty: it learns from none)."""
    return tuple(meta.get(_LEARN_FROM) or ())


async def gather(
    sources: Sequence[str],
    *,
    meta: dict[str, Any],
    set_meta: Callable[[str, Any], None],
    exclude: tuple[str, str],
    description: str,
    space: SearchSpace,
    provider: Provider | None,
    settings: AgentSettings,
    templates: Templates,
    describe: Callable[[str], str] | None = None,
    events: EventSink | None = None,
    say: Callable[[str], None] = print,
) -> Experience:
    """Decide (or read back) how each source enters the study; see the module docstring. ``sources`` are
    storage URLs (:func:`~agent.sources.reading.locate`); ``exclude`` is this study (storage URL, name)."""
    recorded = sources_of(meta)
    if recorded and sources and tuple(sources) != recorded:
        raise UserError(
            f"this study learns from {', '.join(recorded)}; run it again without --learn-from (it keeps its "
            "sources), or start a new study (--save_dir or --study-name) to learn from others"
        )
    sources = tuple(sources) or recorded
    if not sources:
        return Experience((), ())
    stored = {d["key"]: Decision.from_dict(d) for d in meta.get(_EXPERIENCE) or []}
    if meta.get(_COMPLETE):
        return Experience(sources, tuple(stored.values()))
    set_meta(_LEARN_FROM, list(sources))
    studies, notes = read_sources(sources, exclude=exclude, describe=describe)
    for note in notes:
        say(f"learn from: {note}")
    decisions: list[Decision] = []
    complete = True
    for number, source in enumerate(studies, 1):
        key = _key(source)
        if key in stored:
            decisions.append(stored[key])
            continue
        decision = await _decide(
            source, key, f"S{number} {source.name}", description, space, provider, settings, templates, events
        )
        if decision is None:  # the model could not be reached: left out this run, asked again on resume
            complete = False
            say(f"learn from: S{number} {source.name}: left out for now, the model could not be reached")
            continue
        decisions.append(decision)
        stored[key] = decision
        set_meta(_EXPERIENCE, [d.to_dict() for d in stored.values()])
    if not studies:
        say("learn from: none of the sources has a finished trial; the study runs without them")
    set_meta(_COMPLETE, complete)
    return Experience(sources, tuple(decisions))


async def _decide(
    source: SourceStudy,
    key: str,
    label: str,
    description: str,
    space: SearchSpace,
    provider: Provider | None,
    settings: AgentSettings,
    templates: Templates,
    events: EventSink | None,
) -> Decision | None:
    same = identity(source.space, space)
    if same is not None:
        data = apply(same, source, space, label)
        return Decision(key, source.studies, label, "identical", same, data, "the same space, used as it is")
    if provider is None:
        note = "a different space and no model to map it (the strategies that ask one: llm-bo, hybrid); left out"
        return Decision(key, source.studies, label, "no model", note=note)
    try:
        answer = await judge(
            provider,
            source,
            description=description,
            space=space,
            templates=templates,
            settings=settings,
            events=events,
        )
    except ProviderUnavailable:
        return None
    said = dump_parts(answer.parts)
    calls = len(answer.usage)
    if answer.mapping is None:
        note = f"the model's mapping stayed invalid, left out: {answer.reason}"
        return Decision(key, source.studies, label, "invalid mapping", note=note, conversation=said, calls=calls)
    mapping = answer.mapping
    if not mapping.relevant:
        note = "judged not relevant by the model; left out"
        return Decision(key, source.studies, label, "not relevant", mapping, None, note, said, calls)
    data = apply(mapping, source, space, label)
    if data is None:
        note = "the model mapped none of its parameters (or none of its trials); left out"
        return Decision(key, source.studies, label, "maps nothing", mapping, None, note, said, calls)
    shown = ", ".join(
        f"{new} <- {old}{'' if new not in mapping.scale else f' x {mapping.scale[new]:g}'}"
        for new, old in mapping.params.items()
        if old is not None
    )
    return Decision(key, source.studies, label, "mapped", mapping, data, f"mapped by the model: {shown}", said, calls)


def _key(source: SourceStudy) -> str:
    """What identifies a source across runs: what it tuned (the studies it pools may grow)."""
    text = f"{source.description}\n{source.space.model_dump_json()}\n{source.direction}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]
