"""Where ``--learn-from`` points, and what the studies there tuned.

A SOURCE is an Optuna storage URL (every study in it), a study's folder (holding ``study.db``), a bench's folder
(holding ``bench.db``), or the database or journal file itself. :func:`locate` checks one without changing
anything (nothing is created in a file that is not an Optuna storage); :func:`read_sources` reads every study
there: what it tuned (its task's description, search space, direction and metric, as every study records
them) and its finished trials. Studies that tuned the same thing (the same task, description, space and
direction: a bench's seeds and strategies of one task) are pooled into one source, so the model is asked
about each once.
"""

from __future__ import annotations

import math
import os
import random
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy

from agent.errors import UserError
from agent.records import Direction
from agent.space import Choice, SearchSpace
from agent.study import STORAGE_POINTER, opened_storage, pointed_to, read_records, study_meta

__all__ = ["MAX_SOURCE_TRIALS", "SourceStudy", "canonical_url", "locate", "read_sources"]

#: Trials kept of one source (its best quarter and a random draw of the rest): a Gaussian process per source
#: costs the cube of its size.
MAX_SOURCE_TRIALS = 200
_STORAGE_FILES = ("study.db", "bench.db")
#: One study of a pool: its key, what it tuned, its finished trials.
_Member = tuple[str, dict[str, Any], list[tuple[dict[str, Choice], float]]]


@dataclass(frozen=True)
class SourceStudy:
    """What earlier studies tuned (one or several pooled) and their finished trials."""

    #: The studies it pools, as ``STORAGE#NAME``.
    studies: tuple[str, ...]
    description: str
    space: SearchSpace
    direction: Direction
    metric: str | None
    #: Finished trials with a value: (configuration, value), best first.
    trials: tuple[tuple[dict[str, Choice], float], ...] = field(repr=False)
    #: Whether it recorded a description (or a task this installation knows); a plain Optuna study did not.
    described: bool = True

    @property
    def name(self) -> str:
        """A short name for messages: the first study's name, and how many more it pools."""
        first = self.studies[0].rsplit("#", 1)[-1]
        return first if len(self.studies) == 1 else f"{first} (+{len(self.studies) - 1} more)"

    def best(self, k: int) -> list[tuple[dict[str, Choice], float]]:
        return list(self.trials[:k])


def locate(source: str, *, flag: str = "--learn-from") -> str:
    """The storage URL ``source`` names; a ``UserError`` saying what is wrong when it names none, naming
    ``flag`` (the command line's or a library's argument that gave it)."""
    text = source.strip()
    if "://" in text or text.startswith("journal:"):
        url = text
    else:
        path = Path(text).expanduser()
        if not path.exists():
            raise UserError(f"{flag} {source}: no such file or folder")
        found = [path / name for name in _STORAGE_FILES if (path / name).is_file()] if path.is_dir() else [path]
        pointer = pointed_to(path) if path.is_dir() and not found else None
        if pointer is not None:
            url = pointer  # a study run with --storage elsewhere (a journal): its folder says where
        elif not found:
            raise UserError(
                f"{flag} {source}: the folder holds no study.db, bench.db or {STORAGE_POINTER}; give a study's or "
                "a bench's folder, a storage file or an Optuna storage URL"
            )
        else:
            url = f"{found[0].resolve()}" if found[0].suffix == ".log" else f"sqlite:///{found[0].resolve()}"
    _check_storage(url, source, flag)
    return url


