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
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter

from agent.conversation import AgentSettings
from agent.errors import ProviderUnavailable, UserError
from agent.events import EventSink
from agent.messages import AnswerPart, Part, ReaskPart
from agent.providers.base import Provider
from agent.records import Direction, SourceData, UsageTotals
from agent.space import Choice, SearchSpace
from agent.study.terms import LEARN_FROM, kept_sources
from agent.templates import Templates

from .judge import judge
from .mapping import SpaceMapping, apply, clipped, identity
from .reading import SourceStudy, canonical_url, read_sources

__all__ = ["Decision", "Experience", "dump_decisions", "gather", "load_decisions", "sources_of"]

How = Literal["identical", "mapped", "not relevant", "maps nothing", "invalid mapping", "no model"]
_EXPERIENCE = "experience"
_COMPLETE = "experience_complete"


class CarriedTrials(BaseModel):
    """A source's trials in the study's terms, as stored (:class:`~agent.records.SourceData` without its name)."""

    model_config = ConfigDict(frozen=True)

    configs: tuple[dict[str, Choice], ...]
    values: tuple[float, ...]
    direction: Direction


class Decision(BaseModel):
    """How one source (studies that tuned the same thing) enters the study, as the study stores it."""

    model_config = ConfigDict(frozen=True)

    key: str
    studies: tuple[str, ...]
    label: str
    how: How
    mapping: SpaceMapping | None = None
    note: str = ""
    data: CarriedTrials | None = None
    #: What the model was told and answered (empty when it was not asked).
    conversation: tuple[Part, ...] = ()
    calls: int = 0

    @property
    def used(self) -> bool:
        return self.data is not None

    @property
    def source_data(self) -> SourceData | None:
        """The trials for the optimizer, named by the source's label."""
        d = self.data
        return None if d is None else SourceData(self.label, d.configs, d.values, d.direction)

    @property
    def usage(self) -> UsageTotals:
        """What asking the model about this source cost (nothing when it was not asked)."""
        return _usage([self])

    def line(self) -> str:
        """One line for the user."""
        trials = f" ({len(self.data.values)} trials)" if self.data is not None else ""
        return f"{self.label}: {self.note}{trials}"


_DECISIONS = TypeAdapter(list[Decision])


def dump_decisions(decisions: Sequence[Decision]) -> list[dict[str, Any]]:
    """The decisions as the study attribute ``experience`` holds them (JSON values): the one codec."""
    dumped: list[dict[str, Any]] = _DECISIONS.dump_python(list(decisions), mode="json")
    return dumped


def load_decisions(data: Any) -> list[Decision]:
    """The decisions a study stored (:func:`dump_decisions`; studies written before it are read alike)."""
    return _DECISIONS.validate_python(data or [])


def _usage(decisions: Sequence[Decision]) -> UsageTotals:
    calls = prompt = completion = reasks = 0
    seconds = 0.0
    for d in decisions:
        answers = [p for p in d.conversation if isinstance(p, AnswerPart)]
        reasks += sum(isinstance(p, ReaskPart) for p in d.conversation)
        for u in (a.usage for a in answers if a.usage is not None):
            calls += 1
            prompt += u.prompt_tokens
            completion += u.completion_tokens
            seconds += u.latency_s
    return UsageTotals(
        llm_calls=calls,
        prompt_tokens=prompt,
        completion_tokens=completion,
        llm_seconds=round(seconds, 3),
        reasks=reasks,
    )


@dataclass(frozen=True)
class Experience:
    """The study's sources (storage URLs) and what it decided about each."""

    sources: tuple[str, ...]
    decisions: tuple[Decision, ...]

    @property
    def data(self) -> list[SourceData]:
        """The sources' trials in the study's terms, for the optimizer."""
        return [data for d in self.decisions if (data := d.source_data) is not None]

    @property
    def usage(self) -> UsageTotals:
        """The model's calls, tokens, seconds and reasks spent deciding (mapping) the sources, this run's and
        earlier runs' (a study's LLM usage counts them beside its trials')."""
        return _usage(self.decisions)

    def lines(self) -> list[str]:
        return [d.line() for d in self.decisions]


