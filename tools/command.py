"""``evaluate`` for a task file's ``command``: one process per trial, its result read from what it prints.

The command is an argument list (a task file splits its string as a shell would; nothing runs through a
shell) whose ``{name}`` placeholders take the configuration's values, token by token. Each trial runs in its
own folder (``save_dir/trials/trial_NNNN/``, the process's working directory) with the environment variables
``TRIAL_NUMBER``, ``TRIAL_DIR`` and ``TRIAL_PARAMS`` (the configuration as JSON) and ``PYTHONUNBUFFERED=1``
(unless set), and its stdout and stderr are written there as ``stdout.log`` and ``stderr.log``, with the
command line in ``command.txt``.

What the process prints: every stdout line that is a JSON object is read. The trial's value is the ``metric``
key of the last such line; every other key (its last value) becomes one of the trial's metrics.
A line that also holds ``step`` (a non-negative integer) is an intermediate value: it is reported to the
study as it comes (``TrialContext.report``; a step that does not increase, or a line without the metric,
too: the study's reporter names it in a warning and schedules the trial no more), and when the study's
pruner says stop, the process is stopped and the trial is PRUNED at that value; the display shows it as the
trial's progress (``TrialContext.progress``: ``step 40: val_r2 0.8123``). A non-zero exit, a timeout, no
metric or a non-finite one make a FAIL trial whose reason, with the last lines of stderr, the model is
shown; the study goes on.

Output is streamed through :func:`anyio.open_process` (``anyio.run_process`` only returns once the process
has exited, which would leave nothing to prune). The process runs under a small guard
(:mod:`tools._guard`) in a session of its own: when the trial is stopped (pruned, timed out,
cancelled by Ctrl-C) or the study's process dies in any way, SIGKILL included, the command's whole process
group is sent SIGTERM, then SIGKILL after ``grace_s`` seconds. Nothing is left running.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import anyio
import anyio.to_thread
from anyio.abc import Process

from agent._log import get_logger
from agent.space import Choice, SearchSpace
from evaluators.base import EvalResult, Progress

from ._results import number_or_none, result_from, scalar_metrics
from .base import NO_TRIAL, EvaluationTool, TrialContext

_log = get_logger("agent.tools.command")  # under the agent logger, whose warnings the CLI shows

__all__ = ["KILL_GRACE_S", "PLACEHOLDER", "RunCommand", "format_value", "placeholders"]

#: Seconds between SIGTERM and SIGKILL when a trial's processes are stopped.
KILL_GRACE_S = 5.0
#: ``{name}``: a parameter's value (names of letters, digits, ``_``, ``-`` and ``.``; other braces stay as is).
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.\-]*)\}")
_GUARD = Path(__file__).with_name("_guard.py")
_STDERR_LINES = 8
_STDERR_LINE_CHARS = 300
_MAX_LINE_BYTES = 1 << 20


def placeholders(argv: Sequence[str]) -> list[str]:
    """The parameter names ``argv``'s placeholders refer to, in order of appearance."""
    return list(dict.fromkeys(name for token in argv for name in PLACEHOLDER.findall(token)))


