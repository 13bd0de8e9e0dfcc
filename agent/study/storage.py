"""Opening an Optuna storage from a URL: SQLite tuned for many small commits and several workers; closing it
so that a SQLite file holds all its data on its own."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import optuna.storages.journal
import sqlalchemy

from agent.errors import UserError

__all__ = [
    "STORAGE_POINTER",
    "close_storage",
    "default_storage_url",
    "open_storage",
    "opened_storage",
    "point_to",
    "pointed_to",
]

#: How long closing waits for other workers' writes before it leaves the log to the last one to close.
_CHECKPOINT_WAIT_MS = 5000


#: The file in a study's (or a bench's) folder naming a storage file that lives elsewhere or under another name
#: (``--storage x.log``), so that the folder stands for its study wherever the storage is (``--learn-from``).
STORAGE_POINTER = "storage.url"


def default_storage_url(save_dir: Path) -> str:
    return f"sqlite:///{save_dir.resolve() / 'study.db'}"


def point_to(url: str, folder: Path, default: str) -> None:
    """Write ``folder``'s pointer to the storage file ``url`` unless it is the folder's ``default`` storage.
    A database server's URL (it may hold a password) is not written: give that URL itself."""
    path = url.removeprefix("sqlite:///").removeprefix("journal:")
    if url == default or (path == url and not url.endswith(".log")):
        return
    absolute = str(Path(path).resolve())
    pointer = folder / STORAGE_POINTER
    written = f"sqlite:///{absolute}" if url.startswith("sqlite:///") else absolute
    if not pointer.is_file() or pointer.read_text(encoding="utf-8").strip() != written:
        pointer.write_text(written + "\n", encoding="utf-8")


def pointed_to(folder: Path) -> str | None:
    """The storage URL ``folder``'s pointer names (:func:`point_to`), or None when it has none."""
    pointer = folder / STORAGE_POINTER
    if not pointer.is_file():
        return None
    return pointer.read_text(encoding="utf-8").strip() or None


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


def close_storage(storage: optuna.storages.BaseStorage) -> None:
    """Close a storage :func:`open_storage` made. A SQLite file's write-ahead log (``study.db-wal``, where WAL
    mode keeps recent commits) is first copied into the database file and emptied, so that ``study.db`` alone
    holds the whole study (copied, mailed, opened by another tool). Other storages: nothing to do.

    While other workers write to the same file the checkpoint may copy only part of the log; the last
    process to close copies the rest. Using the storage again reopens its connections.
    """
    if not isinstance(storage, optuna.storages.RDBStorage) or storage.engine.dialect.name != "sqlite":
        return
    with contextlib.suppress(sqlalchemy.exc.SQLAlchemyError, OSError):
        connection = storage.engine.raw_connection()  # outside SQLAlchemy's transactions: a checkpoint needs none
        try:
            cursor = connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {_CHECKPOINT_WAIT_MS}")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cursor.close()
        finally:
            connection.close()
    storage.engine.dispose()


@contextlib.contextmanager
def opened_storage(url: str) -> Iterator[optuna.storages.BaseStorage]:
    """:func:`open_storage` for the length of a ``with`` block, closed by :func:`close_storage`."""
    storage = open_storage(url)
    try:
        yield storage
    finally:
        close_storage(storage)


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
