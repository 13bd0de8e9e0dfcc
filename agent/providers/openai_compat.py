"""Any OpenAI-compatible chat completions endpoint over httpx: OpenAI itself, vLLM, llama.cpp, LM Studio..."""

from __future__ import annotations

import functools
import json
import os
import re
import time
from collections.abc import Sequence
from typing import Any, Final

import httpx

from agent.errors import ContextOverflow, ProviderError, ProviderUnavailable, UserError
from agent.providers._retry import (
    DEFAULT_DEADLINE_S,
    RETRYABLE_STATUS,
    RetryPolicy,
    TransientFault,
    parse_retry_after,
    with_retries,
)
from agent.providers.base import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE, ChatMessage, Completion, Provider, Usage

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_TIMEOUT", "OpenAICompatProvider"]

DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"
DEFAULT_TIMEOUT: Final = httpx.Timeout(connect=10.0, read=180.0, write=30.0, pool=30.0)
# The probe asks little: a list of models, at most one token. A local server may load its model first.
_PROBE_TIMEOUT: Final = httpx.Timeout(connect=10.0, read=30.0, write=10.0, pool=10.0)
_LISTED_IN_ERRORS: Final = 8

# How a JSON schema is asked for, strictest first; a server that rejects one level gets the next. The first,
# a llama.cpp grammar, is tried only when asked for (``compact_json``).
_FORMAT_LEVELS: Final = ("compact_grammar", "json_schema", "json_object", "text")
_REDACTED: Final = "[redacted]"
# How servers say a prompt is too long: llama.cpp ("exceeds the available context size",
# "exceed_context_size_error"), OpenAI ("context_length_exceeded", "maximum context length"), vLLM (the latter).
_CONTEXT_OVERFLOW: Final = re.compile(r"context[ _](size|length|window)|maximum context|exceed_context", re.I)
_BODY_EXCERPT: Final = 300


