"""The OpenAI-compatible provider against scripted HTTP answers (httpx.MockTransport): no network."""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from agent.errors import ContextOverflow, ProviderError, ProviderUnavailable, UserError
from agent.providers import _retry
from agent.providers.base import ChatMessage
from agent.providers.openai_compat import OpenAICompatProvider

KEY = "sk-test-5ecret-DO-NOT-LEAK-0123456789"
URL = "http://llm.test/v1"
MESSAGES = [
    ChatMessage(role="system", content="You tune hyperparameters."),
    ChatMessage(role="user", content="Propose x."),
]
SCHEMA = {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}

Handler = Callable[[httpx.Request], httpx.Response]


def ok(content: str = '{"x": 0.5}', usage: dict[str, int] | None = None) -> httpx.Response:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
    }
    if usage is not None:
        body["usage"] = usage
    return httpx.Response(200, json=body)


class Recorder:
    """A MockTransport handler that answers from a script and records every request."""

    def __init__(self, *answers: httpx.Response | Handler | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return answer

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]


@pytest.fixture(autouse=True)
def no_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    yield


def provider(recorder: Recorder, api_key: str | None = KEY, **kwargs: Any) -> OpenAICompatProvider:
    client = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    return OpenAICompatProvider("test-model", base_url=URL, api_key=api_key, http_client=client, **kwargs)


@pytest.mark.anyio
async def test_success_parses_text_and_usage() -> None:
    recorder = Recorder(ok('{"x": 0.25}', usage={"prompt_tokens": 31, "completion_tokens": 7, "total_tokens": 38}))
    async with provider(recorder) as p:
        completion = await p.complete(MESSAGES, temperature=0.2, max_tokens=16, seed=3)
    assert completion.text == '{"x": 0.25}'
    usage = completion.usage
    assert (usage.provider, usage.model, usage.prompt_tokens, usage.completion_tokens) == (
        "openai",
        "test-model",
        31,
        7,
    )
    assert usage.latency_s > 0
    (request,) = recorder.requests
    assert request.method == "POST"
    assert str(request.url) == f"{URL}/chat/completions"
    body = recorder.bodies()[0]
    assert body["model"] == "test-model"
    assert body["messages"] == [m.model_dump() for m in MESSAGES]
    assert (body["temperature"], body["max_tokens"], body["seed"]) == (0.2, 16, 3)
    assert "response_format" not in body


@pytest.mark.anyio
@pytest.mark.parametrize(
    "extra",
    [
        {"usage": {"prompt_tokens": 278, "completion_tokens": 20, "prompt_tokens_details": {"cached_tokens": 277}}},
        {"usage": {"prompt_tokens": 278, "completion_tokens": 20}, "timings": {"cache_n": 277, "prompt_n": 1}},
    ],
    ids=["openai-style", "llama.cpp-timings"],
)
async def test_cached_prompt_tokens_are_reported(extra: dict[str, Any]) -> None:
    """llama.cpp's prompt cache (and OpenAI's) say how much of the prompt they did not process again."""
    response = ok()
    body = {**json.loads(response.content), **extra}
    async with provider(Recorder(httpx.Response(200, json=body))) as p:
        completion = await p.complete(MESSAGES)
    assert (completion.usage.prompt_tokens, completion.usage.cached_tokens) == (278, 277)


@pytest.mark.anyio
async def test_missing_usage_counts_zero() -> None:
    async with provider(Recorder(ok())) as p:
        completion = await p.complete(MESSAGES)
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (0, 0)


@pytest.mark.anyio
async def test_bearer_header_only_when_a_key_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    with_key = Recorder(ok())
    async with provider(with_key) as p:
        await p.complete(MESSAGES)
    assert with_key.requests[0].headers["authorization"] == f"Bearer {KEY}"

    without_key = Recorder(ok())
    async with provider(without_key, api_key=None) as p:
        await p.complete(MESSAGES)
    assert "authorization" not in without_key.requests[0].headers

    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    from_env = Recorder(ok())
    async with provider(from_env, api_key=None) as p:
        await p.complete(MESSAGES)
    assert from_env.requests[0].headers["authorization"] == "Bearer sk-from-env"

    explicit_none = Recorder(ok())
    async with provider(explicit_none, api_key="") as p:
        await p.complete(MESSAGES)
    assert "authorization" not in explicit_none.requests[0].headers