def format_value(value: Choice) -> str:
    """A value as a command-line argument: ``true``/``false``, integers as such, floats round-trip exact."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


class RunCommand(EvaluationTool):
    """Runs ``argv`` (placeholders filled) once per trial and reads ``metric`` from its stdout."""

    name = "evaluate"
    description = "Run the training once with this configuration; returns the value of its metric, or why it failed."
    needs_directory: ClassVar[bool] = True

    def __init__(
        self,
        space: SearchSpace,
        argv: Sequence[str],
        metric: str,
        timeout: float | None = None,
        grace_s: float = KILL_GRACE_S,
    ) -> None:
        super().__init__(space)
        if not argv:
            raise ValueError("the command is empty")
        unknown = [name for name in placeholders(argv) if name not in space.params]
        if unknown:
            listed = ", ".join(f"{{{n}}}" for n in unknown)
            raise ValueError(f"{listed} names no parameter of the search space ({', '.join(space.params)})")
        self.argv = list(argv)
        self.metric = metric
        self.timeout = timeout
        self.grace_s = grace_s
        self._hinted = False  # the hint that a task file's `steps` would schedule the step lines, given once

    def command_for(self, config: Mapping[str, Choice]) -> list[str]:
        return [PLACEHOLDER.sub(lambda m: format_value(config[m.group(1)]), token) for token in self.argv]

    async def evaluate(self, config: dict[str, Choice], trial: TrialContext = NO_TRIAL) -> EvalResult:
        """Run the command once (in a temporary folder, removed after, when the trial has no folder)."""
        if trial.directory is not None:
            return await self._run(config, trial, trial.directory)
        with tempfile.TemporaryDirectory(prefix="llm-hpo-trial-") as folder:
            return await self._run(config, trial, Path(folder))

    async def _run(self, config: dict[str, Choice], trial: TrialContext, folder: Path) -> EvalResult:
        argv = self.command_for(config)
        env = {
            **os.environ,
            "TRIAL_NUMBER": "" if trial.number is None else str(trial.number),
            "TRIAL_DIR": str(folder),
            "TRIAL_PARAMS": json.dumps(config),
        }
        env.setdefault("PYTHONUNBUFFERED", "1")  # Python scripts print each line as it comes, not at exit
        logs = _Logs.open(folder, argv)
        output = _Output(self.metric)
        pruned, code = False, 0
        try:
            async with _guarded(argv, folder, env, self.grace_s) as process:
                with anyio.move_on_after(self.timeout) as deadline:
                    pruned = await _watch(process, logs, output, trial, self.grace_s)
                    code = await process.wait()
        finally:
            logs.close()
        self._hint_steps(trial, output)
        tail = logs.stderr_tail()
        if deadline.cancelled_caught:
            return output.failed(f"timed out after {self.timeout:g} s (the process was stopped)", tail)
        if pruned:
            return EvalResult(
                value=output.last_report, state="pruned", metrics={**output.metrics(), "step": output.last_step}
            )
        if code != 0:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
            return output.failed(f"the command {how}", tail)
        return output.result(tail)

    def _hint_steps(self, trial: TrialContext, output: _Output) -> None:
        """Once: a run that printed step lines nothing schedules, because the task says no last step."""
        if self._hinted or output.last_step < 0 or trial.report is not None or self.max_step is not None:
            return
        self._hinted = True
        _log.warning(
            f"trial {trial.number}: the command prints step lines, but the task file has no `steps:` key, so no "
            "run is stopped early; add `steps: N` (the last step a full run prints) to stop lagging runs early"
        )


async def _watch(process: Process, logs: _Logs, output: _Output, trial: TrialContext, grace_s: float) -> bool:
    """Read the process's output until it ends; True when the study's pruner stopped it. Each intermediate value
    is reported to the study and shown as the trial's progress (a step, with the metric's value)."""
    started = time.monotonic()
    assert process.stdout is not None and process.stderr is not None
    stderr = process.stderr

    async def drain_stderr() -> None:
        async for chunk in stderr:
            logs.stderr(chunk)

    async with anyio.create_task_group() as tg:
        tg.start_soon(drain_stderr)
        lines = _Lines()
        async for chunk in process.stdout:
            logs.stdout(chunk)
            for line in lines.feed(chunk):
                report = output.read(line)
                if report is None:
                    continue
                if trial.progress is not None and output.fresh:
                    trial.progress(output.progress(time.monotonic() - started))
                output.fresh = False
                if trial.report is None:
                    continue
                if await anyio.to_thread.run_sync(trial.report, *report):  # the pruner stops the trial
                    await _stop(process, grace_s)
                    return True
        output.read(lines.rest())  # a last line without a newline
    return False


@contextlib.asynccontextmanager
async def _guarded(argv: list[str], folder: Path, env: Mapping[str, str], grace_s: float) -> AsyncIterator[Process]:
    """The command under its guard; leaving the block stops whatever still runs (shielded from cancellation)."""
    guard = [sys.executable, "-I", str(_GUARD), str(os.getpid()), str(grace_s), "--", *argv]
    process = await anyio.open_process(guard, stdin=subprocess.DEVNULL, cwd=folder, env=env, start_new_session=True)
    try:
        yield process
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                await _stop(process, grace_s)
            await process.aclose()


async def _stop(process: Process, grace_s: float) -> None:
    """Ask the guard to stop the command's group; kill the guard itself if it has not exited in time."""
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    with anyio.move_on_after(grace_s + 2.0):
        await process.wait()
        return
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    await process.wait()


