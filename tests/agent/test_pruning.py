"""Early stopping: tools that report per epoch, Optuna's MedianPruner, pruned trials shown as such."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from agent.conversation import Agent
from agent.optimize import optimize
from agent.providers.scripted import ScriptedProvider
from agent.strategies.llm import LLMStrategy
from agent.study import StudyStore
from agent.tasks import build_task
from evaluators.base import EvalResult
from evaluators.cifar.synthetic import write_synthetic_cifar
from tools.base import NO_TRIAL, TrialContext
from tools.evaluate_toy import EvaluateToy
from tools.train_cifar import TrainCifar

pytestmark = pytest.mark.anyio
TASK = build_task("toy-branin")
call = ScriptedProvider.call


class ReportingToy(EvaluateToy):
    """Branin "trained" for 4 epochs: the error at epoch e is value * (1 + 1/e); stops when told to."""

    def __init__(self) -> None:
        super().__init__("branin", TASK.space)
        self.epochs: list[int] = []

    async def evaluate(self, config: dict[str, Any], trial: TrialContext = NO_TRIAL) -> EvalResult:
        final = await super().evaluate(config)
        assert final.value is not None
        for epoch in range(1, 5):
            self.epochs.append(epoch)
            if trial.report is not None and trial.report(epoch, final.value * (1 + 1 / epoch)):
                return EvalResult(value=final.value * (1 + 1 / epoch), state="pruned")
        return final


async def test_a_lagging_trial_is_pruned_recorded_and_shown_to_the_model_as_pruned(tmp_path: Path) -> None:
    store = StudyStore.open(
        save_dir=tmp_path, study_name="p", space=TASK.space, meta={"task": TASK.name}, storage=str(tmp_path / "s.log")
    )
    answers = [
        call("evaluate_toy", x1=3.14, x2=2.27),  # near an optimum: ~0.4
        call("evaluate_toy", x1=9.4, x2=2.5),  # ~0.4
        call("evaluate_toy", x1=-5.0, x2=0.0),  # ~308: far worse than the median at epoch 1
        call("evaluate_toy", x1=3.0, x2=3.0),
    ]
    provider = ScriptedProvider(answers)
    agent = Agent(
        provider=provider,
        eval_tool=TASK.tool,
        task_description=TASK.description,
        task_template=TASK.template,
        budget=4,
    )
    strategy = LLMStrategy(agent)
    tool = ReportingToy()
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    try:
        await optimize(tool=tool, strategy=strategy, store=store, budget=4, pruner=pruner)
    finally:
        store.close()

    states = [t.state for t in store.study.get_trials()]
    assert states[:3] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED]
    pruned = store.study.get_trials()[2]
    assert pruned.intermediate_values == {1: pytest.approx(2 * 308.129, rel=1e-3)}
    assert store.records()[2].state == "pruned"
    assert "trial 2: " in provider.calls[-1].messages[-1].content
    assert "pruned (stopped early) at step 1: 616.258" in provider.calls[-1].messages[-1].content
    assert store.records()[2].curve == {1: pytest.approx(2 * 308.129, rel=1e-3)}


async def test_without_a_pruner_flag_the_tool_gets_no_report(tmp_path: Path) -> None:
    store = StudyStore.open(
        save_dir=tmp_path, study_name="p", space=TASK.space, meta={"task": TASK.name}, storage=str(tmp_path / "s.log")
    )
    store.study.pruner = optuna.pruners.MedianPruner(n_startup_trials=0)
    from agent.strategies.baselines import RandomStrategy

    strategy = RandomStrategy()
    try:
        await optimize(tool=ReportingToy(), strategy=strategy, store=store, budget=3)
    finally:
        store.close()
    assert all(t.state == TrialState.COMPLETE and not t.intermediate_values for t in store.study.get_trials())


@pytest.mark.slow
async def test_train_cifar_reports_each_epoch_and_stops_when_told(tmp_path: Path) -> None:
    write_synthetic_cifar(tmp_path, n_train=300, n_test=50, seed=0)
    flags = {  # the training flags as the command line gives them
        "dataset_dir": str(tmp_path),
        "subset": 200,
        "val_size": 64,
        "num_train_epochs": 3,
        "train_batch_size": 32,
        "max_train_batches": 1,
        "max_eval_batches": 1,
    }
    task = build_task("cifar-resnet9", options=flags)
    assert isinstance(task.tool, TrainCifar)
    seen: list[tuple[int, float]] = []

    def report(epoch: int, val_error: float) -> bool:
        seen.append((epoch, val_error))
        return epoch == 2

    config = {"optimizer": "adam", "learning_rate": 1e-3, "train_batch_size": 32, "weight_decay": 1e-4}
    config["label_smoothing"] = 0.0
    result = await task.tool.evaluate(config, TrialContext(report=report))
    assert [e for e, _ in seen] == [1, 2]
    assert result.state == "pruned" and result.value == seen[-1][1]
    assert result.metrics["epochs_run"] == 2


class _Killed(Exception):
    """Stands in for a kill of the trial's process after an epoch."""


@pytest.mark.slow
async def test_train_cifar_re_run_in_its_trial_folder_continues_from_its_last_epoch(tmp_path: Path) -> None:
    write_synthetic_cifar(tmp_path, n_train=300, n_test=50, seed=0)
    flags = {"dataset_dir": str(tmp_path), "subset": 200, "val_size": 64, "num_train_epochs": 3}
    flags |= {"train_batch_size": 32, "max_train_batches": 1, "max_eval_batches": 1}
    task = build_task("cifar-resnet9", options=flags)
    assert isinstance(task.tool, TrainCifar) and task.tool.max_step == 3 and task.tool.needs_directory
    config = {"optimizer": "adam", "learning_rate": 1e-3, "train_batch_size": 32, "weight_decay": 1e-4}
    config["label_smoothing"] = 0.0
    folder = tmp_path / "trial_0000"
    folder.mkdir()

    def killed_at_two(epoch: int, _value: float) -> bool:
        if epoch == 2:
            raise _Killed
        return False

    with pytest.raises(_Killed):
        await task.tool.evaluate(config, TrialContext(directory=folder, report=killed_at_two))
    assert (folder / "checkpoint.pt").exists()
    epochs: list[int] = []
    again = await task.tool.evaluate(
        config, TrialContext(directory=folder, report=lambda e, _v: epochs.append(e) or False)
    )
    assert epochs == [3] and again.state == "complete" and again.metrics["epochs_run"] == 3
    assert not (folder / "checkpoint.pt").exists(), "a finished trial keeps no checkpoint"