@pytest.mark.anyio
async def test_base_url_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://other.test/api/")
    recorder = Recorder(ok())
    client = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    async with OpenAICompatProvider("m", http_client=client) as p:
        await p.complete(MESSAGES)
    assert str(recorder.requests[0].url) == "http://other.test/api/chat/completions"
    await client.aclose()


@pytest.mark.anyio
async def test_json_schema_response_format_is_sent() -> None:
    recorder = Recorder(ok())
    async with provider(recorder) as p:
        await p.complete(MESSAGES, json_schema=SCHEMA)
    assert recorder.bodies()[0]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": SCHEMA, "strict": False},
    }


@pytest.mark.anyio
async def test_a_compact_grammar_for_llama_cpp_when_asked_then_json_schema_if_refused() -> None:
    """llama.cpp's llguidance grammar: no pretty-printing, float bounds left to the loop's validation."""
    schema = {
        "type": "object",
        "properties": {"x": {"type": "number", "minimum": 0, "maximum": 1}, "n": {"type": "integer", "minimum": 1}},
        "required": ["x", "n"],
        "additionalProperties": False,
    }
    recorder = Recorder(ok())
    async with provider(recorder, compact_json=True) as p:
        assert p.response_format_level == "compact_grammar"
        await p.complete(MESSAGES, json_schema=schema)
    body = recorder.bodies()[0]
    assert "response_format" not in body
    header, grammar = body["grammar"].split("\n", 1)
    assert header == "%llguidance {}" and grammar.startswith("start: %json ")
    sent = json.loads(grammar.removeprefix("start: %json "))
    assert sent["x-guidance"] == {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
    assert sent["properties"]["x"] == {"type": "number"} and sent["properties"]["n"]["minimum"] == 1

    def refuses_grammars(request: httpx.Request) -> httpx.Response:
        grammar_sent = "grammar" in json.loads(request.content)
        return httpx.Response(400, json={"error": {"message": "unknown field grammar"}}) if grammar_sent else ok()

    other = Recorder(refuses_grammars)
    async with provider(other, compact_json=True) as p:
        await p.complete(MESSAGES, json_schema=schema)
        assert p.response_format_level == "json_schema"
    assert ["grammar" in b for b in other.bodies()] == [True, False]


@pytest.mark.anyio
async def test_rejected_format_falls_back_and_is_remembered(sleeps: list[float]) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        fmt = json.loads(request.content).get("response_format")
        if fmt is None:
            return ok()
        return httpx.Response(400, json={"error": {"message": f"response_format {fmt['type']} unsupported"}})

    recorder = Recorder(answer)
    async with provider(recorder) as p:
        assert p.response_format_level == "json_schema"
        first = await p.complete(MESSAGES, json_schema=SCHEMA)
        assert first.text == '{"x": 0.5}'
        assert [b.get("response_format", {}).get("type") for b in recorder.bodies()] == [
            "json_schema",
            "json_object",
            None,
        ]
        assert p.response_format_level == "text"
        await p.complete(MESSAGES, json_schema=SCHEMA)
    assert len(recorder.requests) == 4  # the second call went straight to the level that worked
    assert "response_format" not in recorder.bodies()[3]
    assert sleeps == []  # a rejected format is not a transport fault: no backoff


@pytest.mark.anyio
async def test_json_object_level_is_remembered() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        fmt = json.loads(request.content).get("response_format", {})
        return ok() if fmt.get("type") == "json_object" else httpx.Response(422, json={"detail": "no schema"})

    recorder = Recorder(answer)
    async with provider(recorder) as p:
        await p.complete(MESSAGES, json_schema=SCHEMA)
        await p.complete(MESSAGES, json_schema=SCHEMA)
        assert p.response_format_level == "json_object"
    assert [b["response_format"]["type"] for b in recorder.bodies()] == ["json_schema", "json_object", "json_object"]


@pytest.mark.anyio
async def test_a_request_rejected_at_every_level_changes_nothing() -> None:
    """A 400 that is not about the format must not downgrade later calls."""
    recorder = Recorder(httpx.Response(400, json={"error": {"message": "temperature must be below 2"}}))
    async with provider(recorder) as p:
        with pytest.raises(ProviderError, match="temperature must be below 2"):
            await p.complete(MESSAGES, json_schema=SCHEMA)
        assert p.response_format_level == "json_schema"
        recorder.answers = [ok()]
        await p.complete(MESSAGES, json_schema=SCHEMA)
    assert recorder.bodies()[-1]["response_format"]["type"] == "json_schema"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "message",
    [
        "request (4205 tokens) exceeds the available context size (4096 tokens), try increasing it",  # llama.cpp
        "This model's maximum context length is 8192 tokens. However, your messages resulted in 9001 tokens.",
    ],
)
async def test_a_prompt_too_long_is_a_context_overflow_at_once(message: str) -> None:
    """No format downgrade and no retry makes a prompt fit: one request, and an error the agent can act on."""
    recorder = Recorder(httpx.Response(400, json={"error": {"message": message}}))
    async with provider(recorder) as p:
        with pytest.raises(ContextOverflow, match="longer than the model's context window"):
            await p.complete(MESSAGES, json_schema=SCHEMA)
        assert p.response_format_level == "json_schema"
    assert len(recorder.requests) == 1


