"""Earlier studies made for real: small studies run through the session into SQLite files."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from agent.session import StudyConfig, run_study
from agent.tasks import Task, build_task

Run = Callable[..., Awaitable[Path]]


@pytest.fixture
def earlier(tmp_path: Path) -> Run:
    """``await earlier(task, folder, strategy=..., budget=..., seed=...)``: run a study into ``folder``."""

    async def run(task: str | Task, folder: str, *, strategy: str = "random", budget: int = 8, seed: int = 0) -> Path:
        built = build_task(task, seed=seed) if isinstance(task, str) else task
        save = tmp_path / folder
        config = StudyConfig(task=built, strategy=strategy, budget=budget, seed=seed, save_dir=save, checks=False)
        await run_study(config, say=lambda line: None)
        return save

    return run
