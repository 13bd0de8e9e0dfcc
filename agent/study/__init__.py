"""The study layer: the only code that reads or writes Optuna's trial attributes.

- :mod:`agent.study.storage`: opening a storage from a URL (SQLite tuned for many small commits), and closing
  it with its data in the database file;
- :mod:`agent.study.codec`: the stored format of a trial, to and from :class:`~agent.records.TrialRecord`;
- :mod:`agent.study.workers`: who runs a trial, whether that process lives, the study-wide lock;
- :mod:`agent.study.terms`: what a study is made for and what a resumed study keeps, checked before anything
  is written;
- :mod:`agent.study.door`: a configuration checked once against the space before it is claimed, whoever
  proposed it;
- :mod:`agent.study.scheduler`: which trials stop early (``--pruner``: Optuna's pruners over the task's steps),
  one of a study's terms;
- :mod:`agent.study.reporting`: a running trial's steps written to the storage and judged by the study's
  pruner, from this process, a worker process or a Ray task;
- :mod:`agent.study.store`: one study's trial lifecycle (snapshot, claim, adopt, finish) and its files;
- :mod:`agent.study.reading`: records and attributes of studies a run did not open (the bench, the report, the
  sources, Optuna samplers).

Optuna's private API it needs (trial ids, the storage behind a study, telling a trial) is in
:mod:`agent._optuna`.
"""

from .reading import (
    read_records,
    stored_meta,
    stored_records,
    study_meta,
    study_records,
    write_proposal,
)
from .storage import STORAGE_POINTER, close_storage, default_storage_url, open_storage, opened_storage, pointed_to
from .store import StudySnapshot, StudyStore
from .terms import StudyTerms, kept_sources

__all__ = [
    "STORAGE_POINTER",
    "StudySnapshot",
    "StudyStore",
    "StudyTerms",
    "close_storage",
    "default_storage_url",
    "kept_sources",
    "open_storage",
    "opened_storage",
    "pointed_to",
    "read_records",
    "stored_meta",
    "stored_records",
    "study_meta",
    "study_records",
    "write_proposal",
]
