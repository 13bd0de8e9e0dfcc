"""Every strategy by name: the built-in ones, then those installed packages register.

A package registers a strategy under the entry-point group ``llm_hpo.strategies``::

    [project.entry-points."llm_hpo.strategies"]
    cmaes = "my_package.strategies:cmaes"

``cmaes(*, seed, budget, **more)`` is called with keyword arguments (``seed``, ``budget``, ``direction``, and
maybe more later, so it must accept ``**kwargs``) and returns an Optuna ``BaseSampler`` (the usual case: it
draws every trial, as ``random`` and ``tpe`` do) or a :class:`~agent.strategies.base.Strategy`. Once the
package is installed, ``--strategy cmaes``, ``bench --strategies cmaes`` and ``StrategySampler("cmaes")``
run it and ``python -m agent strategies`` lists it with the first line of its docstring. A built-in name wins
over a registered one; a broken registration is one error naming it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from importlib.metadata import EntryPoint
from typing import Any

import optuna

from agent._plugins import Plugin, registered
from agent.conversation import AgentSettings
from agent.errors import AgentError, UserError
from agent.events import EventSink
from agent.providers.base import Provider
from agent.records import SourceData, TrialRecord
from agent.tasks import TaskBrief
from agent.templates import Templates

from . import bo, hybrid, llm, llm_bo
from .base import BuildContext, Strategy, StrategySpec
from .baselines import RANDOM, TPE, SamplerStrategy
from .bo import openers_for
from .opening import Opened

__all__ = [
    "BUILTIN",
    "DEFAULT_STRATEGY",
    "ENTRY_POINT_GROUP",
    "get_strategy",
    "list_strategies",
    "make_strategy",
    "strategy_names",
]

ENTRY_POINT_GROUP = "llm_hpo.strategies"
#: What ``python -m agent`` runs without ``--strategy``.
DEFAULT_STRATEGY = "llm-bo"
#: The built-in strategies, in the order the help lists them.
BUILTIN: dict[str, StrategySpec] = {
    spec.name: spec for spec in (llm_bo.SPEC, hybrid.SPEC, llm.SPEC, bo.SPEC, RANDOM, TPE)
}


def list_strategies() -> list[StrategySpec]:
    """The built-in strategies, then those installed packages register (a broken one says why)."""
    return [*BUILTIN.values(), *(_plugin_spec(ep) for ep in _plugins().values())]


def strategy_names() -> list[str]:
    return [*BUILTIN, *_plugins()]


def get_strategy(name: str, flag: str = "--strategy") -> StrategySpec:
    """The strategy called ``name``; an unknown name is a ``UserError`` listing the valid ones."""
    if name in BUILTIN:
        return BUILTIN[name]
    plugins = _plugins()
    if name in plugins:
        return _plugin_spec(plugins[name])
    raise UserError(
        f"{flag}: unknown strategy {name!r}; choose from {', '.join(strategy_names())} "
        "(`python -m agent strategies` lists them)"
    )


def make_strategy(
    name: str | StrategySpec,
    *,
    task: TaskBrief,
    budget: int,
    seed: int,
    provider: Provider | None = None,
    settings: AgentSettings | None = None,
    templates: Templates | None = None,
    records: Callable[[], Sequence[TrialRecord]] | None = None,
    events: EventSink | None = None,
    experience: Sequence[SourceData] = (),
) -> Strategy:
    """Build strategy ``name`` (a name in the registry, or a spec of the caller's own: a benchmark's variant)
    for ``task``: what the study session and the Optuna sampler both call."""
    spec = name if isinstance(name, StrategySpec) else get_strategy(name)
    if spec.needs_model and provider is None:
        raise UserError(f"the {spec.name} strategy asks a model: give it a provider (--provider, AGENT_PROVIDER)")
    ctx = BuildContext(task=task, budget=budget, seed=seed, provider=provider, experience=tuple(experience))
    updates: dict[str, Any] = {
        "settings": settings,
        "templates": templates,
        "records": records,
        "events": events,
    }
    ctx = dataclasses.replace(ctx, **{k: v for k, v in updates.items() if v is not None})
    strategy = spec.build(ctx)
    if ctx.experience and not getattr(strategy, "learns", False):  # no optimizer of its own to carry them
        strategy = Opened(strategy, ctx.experience, min(openers_for(len(ctx.experience)), budget))
    return strategy


# ---- installed packages ---------------------------------------------------------------------------------


def _plugins() -> dict[str, EntryPoint]:
    return registered(ENTRY_POINT_GROUP, taken=BUILTIN)


def _plugin_spec(ep: EntryPoint) -> StrategySpec:
    plugin = Plugin.load(ep, ENTRY_POINT_GROUP)
    where = f"strategy {plugin.where}"
    factory = plugin.factory
    if factory is None:

        def broken(ctx: BuildContext) -> Strategy:
            raise UserError(f"{where}: cannot load it: {plugin.summary}")

        return StrategySpec(ep.name, plugin.summary, broken, origin=plugin.package)

    def build(ctx: BuildContext) -> Strategy:
        def made(seed: int) -> Any:
            try:
                return factory(seed=seed, budget=ctx.budget, direction=ctx.task.direction)
            except AgentError:
                raise
            except Exception as exc:
                raise UserError(f"{where}: its factory raised {type(exc).__name__}: {exc}") from exc

        first = made(ctx.seed)
        if isinstance(first, Strategy):
            return first
        if not isinstance(first, optuna.samplers.BaseSampler):
            raise UserError(
                f"{where}: its factory returned a {type(first).__name__}, not an Optuna sampler or a Strategy"
            )

        def sampler(seed: int) -> optuna.samplers.BaseSampler:
            return first if seed == ctx.seed else made(seed)  # a resumed study draws anew

        return SamplerStrategy(ep.name, sampler)

    return StrategySpec(ep.name, plugin.summary, build, origin=plugin.package)
