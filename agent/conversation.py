"""The agent's conversation with the model: prompt -> model -> validated tool call -> tool -> memory -> repeat.

:meth:`Agent.propose` runs one round: it renders the conversation, asks the model, and validates the answer.
A non-evaluating tool (``read_history``) is run and its result appended, then the model is asked again (at
most ``max_history_reads`` times in a row). An invalid answer is sent back with its errors, up to
``max_retries`` reasks. The round ends with a validated configuration for the evaluation tool, or, when the
reasks run out, with a fallback (``on_invalid="random"``) or :class:`ReaskBudgetExhausted`
(``on_invalid="stop"``).

:meth:`Agent.propose_batch` is the same round for ``k`` configurations at once (``--batch``, or trials still
being evaluated by other workers, which the model is shown as pending): one answer of ``k`` calls, each
validated, repeats of finished, pending or sibling configurations reasked; when the reasks run out the
valid calls are kept and the rest are fallbacks.

:func:`ask_tool` is the same ask-validate-reask for one call of a tool outside a study's rounds (how an
earlier study maps into this one). One loop (:func:`_converse`) serves all three.

Evaluating the configuration is the caller's job: the study runs every strategy's trials the same way.
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tools.base import ConfigTool, InfoTool, Tool

from .answer import answer_schema, batch_schema, parse_answer, parse_batch
from .errors import ContextOverflow, InvalidSuggestion, ProviderUnavailable, ReaskBudgetExhausted, field_error
from .events import NO_EVENTS, EventSink
from .memory import HistoryMode, Memory, Round
from .messages import AnswerPart, ChatMessage, Part, ReaskPart, ToolReturnPart, Usage, UserPart
from .providers.base import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE, Completion, Provider
from .records import Direction, Proposal, TrialRecord, best_value, format_outcome, format_trial, short_value
from .space import Choice, SearchSpace
from .templates import Templates

__all__ = ["Agent", "AgentSettings", "ToolAnswer", "ask_tool"]

OnInvalid = Literal["random", "stop"]


@dataclass(frozen=True)
class AgentSettings:
    history: HistoryMode = "chat"
    max_retries: int = 3
    on_invalid: OnInvalid = "random"
    max_history_reads: int = 2
    #: Reask a configuration already evaluated (a wasted evaluation) instead of running it again.
    reject_repeats: bool = True
    temperature: float = DEFAULT_TEMPERATURE
    max_tokens: int = DEFAULT_MAX_TOKENS


@dataclass
class _Outcome:
    """What one answer gave: valid calls' arguments (configurations), a history read to run, or errors to reask."""

    configs: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    read: tuple[InfoTool, dict[str, Any]] | None = None
    #: The evaluation tool the answer called.
    tool: str | None = None


@dataclass
class _Request:
    """One kind of round: a single tool call, or a batch of ``k`` evaluation calls."""

    k: int
    schema: dict[str, Any]
    opening: list[Part]
    parse: Callable[[str], _Outcome]
    reask: Callable[[list[dict[str, Any]]], str]


#: ``ask(parts, reasks)``: one model call with the conversation so far (``parts``) after ``reasks`` reasks.
_Ask = Callable[[list[Part], int], Awaitable[Completion]]


@dataclass
class _Conversation:
    parts: list[Part]
    usage: list[Usage]
    reasks: int
    answer: str
    outcome: _Outcome


