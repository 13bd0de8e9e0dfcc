"""``LLMSampler``: the agent as an Optuna sampler, for your own objective.

    sampler = LLMSampler(task_description="Tune an MLP on my data; the value is the validation error.",
                         provider=OpenAICompatProvider(model="gpt-4o-mini"), budget=30)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=30)
    sampler.close()

How it works. Optuna asks a sampler for the *relative* parameters of a trial once, before the objective's
first ``suggest_*``: :meth:`infer_relative_search_space` gives the intersection of the distributions of the
study's finished trials (Optuna's ``IntersectionSearchSpace``), so from the second trial on every parameter
comes from one answer of the model. The model sees the search space (``SearchSpace.from_optuna``), the
study's finished trials (told plainly whether higher or lower values are better) and answers
``{"tool": "evaluate", "arguments": {...}}``; the answer is validated and reasked with its errors
(``max_retries``), and after that the trial's parameters are sampled at random (``RandomSampler``), as are
parameters outside the relative space (the first trial's, and any conditional parameters). The model's raw
answer, its reasks, the source (``llm`` or ``fallback``) and the token usage land on the trial as user
attributes, so optuna-dashboard and Optuna's plots show LLM-driven studies like any other.

Optuna's samplers are synchronous and providers are async: the sampler runs its own event loop in one
private daemon thread for its lifetime and submits each call to it (``asyncio.run_coroutine_threadsafe``),
so a provider's HTTP connections stay on one loop. It works from ``study.optimize`` (any ``n_jobs``) and from
code that already runs an event loop. Call :meth:`close` (or use the sampler as a context manager) to close
the provider and stop the thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import optuna
from optuna.distributions import BaseDistribution
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial

from evaluators.base import EvalResult

from .loop import Agent, AgentSettings
from .memory import Round
from .providers.base import Provider
from .records import Proposal, TrialRecord
from .space import Choice, SearchSpace
from .study import study_records, write_proposal
from .templates import Templates
from .tools.base import NO_TRIAL, EvaluationTool, TrialContext

__all__ = ["LLMSampler"]


class _Objective(EvaluationTool):
    """The user's objective as the model sees it; Optuna, not the agent, calls the real one."""

    name: ClassVar[str] = "evaluate"
    description: ClassVar[str] = "Evaluate the objective with this configuration; returns its value."

    async def evaluate(
        self, config: dict[str, Choice], trial: TrialContext = NO_TRIAL
    ) -> EvalResult:  # pragma: no cover - never called
        raise NotImplementedError("LLMSampler proposes; study.optimize evaluates")


class LLMSampler(optuna.samplers.BaseSampler):
    """An Optuna sampler that asks an LLM agent for each trial's parameters (see the module docstring)."""

    def __init__(
        self,
        *,
        task_description: str,
        provider: Provider,
        budget: int = 20,
        seed: int | None = None,
        settings: AgentSettings | None = None,
        templates: Templates | None = None,
    ) -> None:
        self.task_description = task_description
        self.provider = provider
        self.budget = budget
        self.seed = seed
        self.settings = settings or AgentSettings()
        self.templates = templates or Templates()
        self._random = optuna.samplers.RandomSampler(seed=seed)
        self._intersection = IntersectionSearchSpace()
        self._agents: dict[str, Agent] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # ---- Optuna's sampler interface -----------------------------------------------------------------

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {
            name: dist
            for name, dist in self._intersection.calculate(study).items()
            if not dist.single()  # a one-value parameter needs no question
        }

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        space = SearchSpace.from_optuna(search_space)
        agent = self._agent_for(space, study)
        records = _records(study, space, exclude=trial.number)
        proposal: Proposal = self._call(agent.propose(records))
        write_proposal(study, trial, proposal.info())
        if proposal.config is None:  # invalid after every reask: Optuna samples each parameter at random
            return {}
        agent.add_round(trial.number, proposal.parts)
        return dict(proposal.config)

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def reseed_rng(self) -> None:
        self._random.reseed_rng()

    # ---- the private event loop ---------------------------------------------------------------------

    def _call(self, coro: Any) -> Any:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="LLMSampler", daemon=True)
                self._thread.start()
            loop = self._loop
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def close(self) -> None:
        """Close the provider on the sampler's loop and stop the loop's thread."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None:
            return
        asyncio.run_coroutine_threadsafe(self.provider.aclose(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join()
        loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the agent ----------------------------------------------------------------------------------

    def _agent_for(self, space: SearchSpace, study: Study) -> Agent:
        key = space.model_dump_json()
        with self._lock:
            agent = self._agents.get(key)
            if agent is None:
                agent = Agent(
                    provider=self.provider,
                    eval_tool=_Objective(space),
                    task_description=self.task_description,
                    direction="maximize" if study.direction == StudyDirection.MAXIMIZE else "minimize",
                    task_template="task_optuna",
                    budget=self.budget,
                    seed=self.seed or 0,
                    settings=self.settings,
                    templates=self.templates,
                )
                agent.restore(_rounds(study))
                self._agents[key] = agent
            return agent


def _records(study: Study, space: SearchSpace, exclude: int) -> list[TrialRecord]:
    """The study's finished trials as the model sees them (only parameters of the relative space)."""
    return [
        r.model_copy(update={"config": {name: r.config[name] for name in space.params}})
        for r in study_records(study)
        if r.finished and r.number != exclude and set(space.params) <= set(r.config)
    ]


def _rounds(study: Study) -> Sequence[Round]:
    """Conversations stored on the study's trials (a resumed study, or another process's sampler)."""
    return [
        Round(trial=r.number, parts=r.proposal.conversation) for r in study_records(study) if r.proposal.conversation
    ]
