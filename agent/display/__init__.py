"""What a person sees while studies run: one study (:class:`RichReporter`), or a bench of them
(:class:`BenchDisplay`). On a terminal a live area redraws in place; elsewhere plain lines at a steady pace."""

from __future__ import annotations

from ._format import progress_text
from .bench import BenchDisplay
from .study import RichReporter

__all__ = ["BenchDisplay", "RichReporter", "progress_text"]