@pytest.mark.anyio
async def test_400_without_schema_is_a_provider_error() -> None:
    recorder = Recorder(httpx.Response(400, json={"error": {"message": "context length exceeded"}}))
    async with provider(recorder) as p:
        with pytest.raises(ProviderError, match="context length exceeded"):
            await p.complete(MESSAGES)
    assert len(recorder.requests) == 1


@pytest.mark.anyio
@pytest.mark.parametrize(("retry_after", "expected"), [("7", 7.0), ("0.5", 0.5), ("90", 90.0)])
async def test_429_honours_retry_after_seconds(sleeps: list[float], retry_after: str, expected: float) -> None:
    limited = httpx.Response(429, headers={"Retry-After": retry_after}, json={"error": {"message": "slow down"}})
    recorder = Recorder(limited, ok())
    async with provider(recorder) as p:
        completion = await p.complete(MESSAGES)
    assert completion.text == '{"x": 0.5}'
    assert sleeps == [expected]


@pytest.mark.anyio
async def test_a_retry_after_past_the_call_deadline_ends_the_call_at_once(sleeps: list[float]) -> None:
    """Waiting an hour would only end in failure: the round goes on without the model, saying why."""
    limited = httpx.Response(429, headers={"Retry-After": "3600"}, json={"error": {"message": "quota"}})
    recorder = Recorder(limited, ok())
    async with provider(recorder, call_timeout_s=120) as p:
        with pytest.raises(ProviderUnavailable, match="asked to wait 3600 s, more than the 120 s") as caught:
            await p.complete(MESSAGES)
    assert sleeps == [] and len(recorder.requests) == 1
    assert "--provider-timeout" in str(caught.value)


@pytest.mark.anyio
async def test_429_honours_retry_after_http_date(sleeps: list[float]) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    recorder = Recorder(httpx.Response(429, headers={"Retry-After": when}), ok())
    async with provider(recorder) as p:
        await p.complete(MESSAGES)
    (wait,) = sleeps
    assert 25 <= wait <= 30


def test_parse_retry_after() -> None:
    assert _retry.parse_retry_after(None) is None
    assert _retry.parse_retry_after("soon") is None
    assert _retry.parse_retry_after("-4") == 0.0
    assert _retry.parse_retry_after("nan") is None
    assert _retry.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


@pytest.mark.anyio
@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_retried_then_unavailable(sleeps: list[float], status: int) -> None:
    recorder = Recorder(httpx.Response(status, text="upstream exploded"))
    async with provider(recorder, max_attempts=3) as p:
        with pytest.raises(ProviderUnavailable) as caught:
            await p.complete(MESSAGES)
    assert len(recorder.requests) == 3
    assert len(sleeps) == 2
    assert all(0 <= s <= 20 for s in sleeps)
    message = str(caught.value)
    assert f"HTTP {status}" in message
    assert "after 3 attempts" in message
    assert URL in message


@pytest.mark.anyio
async def test_5xx_then_success(sleeps: list[float]) -> None:
    recorder = Recorder(httpx.Response(503), httpx.Response(502), ok())
    async with provider(recorder) as p:
        completion = await p.complete(MESSAGES)
    assert completion.text == '{"x": 0.5}'
    assert len(recorder.requests) == 3


@pytest.mark.anyio
async def test_timeout_is_retried_until_the_call_deadline_then_unavailable(sleeps: list[float]) -> None:
    recorder = Recorder(httpx.ReadTimeout("read timed out"))
    async with provider(recorder, call_timeout_s=60) as p:
        with pytest.raises(ProviderUnavailable, match=r"timed out") as caught:
            await p.complete(MESSAGES)
    # No count of attempts by default: the waits fill the call's 60 s, none past it.
    assert len(recorder.requests) == len(sleeps) + 1 > 2
    assert sum(sleeps) < 60
    assert f"after {len(recorder.requests)} attempts" in str(caught.value)