class _FormatRejected(Exception):
    """The server refused the request as sent (a 4xx other than 401/403/404/429)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class OpenAICompatProvider(Provider):
    """``POST {base_url}/chat/completions`` with an optional JSON-schema ``response_format``.

    ``base_url`` defaults to ``OPENAI_BASE_URL``, else the OpenAI API; ``api_key`` to ``OPENAI_API_KEY``
    (sent as a bearer token only when set; pass ``api_key=""`` to send none). Pass ``http_client`` to
    reuse a client or inject a transport (``httpx.MockTransport`` in tests); the provider closes only a
    client it created itself.

    A schema is sent as ``response_format={"type": "json_schema", ...}``. A server that rejects that
    (HTTP 4xx other than 401/403/404/429) is asked again with ``{"type": "json_object"}``, then with no
    ``response_format``; the level that worked is remembered for later calls. Connection errors,
    timeouts, 429 (honouring ``Retry-After``), 5xx and bodies that are not a chat completion (an HTML page
    from a proxy) are retried for at most ``call_timeout_s`` seconds in all (and at most ``max_attempts``
    times when given), then raise :class:`~agent.errors.ProviderUnavailable`. What no retry fixes raises a
    :class:`~agent.errors.UserError` at once: a refused key (401/403), an unknown model or URL (404).
    :meth:`probe` finds those before a study starts. The key never appears in errors, logs or repr.
    """

    name = "openai"

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        max_attempts: int | None = None,
        call_timeout_s: float = DEFAULT_DEADLINE_S,
        compact_json: bool = False,
    ) -> None:
        if not model:
            raise UserError("the OpenAI-compatible provider needs a model name: pass --model or set AGENT_MODEL")
        self.model = model
        url = base_url if base_url is not None else os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        if not url.startswith(("http://", "https://")):
            raise UserError(f"base URL {url!r} must start with http:// or https:// (set OPENAI_BASE_URL)")
        self.base_url = url.rstrip("/")
        self._api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        self._owns_client = http_client is None
        self._client = http_client if http_client is not None else httpx.AsyncClient(timeout=timeout)
        self._timeout = timeout
        self._policy = RetryPolicy(deadline_s=call_timeout_s, max_attempts=max_attempts)
        self._format_level = 0 if compact_json else 1
        self._closed = False

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r}, api_key={key})"

    @property
    def response_format_level(self) -> str:
        """How a JSON schema is currently requested: ``json_schema``, ``json_object`` or ``text``."""
        return _FORMAT_LEVELS[self._format_level]

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            await self._client.aclose()

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        json_schema: dict[str, Any] | None = None,
        temperature: float = DEFAULT_TEMPERATURE,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        seed: int | None = None,
    ) -> Completion:
        if self._closed:
            raise ProviderError(f"{self!r} is closed")
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
        if seed is not None:
            payload["seed"] = seed
        url = f"{self.base_url}/chat/completions"
        what = f"POST {url} (model {self.model})"
        started = time.perf_counter()
        level = self._format_level
        while True:
            body = dict(payload)
            if json_schema is not None:
                body.update(_schema_fields(_FORMAT_LEVELS[level], json_schema))
            try:
                data = await with_retries(functools.partial(self._post, url, body), what=what, policy=self._policy)
            except _FormatRejected as rejected:
                if json_schema is None or level + 1 >= len(_FORMAT_LEVELS):
                    # Nothing is remembered: a request rejected at every level says nothing about formats.
                    raise ProviderError(f"{what} was rejected: {self._redact(str(rejected))}") from None
                level += 1
                continue
            break
        if json_schema is not None and level > self._format_level:
            self._format_level = level  # remember the level that worked (never step back up)
        latency = time.perf_counter() - started
        text, (prompt, completion, cached) = self._parse_completion(data)
        return Completion(
            text=text,
            usage=Usage(
                provider=self.name,
                model=self.model,
                prompt_tokens=prompt,
                completion_tokens=completion,
                cached_tokens=cached,
                latency_s=latency,
            ),
        )

    async def probe(self) -> None:
        """Check what no retry can fix before a study starts: the key and the model.

        ``GET {base_url}/models`` with the key: 401/403 raise a ``UserError``. When that list names the model,
        nothing more is sent; otherwise (a server without ``/models``, or one such as llama.cpp's that serves
        its one model under any name) a one-token completion settles it: 404 raises a ``UserError`` naming
        the models the server listed. A server that cannot be reached now raises ``ProviderUnavailable``
        (one try, no retries: the study's calls retry).
        """
        if self._closed:
            raise ProviderError(f"{self!r} is closed")
        url = f"{self.base_url}/models"
        response = await self._probe_request("GET", url)
        if response.status_code in (401, 403):
            raise self._refused_key(response)
        listed = _model_ids(response) if response.status_code == 200 else None
        if listed is not None and self.model in listed:
            return
        chat = f"{self.base_url}/chat/completions"
        body = {"model": self.model, "messages": [{"role": "user", "content": "Say OK."}], "max_tokens": 1}
        response = await self._probe_request("POST", chat, body)
        status = response.status_code
        if status in (401, 403):
            raise self._refused_key(response)
        if status == 404:
            served = f"; it lists {', '.join(listed[:_LISTED_IN_ERRORS])}" if listed else ""
            raise UserError(
                f"{self.base_url} does not serve model {self.model!r} (HTTP 404 from {chat}: "
                f"{self._detail(response)}){served}. Check --model/AGENT_MODEL and OPENAI_BASE_URL"
            )
        if status in RETRYABLE_STATUS:
            raise ProviderUnavailable(f"POST {chat} answered HTTP {status}: {self._detail(response)}")
        # Anything else (200, or a 400 about max_tokens) means the server took the key and knows the model.

    async def _probe_request(self, method: str, url: str, body: dict[str, Any] | None = None) -> httpx.Response:
        try:
            return await self._client.request(method, url, json=body, headers=self._headers(), timeout=_PROBE_TIMEOUT)
        except httpx.UnsupportedProtocol as exc:
            raise UserError(f"cannot reach {url}: {exc} (set OPENAI_BASE_URL)") from None
        except httpx.TimeoutException as exc:
            raise ProviderUnavailable(f"{method} {url} timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise ProviderUnavailable(
                f"{method} {url}: {type(exc).__name__}: {self._redact(str(exc))}; check that the server is "
                "running and reachable (OPENAI_BASE_URL)"
            ) from None

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _refused_key(self, response: httpx.Response) -> UserError:
        return UserError(
            f"{self.base_url} refused the API key (HTTP {response.status_code}): {self._detail(response)}; "
            "set OPENAI_API_KEY to a valid key for this server"
        )

    async def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self._client.post(url, json=body, headers=self._headers(), timeout=self._timeout)
        except httpx.TimeoutException as exc:
            raise TransientFault(
                f"timed out ({type(exc).__name__})",
                hint="that the server is up and not overloaded, or raise the provider's timeout",
            ) from None
        except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.DecodingError) as exc:
            raise TransientFault(
                f"{type(exc).__name__}: {self._redact(str(exc))}",
                hint=f"that the server at {self.base_url} is running and reachable (OPENAI_BASE_URL)",
            ) from None
        except httpx.UnsupportedProtocol as exc:
            raise UserError(f"cannot reach {url}: {exc} (set OPENAI_BASE_URL)") from None
        return self._check(response)

    def _check(self, response: httpx.Response) -> dict[str, Any]:
        status = response.status_code
        if status in (401, 403):
            raise self._refused_key(response)
        if status == 404:
            raise UserError(
                f"{self.base_url}/chat/completions or model {self.model!r} not found (HTTP 404): "
                f"{self._detail(response)}; check OPENAI_BASE_URL and --model/AGENT_MODEL"
            )
        if status in RETRYABLE_STATUS:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            hint = (
                "your rate limits and quota with the provider"
                if status == 429
                else f"the server at {self.base_url}: it is failing or overloaded"
            )
            raise TransientFault(f"HTTP {status}: {self._detail(response)}", hint=hint, retry_after=retry_after)
        if status in (400, 413) and _CONTEXT_OVERFLOW.search(self._detail(response)):
            raise ContextOverflow(
                f"the prompt is longer than the model's context window (HTTP {status}: {self._detail(response)})"
            )
        if 400 <= status < 500:
            raise _FormatRejected(status, self._detail(response))
        if status != 200:
            raise TransientFault(
                f"unexpected HTTP {status}: {self._detail(response)}",
                hint=f"that {self.base_url} is an OpenAI-compatible API (OPENAI_BASE_URL)",
            )
        content_type = response.headers.get("content-type", "")
        if "json" not in content_type:
            raise self._garbage(f"content type {content_type or 'missing'!r} instead of JSON", response)
        try:
            data = json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            raise self._garbage("a body that is not valid JSON (truncated or malformed)", response) from None
        if not isinstance(data, dict):
            raise self._garbage("a JSON body that is not an object", response)
        choices = data.get("choices")
        if (
            not isinstance(choices, list)
            or not choices
            or not isinstance(choices[0], dict)
            or not isinstance(choices[0].get("message"), dict)
        ):
            raise self._garbage("a JSON body without choices[0].message", response)
        content = choices[0]["message"].get("content")
        if content is not None and not isinstance(content, str):
            raise self._garbage("choices[0].message.content that is not a string", response)
        return data

    @staticmethod
    def _parse_completion(data: dict[str, Any]) -> tuple[str, tuple[int, int, int]]:
        """The text, and (prompt, completion, cached prompt) tokens. Cached tokens: OpenAI's and llama.cpp's
        ``usage.prompt_tokens_details.cached_tokens``, else llama.cpp's ``timings.cache_n``."""
        content = data["choices"][0]["message"].get("content") or ""
        usage = data.get("usage")
        prompt_tokens = completion_tokens = cached = 0
        if isinstance(usage, dict):
            prompt_tokens = _as_count(usage.get("prompt_tokens"))
            completion_tokens = _as_count(usage.get("completion_tokens"))
            details = usage.get("prompt_tokens_details")
            if isinstance(details, dict):
                cached = _as_count(details.get("cached_tokens"))
        timings = data.get("timings")
        if not cached and isinstance(timings, dict):
            cached = _as_count(timings.get("cache_n"))
        return content, (prompt_tokens, completion_tokens, min(cached, prompt_tokens))

    def _garbage(self, what: str, response: httpx.Response) -> TransientFault:
        return TransientFault(
            f"HTTP 200 with {what}: {self._excerpt(response)}",
            hint=f"that {self.base_url} is an OpenAI-compatible API and no proxy rewrites its answers",
        )

    def _detail(self, response: httpx.Response) -> str:
        """The server's error message, else an excerpt of its body (redacted)."""
        try:
            data = json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            data = None
        if isinstance(data, dict):
            error = data.get("error")
            if isinstance(error, dict) and isinstance(error.get("message"), str):
                return self._redact(error["message"][:_BODY_EXCERPT])
            if isinstance(error, str):
                return self._redact(error[:_BODY_EXCERPT])
        return self._excerpt(response)

    def _excerpt(self, response: httpx.Response) -> str:
        text = response.content[:_BODY_EXCERPT].decode("utf-8", errors="replace")
        suffix = "..." if len(response.content) > _BODY_EXCERPT else ""
        return repr(self._redact(text) + suffix) if text else "(empty body)"

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, _REDACTED) if self._api_key else text


