"""Setup checks before a study starts (agent/preflight.py): one clear line, exit status 2, nothing created."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from agent.errors import ProviderUnavailable, UserError
from agent.preflight import check_save_dir, check_storage, check_task, probe_provider
from agent.providers.base import ChatMessage, Completion, Provider
from agent.tasks import build_task
from evaluators.cifar.synthetic import write_synthetic_cifar

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def readme_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's stand-in: 2,000 training images (the default --val_size is 5,000)."""
    root = tmp_path_factory.mktemp("data-synthetic")
    write_synthetic_cifar(root, n_train=2000, n_test=500)
    return root


def _agent(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENT_", "OPENAI_", "OLLAMA_"))}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "agent", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    return result, time.monotonic() - started


@pytest.mark.slow  # spawns the study's process
@pytest.mark.parametrize("case", ["too-small", "missing"])
def test_data_problems_end_in_one_line_before_the_model_loads(case: str, readme_dataset: Path, tmp_path: Path) -> None:
    """The default strategy and provider (llm-bo, the embedded model), as a new user runs it."""
    data = readme_dataset if case == "too-small" else tmp_path / "no-data"
    save = tmp_path / "study"
    result, seconds = _agent("--task", "cifar-resnet9", "--dataset_dir", str(data), "--save_dir", str(save))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    if case == "too-small":
        assert lines[0].startswith("error: --val_size 5000 holds out at least as many images as the 2000 training")
        assert "choose a --val_size below 2000" in lines[0]
    else:
        assert lines[0].startswith("error: CIFAR-10 not found") and lines[0].endswith("(--dataset_dir)")
    assert result.stdout == ""
    assert not save.exists(), "nothing recorded: no study.db, no trial"
    assert seconds < 120  # loose: the model (seconds to load, more to answer) was never started


def test_a_subset_larger_than_the_data_is_caught_too(readme_dataset: Path) -> None:
    flags = {"dataset_dir": str(readme_dataset), "val_size": 400}  # as the command line gives them
    with pytest.raises(UserError, match="--subset 1700 asks for more training images than the 1600 left"):
        check_task(build_task("cifar-resnet9", options={**flags, "subset": 1700}))
    check_task(build_task("cifar-resnet9", options=flags))
    check_task(build_task("toy-branin"))  # nothing to check


def test_save_dir_must_be_a_folder_we_can_create(tmp_path: Path) -> None:
    check_save_dir(tmp_path / "a" / "b" / "c")
    assert not (tmp_path / "a").exists(), "checked, not created"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match=f"--save_dir {blocker}/sub: {blocker} is a file, not a folder"):
        check_save_dir(blocker / "sub")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_unwritable_save_dir_is_named(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(UserError, match="is not writable"):
        check_save_dir(locked / "study")


def test_storage_is_reached_without_being_created(tmp_path: Path) -> None:
    check_storage(None, tmp_path / "s")
    check_storage(f"sqlite:///{tmp_path / 'new.db'}", tmp_path / "s")
    check_storage(str(tmp_path / "journal.log"), tmp_path / "s")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(
        UserError, match="--storage sqlite:////no/such/dir/x.db: the folder /no/such/dir does not exist"
    ):
        check_storage("sqlite:////no/such/dir/x.db", tmp_path)
    junk = tmp_path / "junk.db"
    junk.write_text("not a database, but long enough to have a header " * 10)
    with pytest.raises(UserError, match="is not an SQLite database"):
        check_storage(f"sqlite:///{junk}", tmp_path)
    with pytest.raises(UserError, match="/no/such/dir does not exist"):
        check_storage("journal:/no/such/dir/j.log", tmp_path)


def test_a_database_url_is_connected_to_and_its_password_never_shown() -> None:
    with pytest.raises(UserError) as caught:
        check_storage("postgresql://optuna:s3cret-pw@127.0.0.1:9/studies", Path("."))
    message = str(caught.value)
    assert message.startswith("--storage postgresql://optuna:***@127.0.0.1:9/studies: cannot")
    assert "s3cret-pw" not in message


class _Probed(Provider):
    name, model = "probed", "m"

    def __init__(self, fault: Exception | None) -> None:
        self.fault = fault

    async def complete(self, messages: Sequence[ChatMessage], **kwargs: Any) -> Completion:
        raise AssertionError("a probe makes no call")

    async def probe(self) -> None:
        if self.fault is not None:
            raise self.fault


@pytest.mark.anyio
async def test_a_provider_down_now_is_a_warning_and_a_fatal_one_an_error() -> None:
    warnings: list[str] = []
    assert await probe_provider(_Probed(None), warn=warnings.append) is True
    assert await probe_provider(_Probed(ProviderUnavailable("connection refused")), warn=warnings.append) is False
    assert len(warnings) == 1 and "connection refused" in warnings[0] and "--on-provider-error" in warnings[0]
    with pytest.raises(UserError, match="OPENAI_API_KEY"):
        await probe_provider(_Probed(UserError("refused the API key; set OPENAI_API_KEY")))
