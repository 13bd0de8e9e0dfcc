"""Tests for agent/strategies/candidates.py: the optimizer's next candidates and what its model predicts."""

from __future__ import annotations

import math
import random

from agent.records import TrialRecord
from agent.space import CategoricalParam, FloatParam, IntParam, SearchSpace
from agent.strategies.candidates import neighbour, optimizer_candidates
from agent.strategies.surrogate import SurrogateModel

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