def sources_of(meta: dict[str, Any]) -> tuple[str, ...]:
    """The sources a study recorded (empty: it learns from none)."""
    return kept_sources(meta)


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
    progress: Callable[[str], None] | None = None,
) -> Experience:
    """Decide (or read back) how each source enters the study; see the module docstring. ``sources`` are
    storage URLs (:func:`~agent.sources.reading.locate`; one named twice counts once); ``exclude`` is this
    study (storage URL, name). ``say`` tells the user what was left out; ``progress`` is told ``mapping S2 of 7
    (NAME)`` before each question to the model, which takes seconds (without it, ``say`` says it)."""
    recorded = _distinct(sources_of(meta))
    given = _distinct(sources)
    if recorded and given and [canonical_url(u) for u in given] != [canonical_url(u) for u in recorded]:
        raise UserError(
            f"this study learns from {', '.join(recorded)}; run it again without --learn-from (it keeps its "
            "sources), or start a new study (--save_dir or --study-name) to learn from others"
        )
    sources = given or recorded
    if not sources:
        return Experience((), ())
    stored = {d.key: d for d in load_decisions(meta.get(_EXPERIENCE))}
    if meta.get(_COMPLETE):
        return Experience(sources, tuple(stored.values()))
    set_meta(LEARN_FROM, list(sources))
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
        if provider is not None and identity(source.space, space) is None:
            text = f"mapping S{number} of {len(studies)} ({source.name})"
            if progress is not None:
                progress(text)
            else:
                say(f"{text} ...")
        decision = await _decide(
            source, key, f"S{number} {source.name}", description, space, provider, settings, templates, events
        )
        if decision is None:  # the model could not be reached: left out this run, asked again on resume
            complete = False
            say(f"learn from: S{number} {source.name}: left out for now, the model could not be reached")
            continue
        decisions.append(decision)
        stored[key] = decision
        set_meta(_EXPERIENCE, dump_decisions(list(stored.values())))
    if not studies:
        why = "none of them holds a study" if not notes else "none of them can be used (above)"
        say(f"learn from: nothing to learn from in the sources, {why}; the study runs without them")
    set_meta(_COMPLETE, complete)
    return Experience(sources, tuple(decisions))


def _distinct(urls: Sequence[str]) -> tuple[str, ...]:
    """``urls`` without repeats (a folder named twice, or a folder and its ``study.db``), in order."""
    seen: set[str] = set()
    out = []
    for url in urls:
        if canonical_url(url) not in seen:
            seen.add(canonical_url(url))
            out.append(url)
    return tuple(out)


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
    """How ``source`` enters; None when the model could not be reached."""
    same = identity(source.space, space)
    if same is not None:
        data = _carried(same, source, space, label)
        return Decision(
            key=key, studies=source.studies, label=label, how="identical", mapping=same, note=_SAME, data=data
        )
    if provider is None:
        return Decision(key=key, studies=source.studies, label=label, how="no model", note=_NO_MODEL)
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
    mapping, data = answer.mapping, None
    if mapping is None:
        how: How = "invalid mapping"
        note = f"the model's mapping stayed invalid, left out: {answer.reason}"
    elif not mapping.relevant:
        how, note = "not relevant", "judged not relevant by the model; left out"
    elif (data := _carried(mapping, source, space, label)) is None:
        how, note = "maps nothing", "the model mapped none of its parameters (or none of its trials); left out"
    else:
        how, note = "mapped", f"mapped by the model: {mapping.shown()}"
        outside = clipped(mapping, source, space)
        if outside:
            total = len(source.trials)
            note += "; clipped into the new range: " + ", ".join(f"{new} {n} of {total}" for new, n in outside.items())
    return Decision(
        key=key,
        studies=source.studies,
        label=label,
        how=how,
        mapping=mapping,
        note=note,
        data=data,
        conversation=answer.parts,
        calls=len(answer.usage),
    )


_SAME = "the same space, used as it is"
_NO_MODEL = "a different space and no model to map it (the strategies that ask one: llm-bo, hybrid); left out"


def _carried(mapping: SpaceMapping, source: SourceStudy, space: SearchSpace, label: str) -> CarriedTrials | None:
    data = apply(mapping, source, space, label)
    return None if data is None else CarriedTrials(configs=data.configs, values=data.values, direction=data.direction)


def _key(source: SourceStudy) -> str:
    """What identifies a source across runs: what it tuned (the studies it pools may grow)."""
    text = f"{source.description}\n{source.space.model_dump_json()}\n{source.direction}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]
