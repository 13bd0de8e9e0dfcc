"""Build a strategy by name, for the CLI and the bench alike."""

from __future__ import annotations

import copy
import dataclasses

from agent.loop import Agent, AgentSettings
from agent.providers.base import Provider
from agent.study import StudyStore
from agent.tasks import Task
from agent.templates import Templates
from agent.tools.base import EvaluationTool, Tool
from agent.tools.read_history import ReadHistory
from agent.tools.take_candidate import TakeCandidate

from .base import Strategy
from .grid import project, relaxed_space
from .guided import BOStrategy, LLMBOStrategy
from .hybrid import CANDIDATES, HybridStrategy
from .llm import LLMStrategy
from .samplers import RandomStrategy, TPEStrategy

__all__ = ["DEFAULT_STRATEGY", "LLM_STRATEGIES", "STRATEGIES", "make_strategy"]

STRATEGIES = ("llm-bo", "hybrid", "llm", "bo", "random", "tpe")
#: What ``python -m agent`` runs without ``--strategy``.
DEFAULT_STRATEGY = "llm-bo"
#: Strategies that call a model (the caller opens a provider for them).
LLM_STRATEGIES = frozenset({"llm", "llm-bo", "hybrid"})


def make_strategy(
    name: str,
    *,
    task: Task,
    store: StudyStore,
    budget: int,
    seed: int,
    provider: Provider | None = None,
    settings: AgentSettings | None = None,
    templates: Templates | None = None,
) -> Strategy:
    """``random``, ``tpe`` and ``bo`` need nothing more; ``llm``, ``llm-bo`` and ``hybrid`` need the provider
    (the caller owns and closes it).

    The model sees numeric grids as the ranges they span (under constrained decoding a grid listed as allowed
    values lets a model meaning ``1e-3`` complete ``1e-`` only to the grid's smallest value); its answer is moved
    to the nearest grid value before it is checked against the trials so far.
    """
    if name == "random":
        return RandomStrategy()
    if name == "tpe":
        return TPEStrategy.for_budget(budget)
    if name == "bo":
        return BOStrategy()
    if name not in LLM_STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; valid: {', '.join(STRATEGIES)}")
    if provider is None:
        raise ValueError(f"the {name} strategy needs a provider")
    eval_tool = copy.copy(task.tool)
    eval_tool.space = relaxed_space(task.space)
    settings = settings or AgentSettings()
    extra: list[Tool | EvaluationTool] = []
    if name == "llm":
        extra.append(ReadHistory(store.records, task.direction))  # llm-bo asks once, before any result
    take = TakeCandidate(task.space, CANDIDATES)
    if name == "hybrid":
        extra.append(take)
        settings = dataclasses.replace(settings, history="ledger")  # a prompt whose prefix never changes
    agent = Agent(
        provider=provider,
        eval_tool=eval_tool,
        task_description=task.description,
        task_template=task.template,
        budget=budget,
        seed=seed,
        settings=settings,
        templates=templates,
        extra_tools=extra,
        events=store.events,
        start_template={"llm": "start", "llm-bo": "start_default", "hybrid": None}[name],
        direction=task.direction,
        intro_template="hybrid" if name == "hybrid" else None,
        canonical=lambda config: task.space.validate_config(project(task.space, config)),
    )
    if name == "hybrid":
        return HybridStrategy(agent, take)
    return LLMStrategy(agent) if name == "llm" else LLMBOStrategy(agent)
