"""Tests for agent/strategies/candidates.py: the optimizer's next candidates and what the model that proposed
predicts."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest

from agent.records import SourceData, TrialRecord
from agent.space import CategoricalParam, FloatParam, IntParam, SearchSpace
from agent.strategies.candidates import neighbour, optimizer_candidates
from agent.strategies.surrogate import SurrogateModel
from agent.strategies.transfer import TransferSurrogate

SPACE = SearchSpace(
    params={
        "lr": CategoricalParam(choices=(1e-5, 1e-4, 1e-3, 1e-2, 1e-1)),
        "x": FloatParam(low=-5.0, high=5.0),
        "n": IntParam(low=1, high=8),
    }
)


def bowl(config: dict[str, object]) -> float:
    lr = math.log10(float(config["lr"]))  # type: ignore[arg-type]
    return (lr + 3) ** 2 + (float(config["x"]) - 1) ** 2 + abs(int(config["n"]) - 4)  # type: ignore[call-overload]


def records(n: int, seed: int = 0) -> list[TrialRecord]:
    rng = random.Random(seed)
    configs = [SPACE.sample(rng) for _ in range(n)]
    return [TrialRecord(number=i, config=c, state="complete", value=bowl(c)) for i, c in enumerate(configs)]


def test_the_first_candidate_is_the_optimizers_own_next_trial() -> None:
    done = records(6)
    candidates = optimizer_candidates(SurrogateModel(), SPACE, done, random.Random(7), k=3)
    alone = SurrogateModel().propose(SPACE, done, random.Random(7))
    assert candidates[0].config == alone
    keys = [SPACE.key(c.config) for c in candidates]
    assert len(keys) == 3 == len(set(keys))
    assert not set(keys) & {SPACE.key(r.config) for r in done}
    for c in candidates:
        assert SPACE.validate_config(c.config) == c.config
        assert math.isfinite(c.mean) and c.sd >= 0


def test_predictions_follow_the_data() -> None:
    """After a dozen trials of a bowl, the model predicts its bottom lower than a far corner."""
    done = records(12, seed=1)
    best = {"lr": 1e-3, "x": 1.0, "n": 4}
    done.append(TrialRecord(number=12, config=best, state="complete", value=0.0))
    candidates = optimizer_candidates(SurrogateModel(), SPACE, done, random.Random(0), k=3)
    assert all(c.mean < 30 for c in candidates)  # the corners of this bowl are worth some 50


def test_before_there_is_data_the_prediction_is_unknown() -> None:
    (candidate,) = optimizer_candidates(SurrogateModel(), SPACE, [], random.Random(0), k=3)
    assert math.isnan(candidate.mean) and SPACE.validate_config(candidate.config) == candidate.config


def test_a_neighbour_moves_a_little_and_stays_in_the_space() -> None:
    rng = random.Random(0)
    start = {"lr": 1e-3, "x": 0.0, "n": 4}
    for _ in range(200):
        moved = neighbour(SPACE, start, rng)
        assert SPACE.validate_config(moved) == moved
        changed = [k for k in start if moved[k] != start[k]]
        assert len(changed) <= 2
        assert abs(float(moved["x"])) <= 1.0 + 1e-9 and abs(int(moved["n"]) - 4) <= 1


def test_the_predictions_are_the_proposing_models_and_cost_no_fit_of_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without sources: the Gaussian process GPSampler fitted for candidate 1 predicts every candidate."""
    done = records(10, seed=2)
    fits = count_fits(monkeypatch)
    first, surface = SurrogateModel().proposal(SPACE, done, random.Random(7))
    alone = len(fits)
    candidates = optimizer_candidates(SurrogateModel(), SPACE, done, random.Random(7), k=3)
    assert len(fits) == 2 * alone, "the candidates cost the fits of the proposal, and no more"
    assert surface is not None and candidates[0].config == first
    mean, var = surface.predict([c.config for c in candidates])  # scores, warped (surrogate.scores)
    mean, sd = surface.values(mean, np.sqrt(var))  # back in the study's units
    assert np.allclose([c.mean for c in candidates], mean) and np.allclose([c.sd for c in candidates], sd)


def test_a_maximized_study_sees_its_predictions_in_its_own_units() -> None:
    done = records(10, seed=3)
    flipped = [r.model_copy(update={"value": -r.value}) for r in done if r.value is not None]
    low = optimizer_candidates(SurrogateModel(), SPACE, done, random.Random(1), k=2)
    high = optimizer_candidates(SurrogateModel(), SPACE, flipped, random.Random(1), k=2, direction="maximize")
    assert [c.config for c in low] == [c.config for c in high]
    assert np.allclose([c.mean for c in high], [-c.mean for c in low], rtol=1e-6)
    assert np.allclose([c.sd for c in high], [c.sd for c in low], rtol=1e-6)


def test_with_sources_the_candidates_and_predictions_come_from_the_ensemble(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(4)
    configs = [SPACE.sample(rng) for _ in range(30)]
    transfer = TransferSurrogate([SourceData("s", tuple(configs), tuple(bowl(c) for c in configs))])
    done = records(6, seed=5)
    transfer.models(SPACE)  # the source's model, fitted once per study
    fits = count_fits(monkeypatch)
    proposal = transfer.propose_weighted(SPACE, done, random.Random(9))
    assert len(fits) == 1, "a round fits this study's own model only"
    candidates = optimizer_candidates(transfer, SPACE, done, random.Random(9), k=3)
    assert len(fits) == 2 and candidates[0].config == proposal.config
    assert proposal.surface is not None
    mean, var = proposal.surface.predict([c.config for c in candidates])
    values, sds = proposal.surface.values(mean, np.sqrt(var))
    assert np.allclose([c.mean for c in candidates], values) and np.allclose([c.sd for c in candidates], sds)
    misleading = TransferSurrogate([SourceData("s", tuple(configs), tuple(-bowl(c) for c in configs))])
    alone = misleading.propose_weighted(SPACE, done, random.Random(9))
    assert alone.weights["target"] == 1.0 and alone.surface is not None
    mean, var = alone.surface.predict([r.config for r in done])
    values, _ = alone.surface.values(mean, np.sqrt(var))  # this study's own model, back in the study's units
    assert np.allclose(values, [r.value for r in done], rtol=0.05, atol=0.5)


def count_fits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one at every Gaussian process fit (Optuna's, whoever calls it)."""
    from optuna._gp import gp

    fits: list[int] = []
    fit = gp.fit_kernel_params

    def counted(*args: Any, **kwargs: Any) -> Any:
        fits.append(1)
        return fit(*args, **kwargs)

    monkeypatch.setattr(gp, "fit_kernel_params", counted)
    return fits
