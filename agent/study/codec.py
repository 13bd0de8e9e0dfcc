"""The stored format of a trial: :class:`~agent.records.TrialRecord` to and from Optuna's trial attributes.

The one place that knows the attribute names. Each trial holds, as user attributes:

- ``source`` (absent: ``sampler``) and, when not empty, ``answer``, ``reasks``, ``conversation``, ``usage``,
  ``propose_s``, ``reason``, ``decision``: how it was proposed (:class:`~agent.records.ProposalInfo`),
  written when the trial is claimed;
- ``result``: ``{"metrics": {...}, "error": str | null, "seconds": float}``, written once when it finishes,
  with ``cost_s`` (a recorded cost: :attr:`~evaluators.base.EvalResult.cost_s`) and ``stopped_by``
  (``deadline``: a pruned trial the time budget stopped) when they apply;
- ``worker`` (who runs it), ``resumed`` (times a dead worker's trial was taken over), ``surplus`` (a
  claim that came after the budget was full) and ``void`` (why a trial is no trial: a sampler's draw the door
  refused, or a dead worker's claim that never got a whole configuration). Surplus and void trials are FAIL,
  never evaluated, left out of every record; ``unscheduled`` (why a scheduled trial stopped reporting to
  the pruner: a step that did not increase, a value missing at a step) and ``stopped_by`` (who stopped it
  besides the pruner, written by its reporter: ``deadline``; copied into ``result`` when it finishes);

The study itself lists, under ``setup_failures``, the numbers of the failed trials that stopped a run whose
setup was broken (its first trials all failed the same way; Optuna lets no attribute of a finished trial
change, so the list is the study's). They decode with :attr:`TrialRecord.setup_failure` set and are left
out of the budget.

Flat ``metrics``, ``error`` and ``seconds`` attributes (studies written before ``result`` existed) are read
too, and a failure reason Optuna itself recorded (``fail_reason``) stands in for a missing ``error``. Long
texts are cut to ``MAX_ATTR_CHARS`` with a note of their real length, so an enormous model answer cannot
bloat the storage.
"""

from __future__ import annotations

import math
from collections.abc import Container, Mapping
from typing import Any

from optuna.trial import FrozenTrial, TrialState
from pydantic import ValidationError

from agent.messages import Usage, dump_parts, load_parts
from agent.records import PROPOSAL_SOURCES, ProposalInfo, TrialRecord, TrialStatus

__all__ = [
    "MAX_ATTR_CHARS",
    "RESULT",
    "RESUMED",
    "SETUP_FAILURES",
    "STOPPED_BY",
    "SURPLUS",
    "UNSCHEDULED",
    "VOID",
    "WORKER",
    "bounded",
    "decode",
    "encode_proposal",
    "encode_result",
    "is_probe",
    "is_void",
    "setup_failures",
]

MAX_ATTR_CHARS = 20_000
WORKER = "worker"
RESUMED = "resumed"
SURPLUS = "surplus"
VOID = "void"
UNSCHEDULED = "unscheduled"
STOPPED_BY = "stopped_by"
RESULT = "result"
#: The study attribute listing the trial numbers of setup failures.
SETUP_FAILURES = "setup_failures"

_STATUS: dict[TrialState, TrialStatus] = {
    TrialState.COMPLETE: "complete",
    TrialState.FAIL: "fail",
    TrialState.PRUNED: "pruned",
    TrialState.RUNNING: "running",
}


def encode_proposal(info: ProposalInfo) -> dict[str, Any]:
    """The user attributes saying how a trial was proposed (empty fields and the default source left out)."""
    attrs: dict[str, Any] = {} if info.source == "sampler" else {"source": info.source}
    if info.answer is not None:
        attrs["answer"] = bounded(info.answer)
    if info.reasks:
        attrs["reasks"] = info.reasks
    if info.conversation:
        attrs["conversation"] = bounded(dump_parts(info.conversation))
    if info.usage:
        attrs["usage"] = [u.model_dump() for u in info.usage]
    if info.seconds is not None:
        attrs["propose_s"] = info.seconds
    if info.reason is not None:
        attrs["reason"] = bounded(info.reason)
    if info.decision:
        attrs["decision"] = bounded(info.decision)
    return attrs


