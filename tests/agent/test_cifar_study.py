"""CIFAR studies end to end on a small synthetic CIFAR-10 folder in the real format (no download here)."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import optuna
import pytest

from agent.cli import build_parser, main
from agent.providers.embedded import EmbeddedServer
from agent.records import TrialRecord
from agent.session import StudyConfig
from agent.study import study_records
from agent.study.scheduler import Scheduler
from agent.tasks import build_task
from evaluators.cifar.synthetic import write_synthetic_cifar

ROOT = Path(__file__).resolve().parents[2]
TINY_DATA = ["--subset", "256", "--val_size", "128", "--max_train_batches", "2", "--max_eval_batches", "2"]
TINY = [*TINY_DATA, "--num_train_epochs", "1"]


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    write_synthetic_cifar(root, n_train=1500, n_test=200, seed=0)
    return root


def test_the_main_command_trains_the_references_20_epochs_and_stops_laggards_at_epochs_1_3_and_9() -> None:
    """``python -m agent --task cifar-resnet9`` as a new user types it: the reference's epochs, scheduled."""
    args = build_parser().parse_args(["--task", "cifar-resnet9"])
    task = build_task(args.task, options=vars(args))
    assert task.tool.max_step == 20 and task.tool.min_step == 1
    assert "for 20 epochs" in task.description
    scheduler = StudyConfig(task=task, pruner=args.pruner).scheduler
    assert scheduler == Scheduler("asha", 1, 20)
    pruner = scheduler.build()
    assert isinstance(pruner, optuna.pruners.SuccessiveHalvingPruner)
    assert pruner._min_resource == 1 and pruner._reduction_factor == 3  # rungs at epochs 1, 3, 9
    short = build_parser().parse_args(["--task", "cifar-resnet9", "--num_train_epochs", "1"])
    assert build_task(short.task, options=vars(short)).tool.max_step == 1  # the reference's smoke test


