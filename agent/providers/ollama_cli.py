"""A local model through the ``ollama run`` command line (as the paper's reference code does)."""

from __future__ import annotations

import functools
import os
import shutil
import signal
import time
from collections.abc import Sequence
from typing import Any, Final

import anyio

from agent.errors import ProviderError, ProviderUnavailable, UserError
from agent.providers._retry import RetryPolicy, TransientFault, with_retries
from agent.providers.base import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE, ChatMessage, Completion, Provider, Usage

__all__ = ["OllamaCLIProvider", "render_prompt"]

_STDERR_TAIL: Final = 2000
#: A local model is slow, not down: a call may take this long, retries included (``--provider-timeout``).
DEFAULT_CALL_TIMEOUT_S: Final = 600.0
_PROBE_TIMEOUT_S: Final = 30.0
# What `ollama` prints for a model it does not have ("model 'x' not found", "pull model manifest: file does
# not exist" for a name the registry does not know either).
_UNKNOWN_MODEL: Final = ("not found", "file does not exist")
_ROLE_LABELS: Final = {"system": "System", "user": "User", "assistant": "Assistant"}


def render_prompt(messages: Sequence[ChatMessage]) -> str:
    """One prompt text for a CLI that takes no roles: the system text first, then the turns, labelled.

    >>> render_prompt([ChatMessage(role="system", content="Be brief."), ChatMessage(role="user", content="Hi")])
    'Be brief.\\n\\nUser: Hi\\n'
    """
    system = [m.content.strip() for m in messages if m.role == "system"]
    turns = [f"{_ROLE_LABELS[m.role]}: {m.content.strip()}" for m in messages if m.role != "system"]
    head = "\n\n".join(system)
    body = "\n\n".join(turns)
    return (f"{head}\n\n{body}" if head and body else head or body) + "\n"


def _resolve_executable(executable: str | None) -> str:
    configured = executable if executable is not None else os.environ.get("OLLAMA_EXECUTABLE")
    name = configured or "ollama"
    found = shutil.which(name)
    if found is None:
        where = f"{name!r} is not an executable file" if configured else "'ollama' is not on PATH"
        raise UserError(
            f"cannot run Ollama: {where}. Install Ollama (https://ollama.com) or set OLLAMA_EXECUTABLE "
            "to the path of the ollama binary."
        )
    return found


class OllamaCLIProvider(Provider):
    """Runs ``ollama run MODEL --format json`` once per call, the prompt on stdin.

    What the CLI cannot set, so this provider ignores: ``temperature``, ``seed`` and ``max_tokens``
    (``ollama run`` has no flags for them; set them in a Modelfile instead), the system role (``run``
    has no ``--system``: the system text leads the one rendered prompt, see :func:`render_prompt`) and a
    JSON schema beyond ``--format json`` (the answer is some JSON value; the loop validates its shape).
    Token counts are not reported by ``ollama run``, so ``Usage.prompt_tokens`` and
    ``Usage.completion_tokens`` stay 0; the latency is measured.

    The executable is ``executable``, else ``OLLAMA_EXECUTABLE``, else ``ollama`` on PATH. A non-zero
    exit or an attempt running past ``timeout_s`` is retried for at most ``call_timeout_s`` seconds in all
    (and at most ``max_attempts`` times when given), then raises :class:`~agent.errors.ProviderUnavailable`
    carrying the tail of stderr. A model Ollama does not have raises a ``UserError`` at once; :meth:`probe`
    finds it before a study starts (``ollama show MODEL``).
    """

    name = "ollama"

    def __init__(
        self,
        model: str,
        executable: str | None = None,
        max_attempts: int | None = None,
        timeout_s: float = 300.0,
        call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
    ) -> None:
        if not model:
            raise UserError("the ollama provider needs a model name: pass --model or set AGENT_MODEL")
        self.model = model
        self.executable = _resolve_executable(executable)
        self.timeout_s = timeout_s
        self._policy = RetryPolicy(deadline_s=call_timeout_s, max_attempts=max_attempts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, executable={self.executable!r})"

    @property
    def argv(self) -> list[str]:
        """The command run for each call (an argument list: no shell is involved)."""
        return [self.executable, "run", self.model, "--format", "json"]

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        json_schema: dict[str, Any] | None = None,
        temperature: float = DEFAULT_TEMPERATURE,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        seed: int | None = None,
    ) -> Completion:
        prompt = render_prompt(messages).encode("utf-8")
        argv = self.argv
        started = time.perf_counter()
        what = f"`{' '.join(argv)}`"
        text = await with_retries(functools.partial(self._run, argv, prompt), what=what, policy=self._policy)
        latency = time.perf_counter() - started
        return Completion(text=text, usage=Usage(provider=self.name, model=self.model, latency_s=latency))

    async def probe(self) -> None:
        """``ollama show MODEL``: a model Ollama does not have raises a ``UserError`` (pull it first: ``run``
        would download it inside a timed call); a daemon that does not answer raises ``ProviderUnavailable``."""
        argv = [self.executable, "show", self.model]
        try:
            with anyio.fail_after(_PROBE_TIMEOUT_S):
                result = await anyio.run_process(argv, check=False)
        except TimeoutError:
            raise ProviderUnavailable(f"`{' '.join(argv)}` gave no answer within {_PROBE_TIMEOUT_S:g} s") from None
        except OSError as exc:
            raise UserError(f"cannot run {argv[0]!r}: {exc}; set OLLAMA_EXECUTABLE to the ollama binary") from None
        if result.returncode == 0:
            return
        if _unknown_model(result.stderr):
            raise self._unknown_model(result.stderr)
        raise ProviderUnavailable(
            f"`{' '.join(argv)}` exited with status {_describe_status(result.returncode)}: {_tail(result.stderr)}; "
            "check that `ollama serve` is running"
        )

    def _unknown_model(self, stderr: bytes) -> UserError:
        return UserError(
            f"Ollama has no model {self.model!r} ({_tail(stderr)}): run `ollama pull {self.model}` first, or "
            "choose another --model/AGENT_MODEL (`ollama list` shows the models you have)"
        )

    async def _run(self, argv: list[str], prompt: bytes) -> str:
        try:
            with anyio.fail_after(self.timeout_s):
                result = await anyio.run_process(argv, input=prompt, check=False)
        except TimeoutError:
            raise TransientFault(
                f"no answer within {self.timeout_s:g} s",
                hint=f"that `ollama serve` is running and the model {self.model!r} is pulled",
            ) from None
        except OSError as exc:
            raise UserError(f"cannot run {argv[0]!r}: {exc}; set OLLAMA_EXECUTABLE to the ollama binary") from None
        if result.returncode != 0:
            if _unknown_model(result.stderr):
                raise self._unknown_model(result.stderr)
            raise TransientFault(
                f"exit status {_describe_status(result.returncode)}; stderr: {_tail(result.stderr)}",
                hint=f"that `ollama serve` is running and `ollama pull {self.model}` has been done",
            )
        try:
            return result.stdout.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ProviderError(f"`{' '.join(argv)}` printed output that is not UTF-8") from None


def _unknown_model(stderr: bytes) -> bool:
    text = stderr.decode("utf-8", errors="replace").lower()
    return any(marker in text for marker in _UNKNOWN_MODEL)


def _tail(stderr: bytes) -> str:
    text = stderr.decode("utf-8", errors="replace").strip()
    if not text:
        return "(empty)"
    return text if len(text) <= _STDERR_TAIL else "..." + text[-_STDERR_TAIL:]


def _describe_status(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"{returncode} (killed by {signal.Signals(-returncode).name})"
        except ValueError:
            pass
    return str(returncode)