@pytest.mark.anyio
async def test_connect_error_is_retried_then_unavailable(sleeps: list[float]) -> None:
    recorder = Recorder(httpx.ConnectError("connection refused"))
    async with provider(recorder, max_attempts=2) as p:
        with pytest.raises(ProviderUnavailable, match="connection refused.*running and reachable"):
            await p.complete(MESSAGES)
    assert len(recorder.requests) == 2


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("response", "complaint"),
    [
        (httpx.Response(200, headers={"content-type": "application/json"}, content=b"{not json"), "not valid JSON"),
        (
            httpx.Response(200, headers={"content-type": "application/json"}, content=b'{"choices": [{"mess'),
            "truncated",
        ),
        (httpx.Response(200, html="<html>proxy login</html>"), "content type 'text/html"),
        (httpx.Response(200, json={"id": "x", "object": "chat.completion"}), "without choices"),
        (httpx.Response(200, json={"choices": []}), "without choices"),
        (httpx.Response(200, json=[1, 2]), "not an object"),
    ],
    ids=["malformed", "truncated", "html", "no-choices", "empty-choices", "array"],
)
async def test_garbage_body_is_retried_then_unavailable(
    sleeps: list[float], response: httpx.Response, complaint: str
) -> None:
    """A proxy's HTML page or a cut body mid-study is an outage like any other: the round goes on without it."""
    recorder = Recorder(response)
    async with provider(recorder, max_attempts=2) as p:
        with pytest.raises(ProviderUnavailable, match=complaint):
            await p.complete(MESSAGES)
    assert len(recorder.requests) == 2


@pytest.mark.anyio
async def test_body_cut_off_mid_stream_is_retried(sleeps: list[float]) -> None:
    class CutOff(httpx.AsyncByteStream):
        async def __aiter__(self):  # type: ignore[no-untyped-def]
            yield b'{"choices": ['
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

    recorder = Recorder(httpx.Response(200, headers={"content-type": "application/json"}, stream=CutOff()), ok())
    async with provider(recorder) as p:
        completion = await p.complete(MESSAGES)
    assert completion.text == '{"x": 0.5}'
    assert len(recorder.requests) == 2


@pytest.mark.anyio
@pytest.mark.parametrize("status", [401, 403])
async def test_auth_failure_is_a_user_error_naming_the_variable(status: int) -> None:
    recorder = Recorder(httpx.Response(status, json={"error": {"message": f"Incorrect API key provided: {KEY}"}}))
    async with provider(recorder) as p:
        with pytest.raises(UserError, match="OPENAI_API_KEY") as caught:
            await p.complete(MESSAGES)
    assert len(recorder.requests) == 1
    assert KEY not in str(caught.value)


@pytest.mark.anyio
async def test_not_found_is_a_user_error() -> None:
    recorder = Recorder(httpx.Response(404, json={"error": {"message": "model not found"}}))
    async with provider(recorder) as p:
        with pytest.raises(UserError, match="AGENT_MODEL"):
            await p.complete(MESSAGES, json_schema=SCHEMA)
    assert len(recorder.requests) == 1  # a 404 is not a format rejection


@pytest.mark.anyio
async def test_key_never_leaks(sleeps: list[float], capsys: pytest.CaptureFixture[str]) -> None:
    echo = f"invalid request from key {KEY}"
    scenarios: list[tuple[Recorder, type[Exception]]] = [
        (Recorder(httpx.Response(500, text=echo)), ProviderUnavailable),
        (Recorder(httpx.Response(429, json={"error": {"message": echo}})), ProviderUnavailable),
        (Recorder(httpx.Response(400, json={"error": echo})), ProviderError),
        (Recorder(httpx.Response(401, json={"error": {"message": echo}})), UserError),
        (Recorder(httpx.Response(200, text=echo)), ProviderUnavailable),
        (Recorder(httpx.ConnectError(echo)), ProviderUnavailable),
    ]
    for recorder, error in scenarios:
        p = provider(recorder, max_attempts=2)
        assert KEY not in repr(p)
        with pytest.raises(error) as caught:
            await p.complete(MESSAGES)
        await p.aclose()
        assert KEY not in "".join(traceback.format_exception(caught.value))  # what a log would print
        exc: BaseException | None = caught.value
        while exc is not None:
            assert KEY not in str(exc)
            assert KEY not in repr(exc)
            exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    out, err = capsys.readouterr()
    assert KEY not in out + err