def _study(save: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{save / 'study.db'}").get_trials(deepcopy=False)


def _records(save: Path, name: str) -> list[TrialRecord]:
    return study_records(optuna.load_study(study_name=name, storage=f"sqlite:///{save / 'study.db'}"))


@pytest.mark.slow
def test_random_study_on_resnet9_then_the_test_set_once(cifar_dir: Path, tmp_path: Path) -> None:
    save = tmp_path / "r"
    argv = ["--task", "cifar-resnet9", "--strategy", "random", "--budget", "2", "--seed", "1"]
    argv += ["--dataset_dir", str(cifar_dir), "--save_dir", str(save), "--train_batch_size", "64", *TINY]
    argv += ["--search_space", str(_space_without_big_batches(tmp_path)), "--quiet"]
    assert main(argv) == 0
    trials = _study(save, "cifar-resnet9-random-seed1")
    assert len(trials) == 2
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    for t in trials:
        metrics = json.loads((save / "trials" / f"trial_{t.number:04d}.json").read_text())["metrics"]
        assert 0.0 <= metrics["val_error"] <= 1.0
        assert metrics["epochs_run"] == 1
    study = optuna.load_study(study_name="cifar-resnet9-random-seed1", storage=f"sqlite:///{save / 'study.db'}")
    final = study.user_attrs["final_test"]
    assert final["trial"] == study.best_trial.number
    assert 0.0 <= final["test_error"] <= 1.0


def _space_without_big_batches(tmp_path: Path) -> Path:
    """The reference space, with batches that fit 256 images twice."""
    path = tmp_path / "space.json"
    path.write_text(
        json.dumps(
            {
                "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
                "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
                "train_batch_size": {"type": "categorical", "choices": [32, 64]},
                "weight_decay": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
                "label_smoothing": {"type": "float", "low": 0.0, "high": 0.2},
            }
        )
    )
    return path


@pytest.mark.slow
def test_a_batch_larger_than_the_data_is_a_failed_trial_the_study_survives(cifar_dir: Path, tmp_path: Path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("train_batch_size: {type: categorical, choices: [512]}\n")
    save = tmp_path / "f"
    argv = ["--task", "cifar-resnet9", "--strategy", "random", "--budget", "1", "--no-final-test"]
    argv += ["--dataset_dir", str(cifar_dir), "--save_dir", str(save), "--search_space", str(space), *TINY]
    assert main(argv) == 1, "a run whose every trial failed gave no result: exit status 1, saying so"
    (record,) = _records(save, "cifar-resnet9-random-seed0")
    assert record.state == "fail"
    assert record.error is not None and "smaller train_batch_size" in record.error


@pytest.mark.slow
@pytest.mark.embedded
def test_llm_study_on_resnet9_with_the_embedded_model(
    cifar_dir: Path, tmp_path: Path, embedded_server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENT_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", f"{embedded_server.base_url}/v1")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    save = tmp_path / "l"
    argv = ["--task", "cifar-resnet9", "--budget", "2", "--model", "qwen", "--no-final-test", "--quiet"]
    argv += ["--dataset_dir", str(cifar_dir), "--save_dir", str(save), *TINY]
    argv += ["--search_space", str(_space_without_big_batches(tmp_path))]
    assert main(argv) == 0
    trials = _study(save, "cifar-resnet9-llm-bo-seed0")  # the default strategy
    assert len(trials) == 2
    assert all(t.state.is_finished() for t in trials)
    records = _records(save, "cifar-resnet9-llm-bo-seed0")
    assert [r.source for r in records] == ["llm", "random"]  # the GP's startup draws at random
    assert records[0].proposal.conversation, "the round's conversation is stored with the trial"


@pytest.mark.slow
def test_train_command_runs_the_reference_smoke_test(cifar_dir: Path, tmp_path: Path) -> None:
    """The reference README's smoke test: resnet9, one epoch, batch 512, 2 train and 2 eval batches."""
    save = tmp_path / "t"
    argv = ["train", "--arch", "resnet9", "--num_train_epochs", "1", "--train_batch_size", "512"]
    argv += ["--max_train_batches", "2", "--max_eval_batches", "2", "--val_size", "200"]
    argv += ["--dataset_dir", str(cifar_dir), "--save_dir", str(save)]
    assert main(argv) == 0
    body = json.loads((save / "metrics.json").read_text())
    assert body["state"] == "complete"
    assert body["config"]["train_batch_size"] == 512
    assert 0.0 <= body["metrics"]["val_error"] <= 1.0


def test_no_dataset_and_no_network_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "--dataset_dir", str(tmp_path / "empty"), "--save_dir", str(tmp_path / "t"), *TINY]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "cifar-10-batches-py" in err


def test_a_study_without_data_stops_at_once_and_burns_no_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save = tmp_path / "s"
    argv = ["--task", "cifar-resnet9", "--strategy", "random", "--budget", "3", "--save_dir", str(save)]
    argv += ["--dataset_dir", str(tmp_path / "empty"), *TINY]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "cifar-10-batches-py" in err and "--dataset_dir" in err
    assert not save.exists(), "found before the study is created: no study.db, no trial"


# ---- progress: a two-epoch trial through a pseudo-terminal and through a pipe ----------------------------

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
TWO_EPOCHS = [*TINY_DATA, "--num_train_epochs", "2", "--train_batch_size", "64", "--device", "cpu", "--no-final-test"]


def _progress_run(cifar_dir: Path, save: Path, *extra: str) -> list[str]:
    argv = [sys.executable, "-m", "agent", "--task", "cifar-resnet9", "--strategy", "random", "--budget", "1"]
    argv += ["--search_space", str(_space_without_big_batches(save.parent))]
    return [*argv, "--dataset_dir", str(cifar_dir), "--save_dir", str(save), *TWO_EPOCHS, *extra]


def _through_a_terminal(argv: list[str]) -> tuple[int, str]:
    """Run ``argv`` with a pseudo-terminal of 140 columns as its stdin, stdout and stderr."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "140", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(argv, cwd=ROOT, stdin=terminal, stdout=terminal, stderr=terminal, env=env)
    os.close(terminal)
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        return proc.wait(timeout=600), b"".join(chunks).decode("utf-8", errors="replace")
    finally:  # whatever happened, the run ends with the test
        os.close(controller)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_progress_on_a_terminal_redraws_the_epochs_in_place(cifar_dir: Path, tmp_path: Path) -> None:
    code, raw = _through_a_terminal(_progress_run(cifar_dir, tmp_path / "tty"))
    assert code == 0, raw[-3000:]
    assert "\x1b[1A" in raw and "\x1b[2K" in raw, "the live area moves up and clears its lines to redraw"
    text = ANSI.sub("", raw)
    assert re.search(r"trial #0 .*epoch [12]/2", text), "the running trial's epochs are shown"
    assert re.search(r"study: trial 1/1, \d+s elapsed", text)
    assert re.search(r"estimate: 1 trial x 2 epochs x \d+ s per epoch on CPU = about \d+", text)
    assert re.search(r'trial #0: \{"optimizer": .*\} -> \S+  best', text)
    assert "best value" in text


@pytest.mark.slow
def test_progress_through_a_pipe_is_plain_lines(cifar_dir: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        _progress_run(cifar_dir, tmp_path / "pipe"), cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert not ANSI.search(out) and "\r" not in out, "no redrawing in a log"
    lines = out.splitlines()
    assert re.fullmatch(r'trial #0: \{"optimizer": .*\}', lines[1])
    epochs = [line for line in lines if re.match(r"  trial #0 epoch \d/2: ", line)]
    assert len(epochs) == 2, out
    assert re.fullmatch(
        r"  trial #0 epoch 1/2: loss [\d.]+, val_error [\d.]+, \d+ img/s, ~\d+(m\d\ds)?s? left", epochs[0]
    ), epochs[0]
    assert re.fullmatch(r"  trial #0 epoch 2/2: loss [\d.]+, val_error [\d.]+, \d+ img/s, \S+ elapsed", epochs[1])
    assert any(re.fullmatch(r"estimate: 1 trial x 2 epochs x \d+ s per epoch on CPU = about \S+", x) for x in lines)
    assert re.search(r"^trial #0 -> \S+  best \S+ \(#0\)  \[trial 1/1, \S+ elapsed\]$", out, re.M)

    quiet = subprocess.run(
        _progress_run(cifar_dir, tmp_path / "quiet", "--quiet"), cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert "epoch" not in quiet.stdout and "trial #0:" not in quiet.stdout and "best value" in quiet.stdout
