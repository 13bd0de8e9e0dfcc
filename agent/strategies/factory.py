"""Build a strategy by name, for the CLI and the bench alike."""

from __future__ import annotations

import copy

from agent.loop import Agent, AgentSettings
from agent.providers.base import Provider
from agent.study import StudyStore
from agent.tasks import Task
from agent.templates import Templates
from agent.tools.read_history import ReadHistory

from .base import Strategy
from .grid import relaxed_space
from .guided import BOStrategy, LLMBOStrategy
from .llm import LLMStrategy
from .samplers import RandomStrategy, TPEStrategy

__all__ = ["DEFAULT_STRATEGY", "LLM_STRATEGIES", "STRATEGIES", "make_strategy"]

STRATEGIES = ("llm-bo", "llm", "bo", "random", "tpe")
#: What ``python -m agent`` runs without ``--strategy``.
DEFAULT_STRATEGY = "llm-bo"
#: Strategies that call a model (the caller opens a provider for them).
LLM_STRATEGIES = frozenset({"llm", "llm-bo"})


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
    """``random``, ``tpe`` and ``bo`` need nothing more; ``llm`` and ``llm-bo`` need the provider (the caller
    owns and closes it)."""
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
    eval_tool = task.tool
    if name == "llm-bo":  # the model sees numeric grids as ranges; LLMBOStrategy moves its answer onto the grid
        eval_tool = copy.copy(task.tool)
        eval_tool.space = relaxed_space(task.space)
    agent = Agent(
        provider=provider,
        eval_tool=eval_tool,
        task_description=task.description,
        task_template=task.template,
        budget=budget,
        seed=seed,
        settings=settings,
        templates=templates,
        # llm-bo asks once, before any result exists: reading the history would have nothing to show.
        extra_tools=[ReadHistory(store.records, task.direction)] if name == "llm" else [],
        events=store.events,
        start_template="start" if name == "llm" else "start_default",
        direction=task.direction,
    )
    return LLMStrategy(agent) if name == "llm" else LLMBOStrategy(agent)
