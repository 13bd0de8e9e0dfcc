"""Whole studies against a stand-in OpenAI-compatible server that misbehaves: a real HTTP server on 127.0.0.1.

The stand-in answers what its script says: faults (429 with Retry-After, 500, an HTML page with status 200,
503, 401), valid answers (a random configuration drawn from the JSON schema it is sent), and an outage: it
closes its listening socket, so that connections are refused, and opens it again on the same port later.
The study runs as users run it, ``python -m agent`` in a subprocess.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import optuna
import pytest

from agent.optimize import UNREACHABLE
from agent.records import TrialRecord
from agent.study import study_records

ROOT = Path(__file__).resolve().parents[2]
MODEL = "stand-in"


def sample(schema: dict[str, Any], rng: random.Random) -> Any:
    """A random value valid for the subset of JSON Schema the agent sends."""
    if "anyOf" in schema:  # an evaluation, not a history read
        return sample(next(v for v in schema["anyOf"] if v["properties"]["tool"]["const"] != "read_history"), rng)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return rng.choice(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        return {k: sample(v, rng) for k, v in schema["properties"].items() if k in schema.get("required", [])}
    if kind == "number":
        return round(rng.uniform(schema["minimum"], schema["maximum"]), 6)
    if kind == "integer":
        return rng.randint(schema["minimum"], schema["maximum"])
    if kind == "array":
        return [sample(schema["items"], rng) for _ in range(schema["minItems"])]
    raise AssertionError(f"the stand-in cannot answer schema {schema}")


class StandIn:
    """The server and its script. ``script``: what each chat request gets, in turn (``"ok"`` once it runs
    out); ``outage``: (after how many valid answers, for how many seconds) the socket is closed."""

    def __init__(self, script: list[str], outage: tuple[int, float] | None = None, models: str = "ok") -> None:
        self.script = list(script)
        self.outage = outage
        self.models = models
        self.served: list[str] = []  # what each chat request got
        self.answers = 0
        self.down: tuple[float, float] | None = None  # when the outage began and ended (monotonic)
        self.rng = random.Random(0)
        self.lock = threading.Lock()
        self.server = self._listen(0)
        self.port = self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _listen(self, port: int) -> ThreadingHTTPServer:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):  # HTTP/1.0: one request per connection
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if stand_in.models == "401":
                    self._json(401, {"error": {"message": "Incorrect API key provided"}})
                else:
                    self._json(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with stand_in.lock:
                    kind = stand_in.script.pop(0) if stand_in.script else "ok"
                    stand_in.served.append(kind)
                if kind == "429":
                    self._json(429, {"error": {"message": "rate limited"}}, {"Retry-After": "1"})
                elif kind in ("500", "503"):
                    self._json(int(kind), {"error": {"message": "upstream trouble"}})
                elif kind == "html":
                    self._send(200, b"<html><body>Gateway hiccup</body></html>", "text/html")
                elif kind == "401":
                    self._json(401, {"error": {"message": "key revoked"}})
                else:
                    schema = body["response_format"]["json_schema"]["schema"]
                    with stand_in.lock:
                        answer = json.dumps(sample(schema, stand_in.rng))
                    content = {"choices": [{"index": 0, "message": {"role": "assistant", "content": answer}}]}
                    self._json(200, {**content, "usage": {"prompt_tokens": 50, "completion_tokens": 12}})
                    stand_in._answered()

            def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                self._send(status, json.dumps(body).encode(), "application/json", headers)

            def _send(self, status: int, data: bytes, kind: str, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    def _answered(self) -> None:
        with self.lock:
            self.answers += 1
            start_outage = self.outage is not None and self.answers == self.outage[0]
        if start_outage:
            threading.Thread(target=self._outage, daemon=True).start()

    def _outage(self) -> None:
        assert self.outage is not None
        began = time.monotonic()
        self.server.shutdown()
        self.server.server_close()  # the listening socket is gone: connections are refused
        time.sleep(self.outage[1])
        self.server = self._listen(self.port)
        self.down = (began, time.monotonic())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stand_in_factory() -> Iterator[type[StandIn]]:
    made: list[StandIn] = []

    class Made(StandIn):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    yield Made
    for server in made:
        server.close()


def run_agent(stand_in: StandIn, save: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENT_", "OPENAI_", "OLLAMA_"))}
    env |= {"AGENT_PROVIDER": "openai", "OPENAI_BASE_URL": stand_in.url, "OPENAI_API_KEY": "sk-test"}
    argv = [sys.executable, "-m", "agent", "--task", "toy-branin", "--strategy", "llm", "--model", MODEL]
    argv += ["--save_dir", str(save), *args]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def records(save: Path) -> list[TrialRecord]:
    study = optuna.load_study(study_name="toy-branin-llm-seed0", storage=f"sqlite:///{save / 'study.db'}")
    return study_records(study)


@pytest.mark.slow
def test_the_study_keeps_going_through_faults_and_an_outage(stand_in_factory: type[StandIn], tmp_path: Path) -> None:
    """429, 500, an HTML page and 503 are retried away; a 60 s outage mid-study becomes rounds proposed without
    the model, each recorded with its reason; when the server is back, the model proposes again. No restart."""
    budget = 60
    stand_in = stand_in_factory(["429", "500", "html", "503"], outage=(4, 60.0))
    save = tmp_path / "study"
    started = time.monotonic()
    result = run_agent(stand_in, save, "--budget", str(budget), "--provider-timeout", "25")
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:]
    assert stand_in.served[:5] == ["429", "500", "html", "503", "ok"]
    assert stand_in.down is not None, "the outage happened"

    trials = records(save)
    assert [r.number for r in trials] == list(range(budget)) and all(r.state == "complete" for r in trials)
    sources = [r.source for r in trials]
    assert sources[:4] == ["llm"] * 4, "the first faults were retried away within one call"
    fallbacks = [r for r in trials if r.source == "fallback"]
    first, last = fallbacks[0].number, fallbacks[-1].number
    assert first == 4 and sources[first : last + 1] == ["fallback"] * (last + 1 - first), sources
    assert sources[last + 1 :] and set(sources[last + 1 :]) == {"llm"}, "the model is used again after it returns"
    reasons = [r.proposal.reason or "" for r in fallbacks]
    assert all(reason.startswith(f"{UNREACHABLE}: ") for reason in reasons)
    assert "ConnectError" in reasons[0] and stand_in.url in reasons[0]  # retried until --provider-timeout
    skipped = [reason for reason in reasons if reason.startswith(f"{UNREACHABLE}: not asked")]
    assert skipped, "the breaker spared the dead endpoint some rounds"
    events = [json.loads(line) for line in (save / "events.jsonl").read_text().splitlines()]
    assert sum(e["event"] == "provider_unavailable" for e in events) == len(fallbacks)
    assert f"rounds without the model  {len(fallbacks)} ({len(fallbacks)} with the model unreachable)" in result.stdout
    assert "run the same command again" not in result.stderr
    print(
        f"outage study: {seconds:.0f} s in all, {len(fallbacks)} rounds without the model "
        f"(trials {first}..{last}), {sum(s == 'llm' for s in sources[last + 1 :])} model rounds after the outage, "
        f"{len(stand_in.served)} chat requests served"
    )

    report = subprocess.run(
        [sys.executable, "-m", "agent", "report", "--save_dir", str(save)], cwd=ROOT, capture_output=True, text=True
    )
    assert report.returncode == 0, report.stderr
    text = (save / "report.md").read_text()
    assert f"**rounds without the model**: {len(fallbacks)} ({len(fallbacks)} with the model unreachable);" in text


@pytest.mark.slow  # spawns the study's process
def test_a_refused_key_stops_before_any_trial(stand_in_factory: type[StandIn], tmp_path: Path) -> None:
    stand_in = stand_in_factory([], models="401")
    save = tmp_path / "study"
    started = time.monotonic()
    result = run_agent(stand_in, save, "--budget", "5")
    assert time.monotonic() - started < 60  # loose: no retries, no model call
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line == (
        f"error: {stand_in.url} refused the API key (HTTP 401): Incorrect API key provided; "
        "set OPENAI_API_KEY to a valid key for this server"
    )
    assert stand_in.served == [] and not save.exists()


@pytest.mark.slow  # spawns the study's process
def test_a_key_revoked_mid_study_stops_at_once_with_one_line(stand_in_factory: type[StandIn], tmp_path: Path) -> None:
    stand_in = stand_in_factory(["ok", "ok", "401", "ok"])
    save = tmp_path / "study"
    started = time.monotonic()
    result = run_agent(stand_in, save, "--budget", "5", "--quiet")
    assert time.monotonic() - started < 60  # loose: never retried, never a fallback
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {stand_in.url} refused the API key (HTTP 401): key revoked")
    assert stand_in.served == ["ok", "ok", "401"]
    assert [r.source for r in records(save) if r.finished] == ["llm", "llm"]
