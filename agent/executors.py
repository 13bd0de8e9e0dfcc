"""Where evaluations run: in this process, in local worker processes, or as Ray tasks.

An :class:`Executor` runs one evaluation and returns its result; the study loop (:func:`agent.optimize`)
keeps up to ``workers`` of them in flight and records each result as it comes. There is no scheduler here:
anyio's capacity limiter (local processes) or Ray's resource scheduler (``num_cpus``/``num_gpus``) decide
what runs when.

- ``LocalExecutor(workers=N)``: cheap tools (toy functions, tables) run in this process; tools that say
  ``runs_in_subprocess = True`` (train_cifar) run in a pool of N worker processes through
  ``anyio.to_process``, each with ``torch`` limited to its share of the cores.
- ``RayExecutor``: each evaluation is a ``ray.remote`` task with ``num_cpus``/``num_gpus``; joins the cluster
  at ``address`` (or ``RAY_ADDRESS``), else starts a local one.

Reporting intermediate values (pruning) needs the trial, which lives in this process: with a pruner the
local executor runs every evaluation in this process (train_cifar trains in a thread; torch releases the
GIL in its kernels). An evaluation in another process gets its :class:`~tools.base.TrialContext`
without callbacks (:meth:`~tools.base.TrialContext.detached`): no report, so a pruner never stops a
Ray trial, and no progress display. A time budget's deadline alone (:class:`~agent.deadline.DeadlineReport`
without a scheduler) keeps worker processes: there a trial runs to its end, and no trial starts once the time
is spent.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from typing import Any

import anyio
import anyio.to_process

from evaluators.base import EvalResult
from tools.base import EvaluationTool, TrialContext

from .deadline import DeadlineReport
from .errors import UserError
from .space import Choice

__all__ = ["Executor", "LocalExecutor", "RayExecutor", "make_executor"]


class Executor(ABC):
    """Runs evaluations; ``workers`` of them may be in flight at once."""

    workers: int

    @abstractmethod
    async def evaluate(self, tool: EvaluationTool, config: dict[str, Choice], trial: TrialContext) -> EvalResult:
        """Evaluate ``config`` with ``tool``; what the tool raises propagates."""

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release what the executor holds (a Ray connection it opened)."""


def _evaluate_sync(
    tool: EvaluationTool, config: dict[str, Choice], trial: TrialContext, threads: int | None
) -> EvalResult:
    """The body of a worker process or a Ray task: one evaluation on a private event loop."""
    if threads is not None:
        try:
            import torch

            torch.set_num_threads(threads)
        except ImportError:  # pragma: no cover - torch is a dependency; a tool without it needs no threads
            pass
    return anyio.run(tool.evaluate, config, trial)


class LocalExecutor(Executor):
    """Up to ``workers`` evaluations at once on this machine."""

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise UserError(f"--workers must be at least 1, got {workers}")
        self.workers = workers
        self._limiter = anyio.CapacityLimiter(workers)
        self._threads = max(1, (os.cpu_count() or 1) // workers)

    async def evaluate(self, tool: EvaluationTool, config: dict[str, Choice], trial: TrialContext) -> EvalResult:
        if self.workers == 1 or _scheduled(trial) or not tool.runs_in_subprocess:
            async with self._limiter:  # reporting to the trial (pruning) needs this process: threads then
                return await tool.evaluate(config, trial)
        result: EvalResult = await anyio.to_process.run_sync(
            _evaluate_sync, tool, config, trial.detached(), self._threads, cancellable=True, limiter=self._limiter
        )
        return result


def _scheduled(trial: TrialContext) -> bool:
    """Does a scheduler (pruner) listen to the trial's reports? Only then must it run in this process."""
    report = trial.report
    return report is not None and not (isinstance(report, DeadlineReport) and report.scheduler is None)


class RayExecutor(Executor):
    """Each evaluation a Ray task with ``cpus_per_trial``/``gpus_per_trial``; ``workers`` tasks in flight."""

    def __init__(
        self,
        *,
        workers: int,
        address: str | None = None,
        cpus_per_trial: float = 1.0,
        gpus_per_trial: float = 0.0,
    ) -> None:
        try:
            import ray
        except ImportError as exc:
            raise UserError("--executor ray needs Ray: pip install -e '.[ray]'") from exc
        self.workers = workers
        self._ray: Any = ray  # typed as Any: mypy must pass with and without the extra installed
        self._started_here = False
        if not ray.is_initialized():
            address = address or os.environ.get("RAY_ADDRESS")
            if address:
                ray.init(address=address, log_to_driver=False)
            else:  # a private local instance on loopback
                ray.init(
                    address="local",
                    num_cpus=max(2, int(cpus_per_trial * workers)),
                    num_gpus=None if gpus_per_trial else 0,
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                )
            self._started_here = True
        self._remote = ray.remote(_evaluate_sync).options(
            num_cpus=cpus_per_trial, num_gpus=gpus_per_trial, max_retries=0
        )
        self._threads = max(1, int(cpus_per_trial))
        self._tools: dict[int, Any] = {}

    async def evaluate(self, tool: EvaluationTool, config: dict[str, Choice], trial: TrialContext) -> EvalResult:
        ref = self._tools.get(id(tool))
        if ref is None:  # ship the tool (a table, a training setup) to the object store once
            ref = self._tools[id(tool)] = self._ray.put(tool)
        try:
            result: EvalResult = await self._remote.remote(ref, config, trial.detached(), self._threads)
        except self._ray.exceptions.RayTaskError as exc:
            raise exc.as_instanceof_cause() from None
        return result

    def close(self) -> None:
        if self._started_here:
            self._ray.shutdown()


def make_executor(
    kind: str,
    *,
    workers: int = 1,
    address: str | None = None,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
) -> Executor:
    """The executor named on the command line (``--executor local|ray``)."""
    if kind == "local":
        return LocalExecutor(workers)
    if kind == "ray":
        return RayExecutor(
            workers=workers, address=address, cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial
        )
    raise UserError(f"unknown --executor {kind!r}; choose local or ray")
