"""Optuna's own sampler contract tests (``optuna.testing.pytest_samplers``) for every strategy's sampler.

The fixture is parametrized over ``STRATEGIES``, so a strategy added to the CLI is tested here with no
change. Strategies that call a model get a provider answering a random valid configuration for whatever
schema the agent sends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from optuna.samplers import BaseSampler
from optuna.testing.pytest_samplers import (
    BasicSamplerTestCase,
    RelativeSamplerTestCase,
    SingleOnlySamplerTestCase,
)

from agent.providers.scripted import RandomAnswerProvider
from agent.sampler import StrategySampler
from agent.strategies.registry import list_strategies

STRATEGIES = [s.name for s in list_strategies()]


class TestEveryStrategySampler(BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase):
    @pytest.fixture(params=STRATEGIES)
    def sampler(self, request: pytest.FixtureRequest) -> Iterator[Callable[[], BaseSampler]]:
        made: list[StrategySampler] = []

        def make() -> BaseSampler:
            n = len(made)
            made.append(StrategySampler(request.param, provider=RandomAnswerProvider(seed=n), seed=n, budget=10))
            return made[-1]

        yield make
        for sampler in made:
            sampler.close()
