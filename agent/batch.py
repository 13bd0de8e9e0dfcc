"""Several proposals per answer (``--batch K``), and the model told which trials are still being evaluated.

With parallel workers the LLM strategy answers in a batch format::

    {"calls": [{"tool": "evaluate_tabular", "arguments": {...}}, {"tool": "evaluate_tabular", "arguments": {...}}]}

exactly ``k`` calls of the evaluation tool (the JSON schema sent to the provider says so). Each call is
validated as a single answer is; a configuration that repeats a finished or pending trial, or another call
of the same answer, is an error too. Errors are sent back (``prompts/batch_reask.j2``) up to
``max_retries`` times; after that the valid calls are kept and the study's sampler draws the rest
(``fallback``). The prompt for the round (``prompts/batch.j2``) lists the pending trials, so workers do not
propose points already being evaluated.

Samplers (random, tpe) simply propose ``k`` times: the study's sampler draws each one when its trial is
claimed (Optuna's samplers see RUNNING trials as pending themselves).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from tools.read_history import format_trial

from .answer import answer_schema, parse_answer
from .errors import InvalidSuggestion, ReaskBudgetExhausted
from .loop import Agent
from .memory import AnswerPart, Part, ReaskPart, UserPart
from .providers.base import Usage
from .space import Choice
from .strategies.base import Proposal, ProposeContext, Strategy
from .strategies.llm import LLMStrategy

__all__ = ["batch_schema", "parse_batch", "propose_batch"]


async def propose_batch(strategy: Strategy, ctx: ProposeContext, k: int) -> list[Proposal]:
    """``k`` proposals for one round (at least one)."""
    k = max(k, 1)
    pending = [r for r in ctx.records if not r.finished]
    if isinstance(strategy, LLMStrategy) and (k > 1 or pending):
        return await _llm_batch(strategy.agent, ctx, k)
    return [await strategy.propose(ctx) for _ in range(k)]


def batch_schema(agent: Agent, k: int) -> dict[str, Any]:
    """The JSON schema of a batch answer: exactly ``k`` calls of the evaluation tool."""
    call = answer_schema({agent.eval_tool.name: agent.eval_tool})
    return {
        "type": "object",
        "properties": {"calls": {"type": "array", "items": call, "minItems": k, "maxItems": k}},
        "required": ["calls"],
        "additionalProperties": False,
    }


def parse_batch(
    text: str, agent: Agent, k: int, taken: Mapping[str, int]
) -> tuple[list[dict[str, Choice]], list[dict[str, Any]]]:
    """The valid configurations of a batch answer, and the errors of the rest (``loc`` starts at "calls")."""
    errors: list[dict[str, Any]] = []
    try:
        obj = json.loads(text.strip(), parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError, RecursionError) as exc:
        return [], [_err([], f"not valid JSON ({exc}); answer with the JSON object only")]
    calls = obj.get("calls") if isinstance(obj, dict) else obj if isinstance(obj, list) else None
    if not isinstance(calls, list):
        return [], [_err([], 'expected {"calls": [...]} with a list of tool calls')]
    if isinstance(obj, dict) and set(obj) != {"calls"}:
        errors.append(_err([], 'the answer has exactly one key, "calls"'))
    if len(calls) != k:
        errors.append(_err(["calls"], f"expected exactly {k} calls, got {len(calls)}"))
    valid: list[dict[str, Choice]] = []
    seen = dict(taken)
    for i, item in enumerate(calls[:k]):
        try:
            call = parse_answer(json.dumps(item), {agent.eval_tool.name: agent.eval_tool})
        except InvalidSuggestion as exc:
            errors.extend({**e, "loc": ["calls", i, *e.get("loc", [])]} for e in exc.errors)
            continue
        config = agent.space.validate_config(call.arguments)
        key = agent.space.key(config)
        if key in seen:
            where = f"trial {seen[key]}" if seen[key] >= 0 else f"call {-seen[key] - 1} of this answer"
            errors.append(_err(["calls", i, "arguments"], f"the same configuration as {where}; propose a new one"))
            continue
        seen[key] = -i - 1
        valid.append(config)
    return valid, errors


async def _llm_batch(agent: Agent, ctx: ProposeContext, k: int) -> list[Proposal]:
    records = ctx.records
    pending = [r for r in records if not r.finished]
    name = agent.eval_tool.name
    intro = agent.templates.render("batch", k=k, pending=[format_trial(r) for r in pending], eval_tool=name)
    parts: list[Part] = [UserPart(content=intro)]
    usage: list[Usage] = []
    taken = {agent.space.key(r.config): r.number for r in records if r.config}
    schema = batch_schema(agent, k)
    reasks = 0
    while True:
        completion = await agent.provider.complete(
            agent.messages(records, parts),
            json_schema=schema,
            temperature=agent.settings.temperature,
            max_tokens=agent.settings.max_tokens * k,
            seed=ctx.rng.randrange(2**31),
        )
        answer = completion.text
        usage.append(completion.usage)
        parts.append(AnswerPart(content=answer[:2000], usage=completion.usage))
        agent.events.info("llm_call", batch=k, **completion.usage.model_dump())
        valid, errors = parse_batch(answer, agent, k, taken)
        if not errors:
            break
        if reasks >= agent.settings.max_retries:
            agent.events.info("invalid_proposal", reasks=reasks, errors=errors, on_invalid=agent.settings.on_invalid)
            if agent.settings.on_invalid == "stop":
                raise ReaskBudgetExhausted(
                    f"the model gave no valid batch after {reasks} reasks (last errors: {errors[:3]}); "
                    "raise --max-retries, lower --batch, or use --on-invalid random"
                )
            break
        reasks += 1
        agent.events.info("reask", attempt=reasks, errors=errors)
        shown = [{"loc": ".".join(str(x) for x in e["loc"]) or "answer", "msg": e["msg"]} for e in errors]
        parts.append(
            ReaskPart(content=agent.templates.render("batch_reask", errors=shown, k=k, eval_tool=name), errors=errors)
        )
    proposals = [
        Proposal(config=c, source="llm", answer=answer, reasks=reasks if i == 0 else 0) for i, c in enumerate(valid)
    ]
    proposals += [Proposal(config=None, source="fallback", answer=answer) for _ in range(k - len(valid))]
    # The round's conversation and usage belong to its first trial; the others point at the same answer.
    first = proposals[0]
    first.parts, first.usage = parts, usage
    return proposals


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON; use a finite number")


def _err(loc: Sequence[Any], msg: str) -> dict[str, Any]:
    return {"loc": list(loc), "msg": msg, "input": None}
