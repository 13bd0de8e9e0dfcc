"""Tests for agent/strategies/fidelity.py: the Gaussian process over (configuration, step)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

import agent.strategies.fidelity as fidelity_module
from agent.records import TrialRecord
from agent.space import FloatParam, SearchSpace
from agent.strategies.base import ProposeContext
from agent.strategies.bo import BOStrategy
from agent.strategies.candidates import optimizer_candidates
from agent.strategies.fidelity import FidelitySurface, fidelity_points, with_predicted_finals
from agent.strategies.transfer import TARGET
from tests.agent.strategies.test_bo import SPACE, f, source, stopped_early

pytestmark = pytest.mark.anyio

LINE = SearchSpace(params={"x": FloatParam(low=0.0, high=1.0)})


def final(x: float) -> float:
    return 1.0 + 4.0 * (x - 0.7) ** 2


def at(x: float, step: int) -> float:
    """A learning curve: the final value plus a gap that halves as the steps triple."""
    return final(x) + 0.5 * (27 / step) ** (math.log(2) / math.log(3)) - 0.5


def curve_study(n: int = 16) -> list[TrialRecord]:
    """``n`` trials of :func:`at`'s curves: a quarter ran to the end (27), the others stopped at step 3 or 9."""
    rng = np.random.default_rng(0)
    records = []
    for i, x in enumerate(rng.uniform(0, 1, n)):
        stop = 27 if i < n // 4 else (3 if i % 2 else 9)
        curve = {s: at(x, s) for s in (1, 3, 9, 27) if s <= stop}
        done = stop == 27
        value = curve[27] if done else None
        state = "complete" if done else "pruned"
        records.append(TrialRecord(number=i, config={"x": float(x)}, state=state, value=value, curve=curve))
    return records


def test_the_points_are_each_trials_values_where_some_trial_was_stopped_and_at_the_last_step() -> None:
    records = [
        TrialRecord(number=0, config={"x": 0.1}, state="pruned", curve={1: 3.0, 2: 2.9, 3: 2.5}),
        TrialRecord(number=1, config={"x": 0.2}, state="complete", value=1.5, curve={1: 2.0, 2: 1.9, 3: 1.8, 9: 1.6}),
        TrialRecord(number=2, config={"x": 0.3}, state="fail"),
        TrialRecord(number=3, config={"x": 0.4}, state="running", curve={1: 0.1}),
    ]
    points, last = fidelity_points(records, "minimize")  # type: ignore[misc]
    assert last == 9
    assert sorted((c["x"], s, v) for c, s, v in points) == [
        (0.1, 3, 2.5),  # stopped at step 3: that is a rung; steps 1 and 2 are not
        (0.2, 3, 1.8),
        (0.2, 9, 1.5),  # complete: its final value, at the last step
        (0.3, 9, 2.5),  # a failure: the worst value the model sees, at the last step
    ]
    assert fidelity_points([TrialRecord(number=0, config={"x": 0.1}, state="complete", value=1.0)], "minimize") is None
    # Steps reported but none stopped early (no scheduler): the complete trials are the data, as without steps.
    assert fidelity_points([r for r in records if r.state != "pruned"], "minimize") is None


def test_the_model_reads_stopped_trials_final_values_off_the_complete_ones_curves() -> None:
    """Four trials ran to the end; twelve were stopped at step 3 or 9, their final values unseen. Read at the last
    step, the model ranks the stopped ones by their true final values and puts them near them, not at their
    (worse) values at the rung where they stopped."""
    records = curve_study()
    surface = FidelitySurface.fit(LINE, records)
    assert surface is not None
    stopped = [r for r in records if r.state == "pruned"]
    mean, var = surface.predict([r.config for r in stopped])
    predicted, _ = surface.values(mean, np.sqrt(var))
    truth = np.array([final(float(r.config["x"])) for r in stopped])  # type: ignore[arg-type]
    at_rung = np.array([r.curve[max(r.curve)] for r in stopped])
    assert np.corrcoef(predicted, truth)[0, 1] > 0.95
    assert np.abs(predicted - truth).mean() < 0.5 * np.abs(at_rung - truth).mean()
    assert surface.incumbent == pytest.approx(float(mean.min()))


