"""What the agent knows of a trial: plain typed data, no Optuna objects.

:class:`TrialRecord` is one trial: its configuration, state and value, what the evaluation measured, and how
it was proposed (:class:`ProposalInfo`: the source, the model's answer, the round's conversation, usage,
timings). The study layer (:mod:`agent.study`) is the only code that reads or writes Optuna's trial
attributes; it turns every trial into a record, and everything else (strategies, memory, tools, reports,
the bench) works on records.

A strategy hands the runner a :class:`Proposal`: a configuration (or None: the study's sampler draws one)
and its :class:`ProposalInfo`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from agent.messages import Part, Usage
from agent.space import Choice, short_number

__all__ = [
    "Direction",
    "Proposal",
    "ProposalInfo",
    "SourceData",
    "ProposalSource",
    "UNREACHABLE",
    "TRANSFORMS",
    "Transform",
    "TrialRecord",
    "UsageTotals",
    "best_value",
    "compact_config",
    "format_outcome",
    "format_trial",
    "short_value",
]

#: Whether a study minimizes its objective (every built-in task: an error) or maximizes it.
Direction = Literal["minimize", "maximize"]

#: The monotone warp of a study's values before a Gaussian process learns them (a task file's ``transform``;
#: :mod:`agent.strategies.warp` applies it).
Transform = Literal["yeo-johnson", "log", "rank", "none"]
TRANSFORMS: tuple[Transform, ...] = ("yeo-johnson", "log", "rank", "none")

#: Who chose a trial's configuration: the model (``llm``), the study's sampler instead of a model whose
#: answers stayed invalid or that could not be reached (``fallback``), an Optuna sampler (``sampler``), a
#: surrogate model (``surrogate``), a surrogate strategy's random draw while its model has too few trials (or
#: its sources lost and the study has too few of its own: ``random``), earlier studies (``transfer``: one of
#: their best configurations, opening a study that learns from them), the setup watch (``probe``: far from a
#: run's first trials that all failed alike, to tell a broken setup from a failing region; outside the
#: budget), or nobody: a dead worker's trial re-run as it was (``resumed``, written by older versions).
ProposalSource = Literal["llm", "fallback", "sampler", "surrogate", "random", "resumed", "transfer", "probe"]
#: How the reason of a ``fallback`` begins when the model could not be reached (its provider's retries ran out).
UNREACHABLE = "the model could not be reached"
PROPOSAL_SOURCES: tuple[ProposalSource, ...] = (
    "llm",
    "fallback",
    "sampler",
    "surrogate",
    "random",
    "resumed",
    "transfer",
    "probe",
)


class ProposalInfo(BaseModel):
    """How a trial's configuration was chosen."""

    model_config = ConfigDict(frozen=True)

    source: ProposalSource = "sampler"
    #: The model's last raw answer (untrusted text, kept for the record).
    answer: str | None = None
    reasks: int = 0
    #: What was said while proposing this trial (answers, reasks, tool returns).
    conversation: tuple[Part, ...] = ()
    usage: tuple[Usage, ...] = ()
    #: Wall time the strategy took to propose this configuration.
    seconds: float | None = None
    #: Why the model did not choose it (a ``fallback``): invalid answers, an unreachable provider.
    reason: str | None = None
    #: What the strategy decided and why, for the report (a hybrid's source shares and credits).
    decision: dict[str, Any] = {}


@dataclass
class Proposal:
    """A configuration to evaluate (``config=None``: the study's sampler draws one), and how it came about."""

    config: dict[str, Choice] | None
    source: ProposalSource
    parts: list[Part] = field(default_factory=list)
    usage: list[Usage] = field(default_factory=list)
    reasks: int = 0
    answer: str | None = None
    #: Wall time the strategy took to propose this configuration (set by the runner).
    seconds: float | None = None
    reason: str | None = None
    decision: dict[str, Any] = field(default_factory=dict)

    def info(self) -> ProposalInfo:
        return ProposalInfo(
            source=self.source,
            answer=self.answer,
            reasks=self.reasks,
            conversation=tuple(self.parts),
            usage=tuple(self.usage),
            seconds=None if self.seconds is None else round(self.seconds, 4),
            reason=self.reason,
            decision=self.decision,
        )


@dataclass(frozen=True)
class SourceData:
    """An earlier study in a new study's terms (``--learn-from``): configurations over the parameters it covers
    (every one the same keys, a subset of the new space's) and their values, lower or higher better as
    ``direction`` says."""

    name: str
    configs: tuple[dict[str, Choice], ...]
    values: tuple[float, ...]
    direction: Direction = "minimize"

    def __post_init__(self) -> None:
        if not self.configs or len(self.configs) != len(self.values):
            raise ValueError(f"source {self.name!r}: needs configurations and one value for each")
        if any(set(c) != set(self.configs[0]) for c in self.configs):
            raise ValueError(f"source {self.name!r}: every configuration must have the same parameters")

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(self.configs[0])


TrialStatus = Literal["complete", "fail", "pruned", "running"]


