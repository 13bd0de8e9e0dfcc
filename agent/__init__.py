"""An async LLM agent for hyperparameter optimization.

A library is quiet: the package logs through :mod:`logging` under the ``agent`` logger, whose own level is
WARNING unless the program set one before (``logging.getLogger("agent").setLevel(logging.INFO)`` shows more);
nothing else of ``logging``, structlog or Optuna is touched on import.
"""

import logging as _logging

__version__ = "0.1.0"

if _logging.getLogger(__name__).level == _logging.NOTSET:
    _logging.getLogger(__name__).setLevel(_logging.WARNING)