def _schema_fields(level: str, json_schema: dict[str, Any]) -> dict[str, Any]:
    """The request fields asking for ``json_schema`` at ``level``.

    ``compact_grammar`` is llama.cpp's own ``grammar`` field holding an llguidance grammar of the schema with
    no optional whitespace: the model writes ``{"tool":"take","arguments":{"candidate":1}}`` rather than the
    pretty-printed JSON a ``response_format`` schema lets it write (a fifth fewer tokens to generate, and on a
    small CPU model every token is some 50 ms). llama.cpp takes the same options inside ``response_format``
    no further than its own schema-to-grammar conversion, which drops them.
    """
    if level == "compact_grammar":
        options = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
        schema = {**_without_float_bounds(json_schema), "x-guidance": options}
        return {"grammar": "%llguidance {}\nstart: %json " + json.dumps(schema)}
    if level == "json_schema":
        schema_format = {"name": "answer", "schema": json_schema, "strict": False}
        return {"response_format": {"type": "json_schema", "json_schema": schema_format}}
    if level == "json_object":
        return {"response_format": {"type": "json_object"}}
    return {}


def _without_float_bounds(schema: Any) -> Any:
    """``schema`` without ``minimum``/``maximum`` on numbers (integers keep theirs). A grammar bounding a float
    forces a model that means a value past the bound into endless digits (asked for 7 under a maximum of 1,
    it writes ``1.000000...`` to the token limit); unbounded, it writes 7, and the loop's validation reasks
    with the range."""
    if isinstance(schema, list):
        return [_without_float_bounds(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _without_float_bounds(v) for k, v in schema.items()}
    if out.get("type") == "number":
        out.pop("minimum", None)
        out.pop("maximum", None)
    return out


def _model_ids(response: httpx.Response) -> list[str] | None:
    """The ids of an OpenAI ``/models`` list (``{"data": [{"id": ...}]}``), or None for any other body."""
    try:
        data = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None
    entries = data.get("data") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return None
    return [e["id"] for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str)]


def _as_count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