def test_a_long_study_fits_at_most_the_cap_the_furthest_trials_first_then_the_best_and_a_spread() -> None:
    """60 trials: 15 complete (3 points each), 22 stopped at step 9 (2 each), 23 at step 3 (1 each). At most 70
    points: every complete trial's, then of those stopped at 9 the best half of the room and an even spread of
    the rest, the worst included (the model still knows where the poor regions are); the room left, step 3's best."""
    records = curve_study(60)
    every, last = fidelity_points(records, "minimize", most=10**6)  # type: ignore[misc]
    assert len(every) == 15 * 3 + 22 * 2 + 23
    assert fidelity_points(records, "minimize", most=len(every)) == (every, last)  # the cap not reached: all
    kept, _ = fidelity_points(records, "minimize", most=70)  # type: ignore[misc]
    assert 60 <= len(kept) <= 70
    keys = {c["x"] for c, _, _ in kept}
    complete = [r for r in records if r.state == "complete"]
    assert {r.config["x"] for r in complete} <= keys
    at_nine = sorted((r for r in records if max(r.curve) == 9), key=lambda r: r.curve[9])
    assert {r.config["x"] for r in at_nine[:6]} <= keys, "the best half of the room (12 points: 6 trials)"
    assert at_nine[-1].config["x"] in keys, "the worst stopped at 9 too: the spread reaches it"
    at_three = sorted((r for r in records if max(r.curve) == 3), key=lambda r: r.curve[3])
    assert {r.config["x"] for r in at_three} & keys == {at_three[0].config["x"]}, "the point left: the best at 3"
    # Whole trials: every kept trial with all its points.
    assert all(sum(1 for c, _, _ in kept if c["x"] == x) == sum(1 for c, _, _ in every if c["x"] == x) for x in keys)
    # Better higher: the best are the highest.
    flipped = [
        r.model_copy(update={"value": r.value and -r.value, "curve": {s: -v for s, v in r.curve.items()}})
        for r in records
    ]
    high, _ = fidelity_points(flipped, "maximize", most=70)  # type: ignore[misc]
    assert {c["x"] for c, _, _ in high} == keys