@pytest.mark.anyio
async def test_closed_client_is_ours_only() -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(Recorder(ok())))
    async with OpenAICompatProvider("m", base_url=URL, http_client=client) as p:
        await p.complete(MESSAGES)
    assert not client.is_closed  # the caller's client stays open
    await client.aclose()

    own = OpenAICompatProvider("m", base_url=URL)
    await own.aclose()
    await own.aclose()  # twice is fine
    with pytest.raises(ProviderError, match="closed"):
        await own.complete(MESSAGES)


def test_bad_base_url_names_the_variable() -> None:
    with pytest.raises(UserError, match="OPENAI_BASE_URL"):
        OpenAICompatProvider("m", base_url="llm.test:8080")


# ---- the probe: what no retry fixes, found before a study starts -------------------------------------


def models(*ids: str) -> httpx.Response:
    return httpx.Response(200, json={"object": "list", "data": [{"id": i, "object": "model"} for i in ids]})


class Routes:
    """Answers GET /models and POST /chat/completions from their own scripts."""

    def __init__(self, listing: httpx.Response | Exception, chat: httpx.Response | Exception | None = None) -> None:
        self.listing, self.chat = listing, chat if chat is not None else ok()
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.listing if request.url.path.endswith("/models") else self.chat
        if isinstance(answer, Exception):
            raise answer
        return answer

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]


def probing(routes: Routes) -> OpenAICompatProvider:
    client = httpx.AsyncClient(transport=httpx.MockTransport(routes))
    return OpenAICompatProvider("test-model", base_url=URL, api_key=KEY, http_client=client)


@pytest.mark.anyio
async def test_probe_of_a_listed_model_is_one_get_with_the_key() -> None:
    routes = Routes(models("other", "test-model"))
    async with probing(routes) as p:
        await p.probe()
    assert routes.paths() == ["GET /v1/models"]
    assert routes.requests[0].headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.anyio
@pytest.mark.parametrize("status", [401, 403])
async def test_probe_finds_a_refused_key(status: int) -> None:
    routes = Routes(httpx.Response(status, json={"error": {"message": f"Incorrect API key provided: {KEY}"}}))
    async with probing(routes) as p:
        with pytest.raises(UserError, match=f"refused the API key \\(HTTP {status}\\).*OPENAI_API_KEY") as caught:
            await p.probe()
    assert KEY not in str(caught.value)
    assert routes.paths() == ["GET /v1/models"]


@pytest.mark.anyio
async def test_probe_finds_an_unknown_model_and_lists_the_served_ones() -> None:
    routes = Routes(models("gpt-4o", "gpt-4o-mini"), httpx.Response(404, json={"error": {"message": "no such model"}}))
    async with probing(routes) as p:
        with pytest.raises(UserError, match=r"does not serve model 'test-model'.*lists gpt-4o, gpt-4o-mini.*--model"):
            await p.probe()
    assert routes.paths() == ["GET /v1/models", "POST /v1/chat/completions"]
    assert json.loads(routes.requests[1].content)["max_tokens"] == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    "listing", [models("the-one-model"), httpx.Response(404, text="no such route")], ids=["any-name", "no-list"]
)
async def test_probe_accepts_a_server_that_answers_under_the_name(listing: httpx.Response) -> None:
    """llama.cpp serves its one model under any name; some servers have no /models: one token settles it."""
    routes = Routes(listing, ok("OK"))
    async with probing(routes) as p:
        await p.probe()
    assert routes.paths() == ["GET /v1/models", "POST /v1/chat/completions"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("routes", "complaint"),
    [
        (Routes(httpx.ConnectError("connection refused")), "connection refused.*OPENAI_BASE_URL"),
        (Routes(httpx.ReadTimeout("slow")), "timed out"),
        (Routes(httpx.Response(404), httpx.Response(503, text="overloaded")), "HTTP 503"),
    ],
    ids=["refused", "timeout", "503"],
)
async def test_probe_of_a_server_down_now_is_unavailable_not_fatal(routes: Routes, complaint: str) -> None:
    async with probing(routes) as p:
        with pytest.raises(ProviderUnavailable, match=complaint):
            await p.probe()