class TrialRecord(BaseModel):
    """One trial as the agent knows it."""

    model_config = ConfigDict(frozen=True)

    number: int
    config: dict[str, Any]
    state: TrialStatus
    value: float | None = None
    metrics: dict[str, Any] = {}
    error: str | None = None
    proposal: ProposalInfo = ProposalInfo()
    #: Wall time of the evaluation.
    seconds: float | None = None
    #: The evaluation's recorded compute where it is not the machine's time (a replayed table's training
    #: seconds: :attr:`evaluators.base.EvalResult.cost_s`); None: ``seconds`` is its cost.
    cost_s: float | None = None
    #: Who stopped a pruned trial early, where it was not the scheduler: ``deadline`` (the time budget ran out).
    stopped_by: str | None = None
    #: Times the trial was taken over from a worker that died while running it.
    resumed: int = 0
    #: One of the failed trials that stopped a run whose setup was broken (:class:`~agent.errors.BrokenSetup`):
    #: kept in the study, left out of the budget, of every count and of what strategies see.
    setup_failure: bool = False
    #: The intermediate values it reported to the study's scheduler, step -> value (a stopped trial's only
    #: results).
    curve: dict[int, float] = {}

    @property
    def step(self) -> int | None:
        """The last step it reported (an epoch), or None: it reported none."""
        return max(self.curve) if self.curve else None

    @property
    def last_step(self) -> tuple[int, float] | None:
        """(step, value) of the last intermediate value reported, or None."""
        step = self.step
        return None if step is None else (step, self.curve[step])

    @property
    def finished(self) -> bool:
        return self.state != "running"

    @property
    def compute_s(self) -> float | None:
        """The seconds the trial cost: its recorded cost where it has one, else its wall time."""
        return self.cost_s if self.cost_s is not None else self.seconds

    @property
    def source(self) -> ProposalSource:
        return self.proposal.source

    @property
    def probe(self) -> bool:
        """A probe of the setup (:mod:`agent.setup_watch`): kept and seen, but outside the budget."""
        return self.source == "probe"

    @property
    def unreachable(self) -> bool:
        """Proposed without the model because it could not be reached (not because its answers were invalid)."""
        return self.source == "fallback" and (self.proposal.reason or "").startswith(UNREACHABLE)


@dataclass(frozen=True, kw_only=True)
class UsageTotals:
    """LLM calls, tokens, seconds, reasks and rounds proposed without the model (and of them, those with the
    model unreachable), over a set of trials."""

    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_seconds: float = 0.0
    reasks: int = 0
    fallbacks: int = 0
    #: Of the ``fallbacks``, the rounds proposed without the model because it could not be reached.
    unreachable: int = 0

    def __add__(self, other: UsageTotals) -> UsageTotals:
        """Both counts together (a study's trials and the calls that mapped its earlier studies)."""
        return UsageTotals(
            **{f.name: round(getattr(self, f.name) + getattr(other, f.name), 3) for f in fields(UsageTotals)}
        )

    @classmethod
    def of(cls, records: Iterable[TrialRecord]) -> UsageTotals:
        calls = prompt = completion = reasks = fallbacks = unreachable = 0
        seconds = 0.0
        for r in records:
            for u in r.proposal.usage:
                calls += 1
                prompt += u.prompt_tokens
                completion += u.completion_tokens
                seconds += u.latency_s
            reasks += r.proposal.reasks
            fallbacks += r.source == "fallback"
            unreachable += r.unreachable
        return cls(
            llm_calls=calls,
            prompt_tokens=prompt,
            completion_tokens=completion,
            llm_seconds=round(seconds, 3),
            reasks=reasks,
            fallbacks=fallbacks,
            unreachable=unreachable,
        )


def best_value(values: Iterable[float], direction: Direction) -> float | None:
    """The best of ``values`` for a study of ``direction``; None when there is none."""
    values = list(values)
    if not values:
        return None
    return max(values) if direction == "maximize" else min(values)


def compact_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Floats to 6 significant digits: what a reader (or a model) needs, at a third of the tokens."""
    return {k: float(f"{v:.6g}") if isinstance(v, float) else v for k, v in config.items()}


def short_value(value: Any) -> str:
    """A parameter's value in a few tokens: floats to 3 significant digits (``1e-5`` style), others as JSON."""
    if isinstance(value, float):
        return short_number(value, 3)
    return json.dumps(value)


def format_outcome(record: TrialRecord) -> str:
    """``value 0.123``, ``pruned (stopped early) at step 3: 0.4``, ``failed: reason``, or ``still running``."""
    if record.state == "complete":
        return f"value {record.value:.6g}"
    if record.state == "pruned":
        last = record.last_step
        if last is not None:
            return f"pruned (stopped early) at step {last[0]}: {last[1]:.6g}"
        return f"pruned (stopped early){'' if record.value is None else f' at {record.value:.6g}'}"
    if record.state == "running":
        return "still running"
    return f"failed: {record.error or 'unknown reason'}"


def format_trial(record: TrialRecord) -> str:
    """One line: number, configuration, outcome."""
    config = json.dumps(compact_config(record.config), separators=(", ", ": "))
    note = ""
    if record.source == "fallback":
        note = (
            " (chosen without you: you could not be reached)"
            if record.unreachable
            else " (a random configuration: your answers were invalid)"
        )
    return f"trial {record.number}{note}: {config} -> {format_outcome(record)}"
