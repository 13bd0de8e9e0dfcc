"""The agent loop: prompt -> model -> validated tool call -> tool -> memory -> repeat.

:meth:`Agent.propose` runs one round: it renders the conversation, asks the model, and validates the answer.
A non-evaluating tool (``read_history``) is run and its result appended, then the model is asked again (at
most ``max_history_reads`` times in a row). An invalid answer is sent back with its errors, up to
``max_retries`` reasks. The round ends with a validated configuration for the evaluation tool, or, when the
reasks run out, with a fallback (``on_invalid="random"``) or :class:`ReaskBudgetExhausted`
(``on_invalid="stop"``). Evaluating the configuration is the caller's job: the study runs every strategy's
trials the same way.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from tools.base import EvaluationTool, Tool
from tools.read_history import format_trial

from .answer import ToolCall, answer_schema, parse_answer
from .errors import InvalidSuggestion, ReaskBudgetExhausted
from .memory import AnswerPart, HistoryMode, Memory, Part, ReaskPart, Round, ToolReturnPart
from .providers.base import Provider, Usage
from .records import TrialRecord
from .space import CategoricalParam, SearchSpace
from .strategies.base import Proposal
from .templates import Templates

__all__ = ["Agent", "AgentSettings", "EventSink", "render_domain"]

OnInvalid = Literal["random", "stop"]


class EventSink(Protocol):
    def info(self, event: str, **fields: Any) -> Any: ...


class _NoEvents:
    def info(self, event: str, **fields: Any) -> None:
        return None


@dataclass(frozen=True)
class AgentSettings:
    history: HistoryMode = "chat"
    max_retries: int = 3
    on_invalid: OnInvalid = "random"
    max_history_reads: int = 2
    #: Reask a configuration already evaluated (a wasted evaluation) instead of running it again.
    reject_repeats: bool = True
    temperature: float = 0.7
    max_tokens: int = 256


class Agent:
    """The LLM side of a study: its conversation and the round logic."""

    def __init__(
        self,
        *,
        provider: Provider,
        eval_tool: EvaluationTool,
        task_description: str,
        task_template: str,
        budget: int,
        seed: int = 0,
        settings: AgentSettings | None = None,
        templates: Templates | None = None,
        extra_tools: Sequence[Tool] = (),
        events: EventSink | None = None,
        start_template: str = "start",
    ) -> None:
        self.provider = provider
        self.eval_tool = eval_tool
        self.space: SearchSpace = eval_tool.space
        self.budget = budget
        self.settings = settings or AgentSettings()
        self.templates = templates or Templates()
        self.events: EventSink = events or _NoEvents()
        self.tools: dict[str, Tool | EvaluationTool] = {eval_tool.name: eval_tool}
        self.tools.update({t.name: t for t in extra_tools})
        self.schema = answer_schema(self.tools)
        self._rng = random.Random(seed)
        self.memory = Memory(
            system=self.templates.render("system", tools=[self._tool_view(t) for t in self.tools.values()]),
            task=self.templates.render(
                task_template,
                description=task_description,
                params=[{"name": n, "domain": render_domain(self.space, n)} for n in self.space.params],
                budget=budget,
                eval_tool=eval_tool.name,
            ),
            start=self.templates.render(start_template, eval_tool=eval_tool.name),
        )

    # ---- memory -------------------------------------------------------------------------------------

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
        )

    # ---- one round ----------------------------------------------------------------------------------

    async def propose(self, records: Sequence[TrialRecord]) -> Proposal:
        """Ask until the model names a valid configuration (or the reasks run out)."""
        parts: list[Part] = []
        usage: list[Usage] = []
        reasks = 0
        reads_in_a_row = 0
        answer: str | None = None
        while True:
            messages = self.messages(records, parts)
            completion = await self.provider.complete(
                messages,
                json_schema=self.schema,
                temperature=self.settings.temperature,
                max_tokens=self.settings.max_tokens,
                seed=self._rng.randrange(2**31),
            )
            answer = completion.text
            usage.append(completion.usage)
            parts.append(AnswerPart(content=_clip(answer), usage=completion.usage))
            self.events.info("llm_call", **completion.usage.model_dump())
            try:
                call = parse_answer(answer, self.tools)
                if call.is_evaluation and self.settings.reject_repeats:
                    self._check_not_tried(call.arguments, records)
                if not call.is_evaluation and reads_in_a_row >= self.settings.max_history_reads:
                    raise InvalidSuggestion(
                        "too many history reads",
                        [{"loc": ["tool"], "msg": self._history_limit_text(reads_in_a_row), "input": None}],
                    )
            except InvalidSuggestion as exc:
                if reasks >= self.settings.max_retries:
                    return self._give_up(parts, usage, reasks, answer, exc)
                reasks += 1
                self.events.info("reask", attempt=reasks, errors=exc.errors)
                parts.append(ReaskPart(content=self._reask_text(exc.errors), errors=exc.errors))
                continue
            if call.is_evaluation:
                config = self.space.validate_config(call.arguments)
                return Proposal(config=config, source="llm", parts=parts, usage=usage, reasks=reasks, answer=answer)
            parts.append(ToolReturnPart(tool=call.tool.name, content=await self._run_tool(call)))
            reads_in_a_row += 1

    def _check_not_tried(self, config: Mapping[str, Any], records: Sequence[TrialRecord]) -> None:
        key = self.space.key(config)
        for r in records:
            if self.space.key(r.config) == key:
                outcome = "still running" if not r.finished else format_trial(r).split(" -> ", 1)[-1]
                raise InvalidSuggestion(
                    "repeated configuration",
                    [
                        {
                            "loc": ["arguments"],
                            "msg": f"this configuration was already evaluated in trial {r.number} ({outcome}); "
                            "propose a configuration not tried yet",
                            "input": None,
                        }
                    ],
                )

    def _give_up(
        self, parts: list[Part], usage: list[Usage], reasks: int, answer: str | None, exc: InvalidSuggestion
    ) -> Proposal:
        self.events.info("invalid_proposal", reasks=reasks, errors=exc.errors, on_invalid=self.settings.on_invalid)
        if self.settings.on_invalid == "stop":
            raise ReaskBudgetExhausted(
                f"the model gave no valid proposal after {reasks} reasks (last error: {exc}); "
                "raise --max-retries, try another --model, or use --on-invalid random"
            )
        return Proposal(config=None, source="fallback", parts=parts, usage=usage, reasks=reasks, answer=answer)

    async def _run_tool(self, call: ToolCall) -> str:
        assert isinstance(call.tool, Tool)
        return await call.tool(call.arguments)

    # ---- prompt pieces ------------------------------------------------------------------------------

    def _tool_view(self, tool: Tool | EvaluationTool) -> dict[str, str]:
        if isinstance(tool, EvaluationTool):
            # Placeholders, not values: a small model copies an example's values verbatim, round after round.
            args = ", ".join(f'"{name}": <{name}>' for name in self.space.params)
            example = (
                f'{{"tool": "{tool.name}", "arguments": {{{args}}}}} with each <...> a value from the search space'
            )

        else:
            example = json.dumps({"tool": tool.name, "arguments": {"which": "best", "n": 3}})
        return {"name": tool.name, "description": tool.description, "example": example}

    def _feedback(self, record: TrialRecord, records: Sequence[TrialRecord]) -> str:
        upto = [r for r in records if r.finished and r.number <= record.number]
        values = [r.value for r in upto if r.value is not None]
        return self.templates.render(
            "feedback",
            trial_line=format_trial(record),
            source=record.source,
            remaining=max(self.budget - len(upto), 0),
            best=f"{min(values):.6g}" if values else "none yet",
            eval_tool=self.eval_tool.name,
        )

    def _history(self, finished: Sequence[TrialRecord]) -> str:
        values = [r.value for r in finished if r.value is not None]
        return self.templates.render(
            "history",
            trials=[format_trial(r) for r in finished],
            remaining=max(self.budget - len(finished), 0),
            best=f"{min(values):.6g}" if values else "none yet",
            eval_tool=self.eval_tool.name,
        )

    def _reask_text(self, errors: Sequence[Mapping[str, Any]]) -> str:
        shown = [
            {"loc": ".".join(str(x) for x in e.get("loc", [])) or "answer", "msg": e.get("msg", "")} for e in errors
        ]
        return self.templates.render("reask", errors=shown)

    def _history_limit_text(self, count: int) -> str:
        return self.templates.render("history_limit", count=count, eval_tool=self.eval_tool.name)


_ANSWER_KEPT_CHARS = 2_000


def _clip(answer: str) -> str:
    """What the conversation keeps of an answer: enough to show the model its mistake, never a megabyte."""
    if len(answer) <= _ANSWER_KEPT_CHARS:
        return answer
    return f"{answer[:_ANSWER_KEPT_CHARS]}... [cut: {len(answer)} characters in all]"


def render_domain(space: SearchSpace, name: str) -> str:
    """How a parameter's domain reads in a prompt."""
    p = space.params[name]
    if isinstance(p, CategoricalParam):
        return "one of " + ", ".join(json.dumps(c) for c in p.choices)
    return space.describe_param(name)