class _Lines:
    """Splits a byte stream into lines; a line longer than 1 MiB is dropped (it is no result line)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._overflow = False

    def feed(self, chunk: bytes) -> list[str]:
        self._buffer += chunk
        *complete, self._buffer = self._buffer.split(b"\n")
        lines = []
        for raw in complete:
            if not self._overflow:
                lines.append(raw.decode("utf-8", errors="replace"))
            self._overflow = False
        if len(self._buffer) > _MAX_LINE_BYTES:
            self._buffer, self._overflow = b"", True
        return lines

    def rest(self) -> str:
        return "" if self._overflow else self._buffer.decode("utf-8", errors="replace")


class _Output:
    """What the process printed that counts: its last JSON line, every key's last value, the reports."""

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self.final: dict[str, Any] | None = None
        self.keys: dict[str, Any] = {}
        self.last_step = -1
        self.last_report: float | None = None
        self.fresh = False  # the last step line read was a new, good step (shown as progress)

    def read(self, line: str) -> tuple[int, float] | None:
        """Take one stdout line; the ``(step, value)`` to report when it is a step line (a whole ``step`` >= 0).
        A step that does not increase, or one without a finite value of the metric (reported as NaN), goes to
        the reporter all the same: it judges them (:mod:`agent.study.reporting`); the progress shows only
        good ones."""
        obj = _json_object(line)
        if obj is None:
            return None
        self.keys.update(obj)
        self.final = obj
        step = _step(obj.get("step"))
        if "step" not in obj or step is None:
            return None
        value = number_or_none(obj.get(self.metric))
        if value is not None and math.isfinite(value) and step > self.last_step:
            self.last_step, self.last_report = step, value
            self.fresh = True
        return step, math.nan if value is None else value

    def metrics(self) -> dict[str, float | int | str]:
        return scalar_metrics({k: v for k, v in self.keys.items() if k != "step"}, leave_out=self.metric)

    def progress(self, elapsed_s: float) -> Progress:
        """The last intermediate value as the trial's progress: its step, and the numbers its line held."""
        line = self.final or {}
        numbers = {k: number_or_none(v) for k, v in line.items() if k != "step"}
        shown = {k: v for k, v in numbers.items() if v is not None and math.isfinite(v)}
        return Progress(self.last_step, None, elapsed_s, unit="step", metrics=shown, headline=self.metric)

    def result(self, tail: str) -> EvalResult:
        if self.final is None:
            return self.failed(f"the command printed no JSON line on stdout (the last one holds {self.metric!r})", tail)
        result = result_from(self.final, self.metric, "the last JSON line the command printed held")
        if result.state != "complete":
            return self.failed(result.error or "", tail)
        return EvalResult(value=result.value, metrics=self.metrics())

    def failed(self, reason: str, tail: str) -> EvalResult:
        error = f"{reason}; the last lines of its stderr:\n{tail}" if tail else reason
        return EvalResult(value=None, state="fail", metrics=self.metrics(), error=error)


def _json_object(line: str) -> dict[str, Any] | None:
    text = line.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return None
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def _step(value: Any) -> int | None:
    number = number_or_none(value)
    if number is None or not math.isfinite(number) or number < 0 or not number.is_integer():
        return None
    return int(number)


class _Logs:
    """The trial's ``stdout.log``, ``stderr.log`` and ``command.txt``; keeps stderr's last lines for the reason."""

    def __init__(self, stdout: BinaryIO, stderr: BinaryIO) -> None:
        self._stdout = stdout
        self._stderr = stderr
        self._tail: deque[str] = deque(maxlen=_STDERR_LINES)
        self._partial = b""

    @classmethod
    def open(cls, folder: Path, argv: Sequence[str]) -> _Logs:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "command.txt").write_text(shlex.join(argv) + "\n")
        return cls(open(folder / "stdout.log", "wb"), open(folder / "stderr.log", "wb"))  # noqa: SIM115

    def stdout(self, chunk: bytes) -> None:
        self._stdout.write(chunk)
        self._stdout.flush()

    def stderr(self, chunk: bytes) -> None:
        self._stderr.write(chunk)
        self._stderr.flush()
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        self._partial = self._partial[-_MAX_LINE_BYTES:]
        self._tail.extend(line.decode("utf-8", errors="replace") for line in lines if line.strip())

    def stderr_tail(self) -> str:
        lines = [*self._tail, self._partial.decode("utf-8", errors="replace")]
        kept = [line.rstrip()[:_STDERR_LINE_CHARS] for line in lines if line.strip()][-_STDERR_LINES:]
        return "\n".join(kept)

    def close(self) -> None:
        self._stdout.close()
        self._stderr.close()
