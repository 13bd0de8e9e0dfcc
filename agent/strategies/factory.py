"""Build a strategy by name, for the CLI and the bench alike."""

from __future__ import annotations

from agent.loop import Agent, AgentSettings
from agent.providers.base import Provider
from agent.study import StudyStore
from agent.tasks import Task
from agent.templates import Templates
from tools.read_history import ReadHistory

from .base import Strategy
from .llm import LLMStrategy
from .samplers import RandomStrategy, TPEStrategy

__all__ = ["STRATEGIES", "make_strategy"]

STRATEGIES = ("llm", "random", "tpe")


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
    """``random`` and ``tpe`` need nothing more; ``llm`` needs the provider (the caller owns and closes it)."""
    if name == "random":
        return RandomStrategy()
    if name == "tpe":
        return TPEStrategy.for_budget(budget)
    if name != "llm":
        raise ValueError(f"unknown strategy {name!r}; valid: {', '.join(STRATEGIES)}")
    if provider is None:
        raise ValueError("the llm strategy needs a provider")
    agent = Agent(
        provider=provider,
        eval_tool=task.tool,
        task_description=task.description,
        task_template=task.template,
        budget=budget,
        seed=seed,
        settings=settings,
        templates=templates,
        extra_tools=[ReadHistory(store.records)],
        events=store.events,
    )
    return LLMStrategy(agent)
