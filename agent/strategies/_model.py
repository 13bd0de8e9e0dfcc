"""The model's side of a strategy, built the same way for every strategy that asks one.

The model sees numeric grids as the ranges they span (under constrained decoding a grid listed as allowed
values lets a model meaning ``1e-3`` complete ``1e-`` only to the grid's smallest value); its answer is moved
to the nearest grid value before it is checked against the trials so far.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.conversation import Agent, AgentSettings
from agent.errors import UserError
from tools.base import Tool

from .base import BuildContext
from .grid import project, relaxed_space

__all__ = ["model_agent"]


def model_agent(
    ctx: BuildContext,
    *,
    start_template: str | None,
    intro_template: str | None = None,
    extra_tools: Sequence[Tool] = (),
    settings: AgentSettings | None = None,
) -> Agent:
    """An :class:`~agent.conversation.Agent` for ``ctx``'s task: the task's tool seen over the relaxed space
    (grids as ranges), answers projected onto the grids."""
    if ctx.provider is None:
        raise UserError("this strategy asks a model: give it a provider (--provider, AGENT_PROVIDER)")
    task = ctx.task
    return Agent(
        provider=ctx.provider,
        eval_tool=task.tool.seen_as(relaxed_space(task.space)),
        task_description=task.description,
        task_template=task.template,
        budget=ctx.budget,
        seed=ctx.seed,
        settings=settings or ctx.settings,
        templates=ctx.templates,
        extra_tools=extra_tools,
        events=ctx.events,
        start_template=start_template,
        direction=task.direction,
        intro_template=intro_template,
        canonical=lambda config: project(task.space, config),
    )