def encode_result(
    metrics: Mapping[str, Any],
    error: str | None,
    seconds: float,
    *,
    cost_s: float | None = None,
    stopped_by: str | None = None,
) -> dict[str, Any]:
    """The value of the ``result`` attribute, written when a trial finishes."""
    result: dict[str, Any] = {"metrics": bounded(dict(metrics)), "error": error, "seconds": round(seconds, 4)}
    if cost_s is not None and math.isfinite(cost_s):
        result["cost_s"] = round(cost_s, 4)
    if stopped_by is not None:
        result["stopped_by"] = stopped_by
    return result


def is_probe(trial: FrozenTrial) -> bool:
    """A probe of the setup (source ``probe``): outside the budget."""
    return trial.user_attrs.get("source") == "probe"


def is_void(trial: FrozenTrial) -> bool:
    """A trial that is no trial of the study: a surplus claim, or one marked ``void``."""
    return bool(trial.user_attrs.get(SURPLUS) or trial.user_attrs.get(VOID))


def setup_failures(study_attrs: Mapping[str, Any]) -> frozenset[int]:
    """The trial numbers a study lists as setup failures (its user attributes)."""
    listed = study_attrs.get(SETUP_FAILURES)
    return frozenset(n for n in listed if isinstance(n, int)) if isinstance(listed, list) else frozenset()


def decode(trial: FrozenTrial, failed_setup: Container[int] = ()) -> TrialRecord | None:
    """The record of a trial; None for a trial that is not one of ours to count (WAITING, surplus, void).
    ``failed_setup``: the study's :func:`setup_failures`."""
    status = _STATUS.get(trial.state)
    if status is None or is_void(trial):
        return None
    attrs = trial.user_attrs
    result = attrs.get(RESULT)
    if not isinstance(result, Mapping):
        result = attrs  # written before the "result" attribute existed: flat keys
    error = result.get("error") or trial.system_attrs.get("fail_reason")
    return TrialRecord(
        number=trial.number,
        config=dict(trial.params),
        state=status,
        value=trial.value if status == "complete" else None,
        metrics=dict(result.get("metrics") or {}),
        error=None if error is None else str(error),
        proposal=_proposal(attrs),
        seconds=_number(result.get("seconds")),
        cost_s=_number(result.get("cost_s")),
        stopped_by=result.get("stopped_by") if isinstance(result.get("stopped_by"), str) else None,
        resumed=int(attrs.get(RESUMED) or 0),
        setup_failure=trial.number in failed_setup and status == "fail",
        curve=dict(sorted(trial.intermediate_values.items())),
    )


def _proposal(attrs: Mapping[str, Any]) -> ProposalInfo:
    source = attrs.get("source", "sampler")
    try:
        return ProposalInfo(
            source=source if source in PROPOSAL_SOURCES else "sampler",
            answer=attrs.get("answer"),
            reasks=int(attrs.get("reasks") or 0),
            conversation=tuple(load_parts(attrs.get("conversation"))),
            usage=tuple(Usage.model_validate(u) for u in attrs.get("usage") or ()),
            seconds=_number(attrs.get("propose_s")),
            reason=attrs.get("reason"),
            decision=dict(attrs.get("decision") or {}),
        )
    except (ValidationError, TypeError, ValueError):  # written by hand or by another tool: keep what is sure
        return ProposalInfo(source=source if source in PROPOSAL_SOURCES else "sampler")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def bounded(value: Any) -> Any:
    """Keep attributes storable: an enormous text is cut, with a note of its real length."""
    if isinstance(value, str) and len(value) > MAX_ATTR_CHARS:
        return value[:MAX_ATTR_CHARS] + f"... [cut: {len(value)} characters in all]"
    if isinstance(value, list | tuple):
        return [bounded(v) for v in value]
    if isinstance(value, dict):
        return {k: bounded(v) for k, v in value.items()}
    return value
