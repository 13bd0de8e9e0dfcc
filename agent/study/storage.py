"""Opening an Optuna storage from a URL: SQLite tuned for many small commits and several workers."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import optuna.storages.journal
import sqlalchemy

from agent.errors import UserError

__all__ = ["default_storage_url", "open_storage"]


def default_storage_url(save_dir: Path) -> str:
    return f"sqlite:///{save_dir.resolve() / 'study.db'}"


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url``; SQLite waits on locks instead of failing when workers share it.

    ``sqlite:///PATH`` (WAL, ``BEGIN IMMEDIATE``), a path ending in ``.log`` or ``journal:PATH`` (a journal
    file), or any SQLAlchemy URL Optuna's ``RDBStorage`` takes.
    """
    try:
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            if not path.parent.is_dir():
                raise UserError(f"--storage {url}: the folder {path.parent} does not exist; create it first")
            storage = _retry_schema_race(
                lambda: optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
            )
            sqlalchemy.event.listen(storage.engine, "connect", _sqlite_pragmas)
            sqlalchemy.event.listen(storage.engine, "begin", _sqlite_begin_immediate)
            storage.engine.dispose()  # connections made before the listener get the pragmas too
            return storage
        if url.endswith(".log") or url.startswith("journal:"):
            file = url.removeprefix("journal:")
            backend = optuna.storages.journal.JournalFileBackend(file)
            return optuna.storages.JournalStorage(backend)
        return _retry_schema_race(lambda: optuna.storages.RDBStorage(url))
    except UserError:
        raise
    except Exception as exc:  # SQLAlchemy raises many kinds; all mean the same to a user
        raise UserError(f"--storage {url}: cannot open the study storage: {exc}") from exc


def _sqlite_begin_immediate(connection: Any) -> None:
    """Every transaction takes SQLite's write lock when it begins (SQLAlchemy's pysqlite recipe).

    pysqlite otherwise begins a transaction only at the first write, so a read-then-write of Optuna's (is
    the trial still RUNNING? then finish it) could interleave with another worker's.
    """
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _retry_schema_race(make: Callable[[], optuna.storages.RDBStorage]) -> optuna.storages.RDBStorage:
    """Workers starting at once on a new database race to create its tables; the loser finds them made."""
    for attempt in range(5):
        try:
            return make()
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.IntegrityError) as exc:
            if not ("already exists" in str(exc) or "alembic_version" in str(exc)) or attempt == 4:
                raise
            time.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """WAL with synchronous=NORMAL: a commit costs microseconds instead of an fsync (Optuna commits several
    times a trial), and a killed process still loses nothing; only a power cut may drop the last commits."""
    connection.isolation_level = None  # pysqlite's own BEGIN comes too late; _sqlite_begin_immediate does it
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
