"""Tests for agent/_log.py: a library is quiet. Importing or using the agent changes no logging setting of the
program's (nor Optuna's, nor structlog's), and says nothing below WARNING until the program asks."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator

import httpx
import optuna
import pytest

from agent.providers import _retry
from agent.providers.openai_compat import OpenAICompatProvider
from agent.providers.scripted import ScriptedProvider
from agent.sampler import StrategySampler

IMPORTS = """\
import logging, optuna, structlog
optuna.logging.set_verbosity(optuna.logging.ERROR)  # the program's own choice
def settings():
    root = logging.getLogger()
    return (optuna.logging.get_verbosity(), root.level, list(root.handlers), structlog.is_configured(),
            logging.getLogger("optuna").level)
before = settings()
import agent.sampler, agent.session, agent.cli, agent.bench, agent.report  # what a library user may import
import agent.providers.embedded, agent.providers.openai_compat, agent.providers.breaker
assert settings() == before, (before, settings())
print(logging.getLogger("agent").getEffectiveLevel())
"""


def test_importing_the_agent_changes_no_global_logging_setting() -> None:
    run = subprocess.run([sys.executable, "-c", IMPORTS], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(logging.WARNING), "the agent's own logger passes on warnings only"


def _answers() -> Iterator[httpx.Response]:
    """A server that fails twice (500), then answers every call."""
    yield httpx.Response(500, text="busy")
    yield httpx.Response(500, text="busy")
    for x in (0.5, 0.25, 0.75):
        content = ScriptedProvider.call("evaluate", x=x)
        yield httpx.Response(200, json={"choices": [{"message": {"role": "assistant", "content": content}}]})


def _study_with_a_flaky_model(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_wait(seconds: float) -> None:
        return None

    monkeypatch.setattr(_retry, "_sleep", no_wait)
    answers = _answers()
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: next(answers)))
    model = OpenAICompatProvider("m", base_url="http://llm.test/v1", api_key=None, http_client=client)
    with StrategySampler("llm", task_description="A test.", provider=model, budget=3, seed=0) as sampler:
        study = optuna.create_study(sampler=sampler)
        study.optimize(lambda trial: (trial.suggest_float("x", 0.0, 1.0) - 0.3) ** 2, n_trials=3)
    assert [t.params["x"] for t in study.trials[1:]] == [0.5, 0.25], "the model answered after its retries"


def test_the_sampler_and_providers_say_nothing_below_warning_unless_asked(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)  # the program shows every level of its own logs
    _study_with_a_flaky_model(monkeypatch)
    printed = capsys.readouterr()
    assert "provider_retry" not in printed.out + printed.err, "nothing printed behind the program's back"
    ours = [(r.name, r.levelno, r.getMessage()) for r in caplog.records if r.name.startswith("agent")]
    assert [(name, level) for name, level, _ in ours] == [("agent.providers._retry", logging.WARNING)]
    assert ours[0][2].startswith("provider_retry call='POST http://llm.test/v1/chat/completions (model m)' attempt=1 ")

    caplog.clear()
    monkeypatch.setattr(logging.getLogger("agent"), "level", logging.INFO)  # the README's way to see more
    _study_with_a_flaky_model(monkeypatch)
    retries = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "agent.providers._retry"]
    assert [level for level, _ in retries] == [logging.WARNING, logging.INFO]
    assert " attempt=2 " in retries[1][1]


def test_a_surrogates_private_studies_say_nothing_and_the_programs_own_still_do(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A library is quiet (issue 25, item 15): bo's GP made an in-memory study per proposal, each logging
    "A new study created in memory" into the program's log."""
    import random

    import optuna

    from agent.records import TrialRecord
    from agent.space import FloatParam, SearchSpace
    from agent.strategies.surrogate import SurrogateModel

    caplog.set_level(logging.INFO)
    space = SearchSpace(params={"x": FloatParam(low=0.0, high=1.0)})
    records = [TrialRecord(number=i, config={"x": i / 5}, state="complete", value=(i / 5 - 0.3) ** 2) for i in range(5)]
    SurrogateModel().propose(space, records, random.Random(0))
    created = [r for r in caplog.records if "A new study created in memory" in r.getMessage()]
    assert created == []
    optuna.create_study()  # the program's own study, after: still said, no setting left changed
    created = [r for r in caplog.records if "A new study created in memory" in r.getMessage()]
    assert len(created) == 1


def test_a_private_gaussian_process_falling_back_says_nothing_and_one_of_the_program_still_does(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Fitted on many equal values (a rung where most runs diverged alike), Optuna's GP warns that it falls back
    to its default kernel: noise for the user of a strategy whose model it is, a warning for a program's own."""
    import numpy as np

    from agent._log import optuna_quiet
    from agent._optuna import GaussianProcess

    caplog.set_level(logging.WARNING)
    gp_log = logging.getLogger("optuna._gp.gp")
    x = np.linspace(0.0, 1.0, 12).reshape(-1, 1)
    GaussianProcess.fit(x, np.full(12, 0.9), np.array([False]))  # whatever the fit says, inside the quiet block
    with optuna_quiet():
        gp_log.warning("The optimization of kernel parameters failed: (private)")
    gp_log.warning("The optimization of kernel parameters failed: (the program's own)")
    said = [r.getMessage() for r in caplog.records if r.name == "optuna._gp.gp"]
    assert said == ["The optimization of kernel parameters failed: (the program's own)"]