def _check_storage(url: str, source: str, flag: str) -> None:
    """An Optuna storage is there (read without writing: Optuna would create its tables in any database)."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_file():
            raise UserError(f"{flag} {source}: no such file {path}")
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                tables = {row[0] for row in db.execute("select name from sqlite_master where type = 'table'")}
        except sqlite3.DatabaseError as exc:
            raise UserError(f"{flag} {source}: {path} is not an SQLite database ({exc})") from None
        if "studies" not in tables or "trials" not in tables:
            raise UserError(f"{flag} {source}: {path} is not an Optuna storage (it has no studies)")
        return
    if url.endswith(".log") or url.startswith("journal:"):
        path = Path(url.removeprefix("journal:"))
        if not path.is_file() or not os.access(path, os.R_OK):
            raise UserError(f"{flag} {source}: cannot read the journal file {path}")
        return
    try:
        engine = sqlalchemy.create_engine(url)
        try:
            has = sqlalchemy.inspect(engine).has_table("studies")
        finally:
            engine.dispose()
    except Exception as exc:  # a missing driver, a refused connection: all mean the same to a user
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{flag} {source}: cannot open the storage ({detail})") from None
    if not has:
        raise UserError(f"{flag} {source}: not an Optuna storage (it has no studies)")


def read_sources(
    urls: Sequence[str], *, exclude: tuple[str, str] | None = None, describe: Any = None
) -> tuple[list[SourceStudy], list[str]]:
    """Every study in the storages ``urls`` (``locate``'s; a storage named twice is read once), pooled by what
    they tuned; and a line for each study left out (no finished trial, no search space, the study itself).
    ``exclude`` is the study being run (storage URL, name): never its own source. ``describe(task_name)`` gives
    a task's description for studies that did not record theirs (None: their task's name stands in)."""
    notes: list[str] = []
    groups: dict[tuple[str, str, str, str], list[_Member]] = {}
    for url in dict.fromkeys(canonical_url(u) for u in urls):
        with opened_storage(url) as storage:
            _read(url, storage, exclude, describe, groups, notes)
    return [_pooled(members) for members in groups.values()], notes


def _read(
    url: str,
    storage: optuna.storages.BaseStorage,
    exclude: tuple[str, str] | None,
    describe: Any,
    groups: dict[tuple[str, str, str, str], list[_Member]],
    notes: list[str],
) -> None:
    """Add the studies of one storage to ``groups`` (and a note for each left out)."""
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        name = summary.study_name
        key = f"{url}#{name}"
        if exclude is not None and _same_storage(url, exclude[0]) and name == exclude[1]:
            notes.append(f"{key} is this study itself, which does not learn from itself; left out")
            continue
        study = optuna.load_study(study_name=name, storage=storage)
        if len(study.directions) != 1:
            notes.append(f"{key}: a multi-objective study; left out")
            continue
        attrs = study_meta(study)
        space = _space(attrs, study)
        if space is None:
            notes.append(f"{key}: no search space recorded nor any finished trial; left out")
            continue
        trials = _finished(study, space)
        if not trials:
            notes.append(f"{key}: no finished trial; left out")
            continue
        direction: Direction = "maximize" if study.direction.name == "MAXIMIZE" else "minimize"
        description = attrs.get("description") or _described(attrs.get("task"), describe) or f"study {name}"
        meta = {"description": description, "direction": direction, "metric": attrs.get("metric")}
        meta["described"] = description != f"study {name}"  # no description nor known task: its name stands in
        group = (str(attrs.get("task", "")), description, space.model_dump_json(), direction)
        groups.setdefault(group, []).append((key, meta | {"space": space}, trials))


def canonical_url(url: str) -> str:
    """One spelling of a storage URL: an SQLite or journal file by its resolved path."""
    if url.startswith("sqlite:///"):
        return "sqlite:///" + str(Path(url.removeprefix("sqlite:///")).resolve())
    if url.startswith("journal:") or (url.endswith(".log") and "://" not in url):
        return str(Path(url.removeprefix("journal:")).resolve())
    return url


def _same_storage(a: str, b: str) -> bool:
    return canonical_url(a) == canonical_url(b)


def _described(task: Any, describe: Any) -> str | None:
    if not isinstance(task, str) or describe is None:
        return None
    try:
        return str(describe(task))
    except Exception:  # a task this installation does not know: its name stands in
        return None


def _space(attrs: dict[str, Any], study: optuna.Study) -> SearchSpace | None:
    stored = attrs.get("space")
    if isinstance(stored, dict):
        try:
            return SearchSpace.from_dict(stored)
        except UserError:
            pass
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished() and t.distributions]
    if not complete:
        return None
    common = set.intersection(*(set(t.distributions) for t in complete))
    dists = {n: d for n, d in complete[-1].distributions.items() if n in common}
    try:
        return SearchSpace.from_optuna(dists) if dists else None
    except (UserError, ValueError):
        return None


def _finished(study: optuna.Study, space: SearchSpace) -> list[tuple[dict[str, Choice], float]]:
    out = []
    for record in read_records(study.get_trials(deepcopy=False)):
        if record.state != "complete" or record.value is None or not math.isfinite(record.value):
            continue
        config = {n: record.config[n] for n in space.params if n in record.config}
        if len(config) == len(space.params):
            out.append((config, record.value))
    return out


def _pooled(members: Iterable[_Member]) -> SourceStudy:
    members = list(members)
    meta = members[0][1]
    sign = -1.0 if meta["direction"] == "maximize" else 1.0
    trials = sorted((t for _, _, ts in members for t in ts), key=lambda t: sign * t[1])
    if len(trials) > MAX_SOURCE_TRIALS:
        best = trials[: MAX_SOURCE_TRIALS // 4]
        rest = random.Random(len(trials)).sample(trials[len(best) :], MAX_SOURCE_TRIALS - len(best))
        trials = sorted(best + rest, key=lambda t: sign * t[1])
    return SourceStudy(
        studies=tuple(key for key, _, _ in members),
        description=meta["description"],
        space=meta["space"],
        direction=meta["direction"],
        metric=meta["metric"],
        trials=tuple(trials),
        described=meta["described"],
    )