class Agent:
    """The LLM side of a study: its conversation and the round logic."""

    def __init__(
        self,
        *,
        provider: Provider,
        eval_tool: ConfigTool,
        task_description: str,
        task_template: str,
        budget: int,
        seed: int = 0,
        settings: AgentSettings | None = None,
        templates: Templates | None = None,
        extra_tools: Sequence[Tool] = (),
        events: EventSink | None = None,
        start_template: str | None = "start",
        direction: Direction = "minimize",
        intro_template: str | None = None,
        canonical: Callable[[dict[str, Choice]], dict[str, Choice]] | None = None,
    ) -> None:
        """``canonical`` maps a configuration the model wrote to the one that would be evaluated (onto a grid
        the model was shown as a range), before it is checked against the trials so far."""
        self.provider = provider
        self.direction: Direction = direction
        self._canonical = canonical
        self.eval_tool = eval_tool
        self.space: SearchSpace = eval_tool.space
        self.budget = budget
        self.settings = settings or AgentSettings()
        self.templates = templates or Templates()
        self.events: EventSink = events or NO_EVENTS
        self.tools: dict[str, Tool] = {eval_tool.name: eval_tool}
        self.tools.update({t.name: t for t in extra_tools})
        self.schema = answer_schema(self.tools)
        self._rng = random.Random(seed)
        self._skip = 0  # the oldest rounds whose words no longer fit the model's context (chat history)
        task = self.templates.render(
            task_template,
            description=task_description,
            params=[{"name": n, "domain": self.space.describe_param(n)} for n in self.space.params],
            budget=budget,
            eval_tool=eval_tool.name,
            **self._goal(),
        )
        if intro_template is not None:
            names = ", ".join(self.space.params)
            intro = self.templates.render(intro_template, eval_tool=eval_tool.name, params=names, **self._goal())
            task = f"{task}\n\n{intro}"
        self.memory = Memory(
            system=self.templates.render("system", tools=[self._tool_view(t) for t in self.tools.values()]),
            task=task,
            start="" if start_template is None else self.templates.render(start_template, eval_tool=eval_tool.name),
        )

    # ---- memory -------------------------------------------------------------------------------------

    def prompts(self) -> dict[str, str]:
        """The system, task and opening prompts, as sent."""
        return {"system": self.memory.system, "task": self.memory.task, "start": self.memory.start}

    def restore(self, rounds: Sequence[Round]) -> None:
        self.memory = self.memory.model_copy(update={"rounds": list(rounds)})

    def add_round(self, number: int, parts: Sequence[Part]) -> None:
        kept = [r for r in self.memory.rounds if r.trial != number]
        self.memory = self.memory.model_copy(update={"rounds": [*kept, Round(trial=number, parts=tuple(parts))]})

    def messages(self, records: Sequence[TrialRecord], current: Sequence[Part]) -> list[Any]:
        by_number = {r.number: r for r in records}
        return self.memory.messages(
            self.settings.history,
            by_number,
            current,
            feedback=lambda r: self._feedback(r, records),
            history=lambda finished: self._history(finished),
            line=self._ledger_line,
            skip=self._skip,
        )

    # ---- rounds -------------------------------------------------------------------------------------

    async def propose(
        self, records: Sequence[TrialRecord], *, opening: Sequence[Part] = (), tools: Sequence[str] | None = None
    ) -> Proposal:
        """Ask until the model names a valid configuration (or the reasks run out). ``opening``: what the round
        starts with (an optimizer's state, an instruction); ``tools``: the names of the tools it may call, when
        not all of them."""
        allowed = self.tools if tools is None else {name: self.tools[name] for name in tools}
        request = _Request(
            1,
            answer_schema(allowed) if tools is not None else self.schema,
            list(opening),
            lambda text: self._parse_single(text, records, allowed),
            self._reask_text,
        )
        talk = await self._converse(records, request)
        if talk.outcome.configs:
            config = talk.outcome.configs[0]
            decision = {"tool": talk.outcome.tool} if talk.outcome.tool != self.eval_tool.name else {}
            return Proposal(config, "llm", talk.parts, talk.usage, talk.reasks, talk.answer, decision=decision)
        return self._give_up(talk, 1)[0]

    async def propose_batch(self, records: Sequence[TrialRecord], k: int) -> list[Proposal]:
        """``k`` configurations in one answer; pending trials (running ones in ``records``) are shown."""
        name = self.eval_tool.name
        pending = [format_trial(r) for r in records if not r.finished]
        intro = self.templates.render("batch", k=k, pending=pending, eval_tool=name)

        def reask(errors: list[dict[str, Any]]) -> str:
            return self.templates.render("batch_reask", errors=_shown(errors), k=k, eval_tool=name)

        request = _Request(
            k, batch_schema(self.eval_tool, k), [UserPart(content=intro)], self._batch_parser(records, k), reask
        )
        talk = await self._converse(records, request)
        if talk.outcome.errors:
            return self._give_up(talk, k)
        return self._split(talk, [Proposal(c, "llm", answer=talk.answer) for c in talk.outcome.configs])

    async def _converse(self, records: Sequence[TrialRecord], request: _Request) -> _Conversation:
        """One round's conversation (:func:`_converse`), the prompt rendered from the study's memory."""

        async def ask(parts: list[Part], reasks: int) -> Completion:
            while True:
                try:
                    return await self.provider.complete(
                        self.messages(records, parts),
                        json_schema=request.schema,
                        temperature=self.settings.temperature,
                        max_tokens=self.settings.max_tokens * request.k,
                        seed=self._rng.randrange(2**31),
                    )
                except ContextOverflow as exc:
                    if not self._shrink():
                        raise ProviderUnavailable(
                            f"{exc}; this round is proposed without the model. Use a model with a longer context, "
                            "or --history compressed (the trials listed once, without the conversation)"
                        ) from None

        return await _converse(
            ask,
            request,
            max_retries=self.settings.max_retries,
            max_reads=self.settings.max_history_reads,
            reads_text=self._history_limit_text,
            events=self.events,
            labels={"batch": request.k},
        )

    def _shrink(self) -> bool:
        """Leave out the words of the older half of the rounds still sent (chat history only; their results
        stay), for this call and every later one: False when nothing is left to leave out."""
        rounds = len(self.memory.rounds)
        if self.settings.history != "chat" or self._skip >= rounds:
            return False
        self._skip += max(1, (rounds - self._skip + 1) // 2)
        self.events.info("context_trimmed", rounds_left_out=self._skip)
        return True

    def _parse_single(self, text: str, records: Sequence[TrialRecord], tools: Mapping[str, Tool]) -> _Outcome:
        try:
            call = parse_answer(text, tools)
        except InvalidSuggestion as exc:
            return _Outcome(errors=exc.errors)
        config = call.configuration  # validated where the answer was parsed: trusted from here on
        if config is None:
            assert isinstance(call.tool, InfoTool), f"{call.tool.name}: the agent runs info and configuration tools"
            return _Outcome(read=(call.tool, call.arguments))
        if self._canonical is not None:
            config = self._canonical(config)
        taken = self._taken(records) if self.settings.reject_repeats else {}
        repeat = taken.get(self.space.key(config))
        if repeat is not None:
            return _Outcome(errors=[field_error(["arguments"], self._repeat_text(repeat))])
        return _Outcome(configs=[config], tool=call.tool.name)

    def _batch_parser(self, records: Sequence[TrialRecord], k: int) -> Callable[[str], _Outcome]:
        def parse(text: str) -> _Outcome:
            try:
                configs, errors = parse_batch(text, self.eval_tool, k)
            except InvalidSuggestion as exc:
                return _Outcome(errors=exc.errors)
            taken: dict[str, TrialRecord | int] = dict(self._taken(records))
            valid = []
            for i, config in enumerate(configs):
                if self._canonical is not None:
                    config = self._canonical(config)
                key = self.space.key(config)
                earlier = taken.get(key)
                if earlier is not None:
                    where = (
                        self._repeat_text(earlier)
                        if isinstance(earlier, TrialRecord)
                        else f"the same configuration as call {earlier} of this answer; propose a new one"
                    )
                    errors.append(field_error(["calls", i, "arguments"], where))
                    continue
                taken[key] = i
                valid.append(config)
            return _Outcome(configs=valid, errors=errors)

        return parse

    def _taken(self, records: Sequence[TrialRecord]) -> dict[str, TrialRecord]:
        return {self.space.key(r.config): r for r in records if r.config}

    def _give_up(self, talk: _Conversation, k: int) -> list[Proposal]:
        """The reasks ran out: keep the valid configurations, fall back for the rest (or stop)."""
        errors = talk.outcome.errors
        self.events.info("invalid_proposal", reasks=talk.reasks, errors=errors, on_invalid=self.settings.on_invalid)
        if self.settings.on_invalid == "stop":
            first = "; ".join(f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in errors[:3])
            raise ReaskBudgetExhausted(
                f"the model gave no valid proposal after {talk.reasks} reasks (last errors: {first}); "
                "raise --max-retries, try another --model, or use --on-invalid random"
            )
        reason = f"invalid answers after {talk.reasks} reasks"
        proposals = [Proposal(c, "llm", answer=talk.answer) for c in talk.outcome.configs]
        proposals += [Proposal(None, "fallback", answer=talk.answer, reason=reason) for _ in range(k - len(proposals))]
        return self._split(talk, proposals)

    @staticmethod
    def _split(talk: _Conversation, proposals: list[Proposal]) -> list[Proposal]:
        """The round's conversation, usage and reasks belong to its first trial."""
        first = proposals[0]
        first.parts, first.usage, first.reasks = talk.parts, talk.usage, talk.reasks
        return proposals

    # ---- prompt pieces ------------------------------------------------------------------------------

    def _tool_view(self, tool: Tool) -> dict[str, str]:
        arguments = tool.example_arguments()
        if arguments is None and isinstance(tool, ConfigTool):
            # Placeholders, not values: a small model copies an example's values verbatim, round after round.
            args = ", ".join(f'"{name}": <{name}>' for name in tool.space.params)
            example = (
                f'{{"tool": "{tool.name}", "arguments": {{{args}}}}} with each <...> a value from the search space'
            )
        else:
            example = json.dumps({"tool": tool.name, "arguments": arguments or {}})
        return {"name": tool.name, "description": tool.description, "example": example}

    def _feedback(self, record: TrialRecord, records: Sequence[TrialRecord]) -> str:
        upto = [r for r in records if r.finished and r.number <= record.number]
        return self.templates.render(
            "feedback",
            trial_line=format_trial(record),
            source=record.source,
            remaining=max(self.budget - len(upto), 0),
            best=self._best_text(upto),
            eval_tool=self.eval_tool.name,
            **self._goal(),
        )

    def _history(self, finished: Sequence[TrialRecord]) -> str:
        return self.templates.render(
            "history",
            trials=[format_trial(r) for r in finished],
            remaining=max(self.budget - len(finished), 0),
            best=self._best_text(finished),
            eval_tool=self.eval_tool.name,
            **self._goal(),
        )

    def _goal(self) -> dict[str, str]:
        """Template words for the study's direction: the ``goal`` value to find, and which values are ``better``."""
        if self.direction == "maximize":
            return {"goal": "highest", "better": "higher"}
        return {"goal": "lowest", "better": "lower"}

    def _best_text(self, records: Sequence[TrialRecord]) -> str:
        best = best_value((r.value for r in records if r.value is not None), self.direction)
        return "none yet" if best is None else f"{best:.6g}"

    def _reask_text(self, errors: list[dict[str, Any]]) -> str:
        return self.templates.render("reask", errors=_shown(errors))

    def _repeat_text(self, record: TrialRecord) -> str:
        return (
            f"this configuration was already evaluated in trial {record.number} ({format_outcome(record)}); "
            "propose a configuration not tried yet"
        )

    def _ledger_line(self, record: TrialRecord) -> str:
        """A finished trial in a few tokens: ``0.001,64,"relu" -> 0.213`` (parameters in the space's order;
        the model's own proposals marked ``*``). A small model reads every digit as a token: two parameters of
        six digits cost as much as a sentence."""
        values = ",".join(short_value(record.config.get(name)) for name in self.space.params)
        mark = " *" if record.source == "llm" else ""
        return f"{values} -> {_short_outcome(record)}{mark}"

    def _history_limit_text(self, count: int) -> str:
        return self.templates.render("history_limit", count=count, eval_tool=self.eval_tool.name)


@dataclass
class ToolAnswer:
    """One validated call of a tool, or None after the reasks ran out: what was said, what it cost."""

    arguments: dict[str, Any] | None
    parts: list[Part]
    usage: list[Usage]
    reasks: int
    #: The last errors when the reasks ran out.
    errors: list[dict[str, Any]] = field(default_factory=list)


async def ask_tool(
    provider: Provider,
    messages: Sequence[ChatMessage],
    tool: Tool,
    *,
    templates: Templates,
    max_retries: int = 3,
    temperature: float = 0.0,
    reask_temperature: float | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    seed: int = 0,
    events: EventSink | None = None,
) -> ToolAnswer:
    """Ask for one call of ``tool`` (its JSON schema sent to providers that constrain decoding), validated by
    the tool; an invalid answer is sent back with its errors, up to ``max_retries`` times. A study's rounds
    are :class:`Agent`'s; this is the same ask-validate-reask for a question outside them (how an earlier
    study maps into this one). ``reask_temperature`` (default: ``temperature``) samples the answers to a reask:
    at temperature 0 a model answers a reask exactly as before. Transport failures propagate
    (:class:`~agent.errors.ProviderUnavailable`)."""
    tools = {tool.name: tool}

    async def ask(parts: list[Part], reasks: int) -> Completion:
        said = [
            ChatMessage(role="assistant" if isinstance(p, AnswerPart) else "user", content=p.content) for p in parts
        ]
        hot = temperature if reasks == 0 or reask_temperature is None else reask_temperature
        return await provider.complete(
            [*messages, *said],
            json_schema=answer_schema(tools),  # built for each call: a tool may narrow it after a wrong answer
            temperature=hot,
            max_tokens=max_tokens,
            seed=seed + reasks,
        )

    def parse(text: str) -> _Outcome:
        try:
            return _Outcome(configs=[parse_answer(text, tools).arguments], tool=tool.name)
        except InvalidSuggestion as exc:
            return _Outcome(errors=exc.errors)

    def reask(errors: list[dict[str, Any]]) -> str:
        return templates.render("reask", errors=_shown(errors))

    talk = await _converse(
        ask,
        _Request(1, {}, [], parse, reask),
        max_retries=max_retries,
        events=events or NO_EVENTS,
        labels={"tool": tool.name},
    )
    arguments = talk.outcome.configs[0] if not talk.outcome.errors else None
    return ToolAnswer(arguments, talk.parts, talk.usage, talk.reasks, talk.outcome.errors)


async def _converse(
    ask: _Ask,
    request: _Request,
    *,
    max_retries: int,
    events: EventSink,
    labels: Mapping[str, Any],
    max_reads: int = 0,
    reads_text: Callable[[int], str] | None = None,
) -> _Conversation:
    """Ask, validate, run history reads, reask, until the answer is valid or the reasks run out: the one loop
    of every question to the model. ``ask`` makes one call from the conversation so far; ``request`` parses an
    answer and words a reask; at most ``max_reads`` history reads in a row (``reads_text`` says so); ``labels``
    go with each ``llm_call`` and ``reask`` event."""
    parts = list(request.opening)
    usage: list[Usage] = []
    reasks = reads_in_a_row = 0
    while True:
        completion = await ask(parts, reasks)
        usage.append(completion.usage)
        parts.append(AnswerPart(content=_clip(completion.text), usage=completion.usage))
        events.info("llm_call", **labels, **completion.usage.model_dump())
        outcome = request.parse(completion.text)
        if outcome.read is not None and reads_in_a_row >= max_reads:
            limit = reads_text(reads_in_a_row) if reads_text is not None else "call the tool you were asked to call"
            outcome = _Outcome(errors=[field_error(["tool"], limit)])
        if outcome.read is not None:
            tool, arguments = outcome.read
            parts.append(ToolReturnPart(tool=tool.name, content=await tool(arguments)))
            reads_in_a_row += 1
            continue
        if not outcome.errors or reasks >= max_retries:
            return _Conversation(parts, usage, reasks, completion.text, outcome)
        reasks += 1
        events.info("reask", **labels, attempt=reasks, errors=outcome.errors)
        parts.append(ReaskPart(content=request.reask(outcome.errors), errors=outcome.errors))


_ANSWER_KEPT_CHARS = 2_000


def _clip(answer: str) -> str:
    """What the conversation keeps of an answer: enough to show the model its mistake, never a megabyte."""
    if len(answer) <= _ANSWER_KEPT_CHARS:
        return answer
    return f"{answer[:_ANSWER_KEPT_CHARS]}... [cut: {len(answer)} characters in all]"


def _shown(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    return [
        {"loc": ".".join(str(x) for x in e.get("loc", [])) or "answer", "msg": str(e.get("msg", ""))} for e in errors
    ]


def _short_outcome(record: TrialRecord) -> str:
    if record.state == "complete" and record.value is not None:
        return f"{record.value:.3g}"
    if record.state == "pruned":
        last = record.last_step
        return "stopped early" if last is None else f"stopped at step {last[0]}: {last[1]:.3g}"
    return f"failed ({(record.error or 'unknown reason')[:80]})"
