"""Tests for agent/sources/reading.py: what --learn-from may name, and the studies read there."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent.errors import UserError
from agent.session import StudyConfig, run_study
from agent.sources.reading import locate, read_sources
from agent.study import default_storage_url
from agent.tasks import build_task

from .conftest import Run

pytestmark = pytest.mark.anyio


def test_what_is_no_storage_is_one_error_naming_it_and_nothing_is_written(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--learn-from .*nope: no such file or folder"):
        locate(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no study.db, bench.db or storage.url"):
        locate(str(tmp_path / "empty"))
    with pytest.raises(UserError, match="^learn_from .*empty: the folder holds no study.db"):
        locate(str(tmp_path / "empty"), flag="learn_from")  # a library's caller is told its own argument
    text = tmp_path / "notes.db"
    text.write_text("not a database at all, but long enough to be looked at " * 40)
    with pytest.raises(UserError, match="is not an SQLite database"):
        locate(str(text))
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("create table things (x)")
    with pytest.raises(UserError, match="is not an Optuna storage"):
        locate(f"sqlite:///{other}")
    with sqlite3.connect(other) as db:
        tables = [row[0] for row in db.execute("select name from sqlite_master where type = 'table'")]
    assert tables == ["things"], "nothing was created in a database that is not a storage"


async def test_a_study_folder_a_bench_folder_and_a_url_name_the_same_storage(tmp_path: Path, earlier: Run) -> None:
    save = await earlier("toy-branin", "study", budget=3)
    url = default_storage_url(save)
    assert locate(str(save)) == url == locate(url) == locate(str(save / "study.db"))
    bench = tmp_path / "bench"
    bench.mkdir()
    (save / "study.db").rename(bench / "bench.db")
    assert locate(str(bench)) == f"sqlite:///{(bench / 'bench.db').resolve()}"


async def test_a_study_folder_whose_storage_is_a_journal_elsewhere_is_a_source(tmp_path: Path) -> None:
    """Issue 25, item 19: a folder made with ``--storage x.log`` was refused ("holds no study.db")."""
    journal = tmp_path / "elsewhere" / "studies.log"
    journal.parent.mkdir()
    save = tmp_path / "study"
    config = StudyConfig(
        task=build_task("toy-branin"), strategy="random", budget=3, save_dir=save, storage=str(journal), checks=False
    )
    await run_study(config, say=lambda line: None)
    assert not (save / "study.db").exists()
    assert locate(str(save)) == str(journal.resolve()) == (save / "storage.url").read_text().strip()
    learner = StudyConfig(
        task=build_task("toy-branin"), strategy="random", budget=4, save_dir=tmp_path / "next", learn_from=(str(save),)
    )
    summary = await run_study(learner, say=lambda line: None)
    assert len(summary.learned_from) == 1 and "(3 trials)" in summary.learned_from[0], summary.learned_from


async def test_a_study_in_its_folders_default_storage_writes_no_pointer(tmp_path: Path, earlier: Run) -> None:
    save = await earlier("toy-branin", "study", budget=1)
    assert sorted(p.name for p in save.iterdir()) == ["events.jsonl", "study.db", "trials"]


async def test_studies_are_read_with_what_they_tuned_and_pooled_by_task(tmp_path: Path, earlier: Run) -> None:
    first = await earlier("hpobench-kc1", "kc1", budget=5, seed=0)
    await earlier("toy-branin", "branin", budget=4)
    # A second study of kc1 in the first one's storage, under another name: pooled with it.
    config = StudyConfig(
        task=build_task("hpobench-kc1", seed=1),
        strategy="random",
        budget=3,
        seed=1,
        save_dir=tmp_path / "kc1b",
        storage=default_storage_url(first),
        checks=False,
    )
    await run_study(config, say=lambda line: None)
    urls = [locate(str(first)), locate(str(tmp_path / "branin"))]
    sources, notes = read_sources(urls)
    assert notes == []
    by_task = {s.space.model_dump_json(): s for s in sources}
    assert len(sources) == 2
    kc1 = next(s for s in sources if "alpha" in s.space.params)
    assert len(kc1.studies) == 2 and len(kc1.trials) == 8
    assert kc1.description == build_task("hpobench-kc1").description, "as the study recorded it"
    values = [v for _, v in kc1.trials]
    assert values == sorted(values), "best first (a minimized error)"
    assert kc1.direction == "minimize" and kc1.metric == "val_error"
    assert len(by_task) == 2

    alone, _ = read_sources(urls, exclude=(urls[0], "hpobench-kc1-random-seed0"))
    kc1_alone = next(s for s in alone if "alpha" in s.space.params)
    assert len(kc1_alone.studies) == 1 and len(kc1_alone.trials) == 3, "the running study is never its own source"