def test_with_the_cap_reached_the_model_still_reads_every_stopped_trials_final_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fitted on 70 of the 112 points, the model predicts the final values of all 45 stopped trials, those it did
    not see included, about as well as from all of them."""
    records = curve_study(60)
    stopped = [r for r in records if r.state == "pruned"]
    truth = np.array([final(float(r.config["x"])) for r in stopped])  # type: ignore[arg-type]
    monkeypatch.setattr(fidelity_module, "MAX_POINTS", 70)
    surface = FidelitySurface.fit(LINE, records)
    assert surface is not None
    mean, var = surface.predict([r.config for r in stopped])
    predicted, _ = surface.values(mean, np.sqrt(var))
    assert np.corrcoef(predicted, truth)[0, 1] > 0.95


def test_without_steps_or_with_too_few_trials_there_is_no_model() -> None:
    complete = [TrialRecord(number=i, config={"x": i / 4}, state="complete", value=1.0) for i in range(4)]
    assert FidelitySurface.fit(LINE, complete) is None
    two = [TrialRecord(number=i, config={"x": i / 4}, state="pruned", curve={3: 1.0}) for i in range(2)]
    assert FidelitySurface.fit(LINE, two) is None
    other = [TrialRecord(number=i, config={"y": i / 4}, state="pruned", curve={3: 1.0}) for i in range(4)]
    assert FidelitySurface.fit(LINE, other) is None  # another search space: not comparable


async def test_with_fidelity_trials_stopped_early_inform_the_next_proposals_and_say_so() -> None:
    """No trial ran to the end: without the model over steps the proposal is a startup draw; with it (the
    default), every stopped trial's values are data, and its proposals are far better on average (8 seeded
    draws)."""
    mean = {}
    for fidelity in (False, True):
        values = []
        for s in range(8):
            stopped = stopped_early(s)
            ctx = ProposeContext(space=SPACE, records=stopped, rng=random.Random(s))
            p = await BOStrategy(fidelity=fidelity).propose(ctx)
            assert p.config is not None and SPACE.key(p.config) not in {SPACE.key(r.config) for r in stopped}
            assert p.decision == ({"fidelity": True} if fidelity else {"startup": True})
            values.append(f(p.config))
        mean[fidelity] = sum(values) / len(values)
    assert mean[True] < mean[False] / 2


def test_a_study_learning_from_sources_fits_its_own_model_on_its_stopped_trials_predicted_finals() -> None:
    records = curve_study()
    seen = with_predicted_finals(LINE, records)
    assert [r.number for r in seen] == [r.number for r in records]
    assert all(r.state == "complete" for r in seen)
    stopped = [(r, s) for r, s in zip(records, seen, strict=True) if r.state == "pruned"]
    predicted = np.array([s.value for _, s in stopped])
    truth = np.array([final(float(r.config["x"])) for r, _ in stopped])  # type: ignore[arg-type]
    assert np.corrcoef(predicted, truth)[0, 1] > 0.95
    assert [s for r, s in zip(records, seen, strict=True) if r.state == "complete"] == [
        r for r in records if r.state == "complete"
    ]
    plain = [r for r in records if r.state == "complete"]
    assert with_predicted_finals(LINE, plain) == plain  # nothing stopped early: nothing to predict


async def test_learning_from_a_misleading_source_the_studys_stopped_trials_overrule_it() -> None:
    """As with the highest rung (test_bo), the study's stopped trials, through their predicted finals (the
    default), take the weight from a source whose best is this study's worst; the proposal says it used them."""
    for s in range(4):
        stopped = stopped_early(s)
        misleading = BOStrategy(experience=[source("bad", sign=-1.0)], budget=20, n_open=0)
        p = await misleading.propose(ProposeContext(space=SPACE, records=stopped, rng=random.Random(s)))
        assert p.decision["weights"] == {"bad": 0.0, TARGET: 1.0} and p.decision["fidelity"] is True
        assert p.config is not None and f(p.config) < 10, "the source's best is this study's worst (41)"


def test_the_candidates_shown_to_the_model_are_the_model_over_steps_own() -> None:
    """``hybrid`` shows the model the optimizer's next trials: where trials were stopped early, those of the model
    over steps (the trial its optimizer rounds would run first), predicted at the last step."""
    records = curve_study()
    proposer = BOStrategy().proposer()
    first, surface = proposer.proposal(LINE, records, random.Random(0))
    assert isinstance(surface, FidelitySurface)
    candidates = optimizer_candidates(proposer, LINE, records, random.Random(0), 4)
    assert candidates[0].config == first and len(candidates) == 4
    truth = [final(float(c.config["x"])) for c in candidates]  # type: ignore[arg-type]
    assert all(abs(c.mean - t) < 0.5 for c, t in zip(candidates, truth, strict=True)), (candidates, truth)
    complete = [r for r in records if r.state == "complete"]
    assert not isinstance(proposer.proposal(LINE, complete, random.Random(0))[1], FidelitySurface)
    assert not isinstance(
        BOStrategy(fidelity=False).proposer().proposal(LINE, records, random.Random(0))[1], FidelitySurface
    )


def test_learning_from_sources_the_candidates_shown_are_the_optimizers_own_next_trial() -> None:
    """``hybrid`` learning from sources under a scheduler: the first candidate shown to the model is the trial the
    optimizer's own round would run, the transfer surrogate fitted with the stopped trials' predicted finals. The
    transfer surrogate on the raw trials (none complete: its own model has nothing, the source all the weight)
    would have shown another."""
    records = stopped_early(0)

    def strategy() -> BOStrategy:
        return BOStrategy(experience=[source("good")], budget=20, n_open=0)

    for s in range(3):
        first, surface = strategy().proposer().proposal(SPACE, records, random.Random(s))
        ctx = ProposeContext(space=SPACE, records=records, rng=random.Random(s))
        config, decision = strategy()._surrogate_config(ctx)
        assert first == config and decision["fidelity"] is True and surface is not None
        transfer = strategy().transfer
        assert transfer is not None and transfer.proposal(SPACE, records, random.Random(s))[0] != config
