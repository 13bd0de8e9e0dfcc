"""Reports as markdown with PNG plots: of a whole bench (:mod:`agent.report.bench`), or of one study
(:mod:`agent.report.study`)."""

from .bench import write_bench_report
from .study import write_study_report

__all__ = ["write_bench_report", "write_study_report"]
