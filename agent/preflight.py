"""Setup checks before a study starts: before any model loads, before any trial, before anything is written.

What would otherwise fail late or burn the budget one failed trial at a time is checked first, cheaply, in
the order a user fixes things: the task's own setup (CIFAR: the data present and large enough for
``--val_size`` and ``--subset``, read from the files' labels without decoding images), ``--save_dir``
writable, ``--storage`` reachable (connected to, never created), and the model provider (its probe: a refused
key, an unknown model, a missing executable, a corrupt model file). Each problem is one
:class:`~agent.errors.UserError` naming what to fix (the CLI exits with status 2); nothing is created, so no
``study.db`` and no trial is left behind. A provider that cannot be reached right now is not a setup error:
the study starts and proposes without it until it answers (``--on-provider-error``), after a warning.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import sqlalchemy

from evaluators.base import SetupError

from .errors import ProviderUnavailable, UserError
from .providers.base import Provider
from .study.storage import default_storage_url
from .tasks import Task

__all__ = ["check_save_dir", "check_setup", "check_storage", "check_task", "probe_provider"]


async def check_setup(
    *,
    task: Task,
    save_dir: Path,
    storage: str | None,
    provider: Provider | None,
    warn: Callable[[str], None] | None = None,
) -> None:
    """Every check, in order; the first problem raises a ``UserError``. ``warn`` gets the line saying the
    provider cannot be reached now (default: printed to stderr)."""
    check_task(task)
    check_save_dir(save_dir)
    check_storage(storage, save_dir)
    if provider is not None:
        await probe_provider(provider, warn=warn)


def check_task(task: Task) -> None:
    """What would fail every trial of ``task`` the same way (:meth:`EvaluationTool.check_setup`)."""
    try:
        task.tool.check_setup()
    except SetupError as exc:
        raise UserError(str(exc)) from None


def check_save_dir(save_dir: Path, flag: str = "--save_dir") -> None:
    """``save_dir`` exists as a writable folder, or can be created: its nearest existing ancestor is one."""
    path = Path(save_dir).expanduser().absolute()
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{flag} {save_dir}: {existing} is a file, not a folder; choose another {flag}")
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "that folder" if existing == path else f"{existing}, where it would be created,"
        raise UserError(f"{flag} {save_dir}: {what} is not writable; choose another {flag}")


def check_storage(storage: str | None, save_dir: Path) -> None:
    """The study storage can be opened, without creating it: SQLite and journal files where they would be,
    other databases connected to (and disconnected at once)."""
    if storage is None:
        return  # sqlite:///<save_dir>/study.db: the save_dir check covers it
    url = storage
    if url == default_storage_url(Path(save_dir)):
        return
    if url.startswith("sqlite:///"):
        _check_file(Path(url.removeprefix("sqlite:///")), url, sqlite=True)
    elif url.endswith(".log") or url.startswith("journal:"):
        _check_file(Path(url.removeprefix("journal:")), url, sqlite=False)
    else:
        _check_database(url)


def _check_file(path: Path, url: str, *, sqlite: bool) -> None:
    if path.exists():
        if not path.is_file() or not os.access(path, os.R_OK | os.W_OK):
            raise UserError(f"--storage {url}: {path} is not a file this process may read and write")
        if sqlite:
            try:
                with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                    db.execute("select count(*) from sqlite_master").fetchone()
            except sqlite3.DatabaseError as exc:
                raise UserError(f"--storage {url}: {path} is not an SQLite database ({exc})") from None
        return
    folder = path.parent
    if not folder.is_dir():
        raise UserError(f"--storage {url}: the folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"--storage {url}: the folder {folder} is not writable")


def _check_database(url: str) -> None:
    try:
        shown = sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError as exc:
        raise UserError(f"--storage: {exc}; give an Optuna storage URL (sqlite:///PATH, a *.log file, ...)") from None
    try:
        engine = sqlalchemy.create_engine(url)
    except Exception as exc:  # a missing driver is an ImportError, a bad option many things
        raise UserError(f"--storage {shown}: cannot use this URL ({type(exc).__name__}: {exc})") from None
    try:
        with engine.connect():
            pass
    except Exception as exc:  # SQLAlchemy wraps every driver's errors differently: all mean the same here
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"--storage {shown}: cannot connect ({detail})") from None
    finally:
        engine.dispose()


async def probe_provider(provider: Provider, *, warn: Callable[[str], None] | None = None) -> bool:
    """The provider's probe: a ``UserError`` for what no retry fixes; True when it answered, False (after a
    warning) when it cannot be reached right now."""
    try:
        await provider.probe()
    except ProviderUnavailable as exc:
        (warn or _to_stderr)(
            f"warning: the model cannot be reached now ({exc}). The study starts anyway; each round that cannot "
            "reach it is proposed without it (see --on-provider-error)."
        )
        return False
    return True


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
