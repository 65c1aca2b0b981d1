"""The openai backend against a real OpenAI-compatible HTTP server on 127.0.0.1 (http.server)."""

from __future__ import annotations

import json
import time

import pytest
from openai_stub import ChatServer

from relearn_pipeline.llm import BackendError, CachedBackend, GenerationRequest, LLMCredentials, ResponseCache, SamplingParams, build_backend
from relearn_pipeline.llm.openai_backend import OpenAIBackend

KEY = "sk-test-SECRET-4242"


class FakeServer(ChatServer):
    """Answers "reply <k> to <question>"; ``script`` gives the behaviour of each successive request,
    then ``default``: "ok", "sleep" (1.5 s, then ok), "429"/"500"/"401" (that error, naming the
    key), "badjson" (a cut-off body). Every request first waits ``delay_s``."""

    def __init__(self, script: list[str], default: str = "ok", delay_s: float = 0.0):
        self.script, self.default, self.delay_s = list(script), default, delay_s
        super().__init__(lambda question, k: f"reply {k} to {question}", self.misbehave)

    def behaviour(self, index: int) -> str:
        return self.script[index] if index < len(self.script) else self.default

    @property
    def behaviours(self) -> list[str]:
        """The behaviour of each request received so far."""
        return [self.behaviour(i) for i in range(len(self.requests))]

    def misbehave(self, index: int) -> tuple[int, bytes] | None:
        time.sleep(self.delay_s)
        behaviour = self.behaviour(index)
        if behaviour == "sleep":
            time.sleep(1.5)
        if behaviour in ("429", "500", "401"):
            payload = {"error": {"message": f"failure {behaviour} for key {KEY}", "type": "x"}}
            return int(behaviour), json.dumps(payload).encode()
        if behaviour == "badjson":
            return 200, b'{"id": "x", "choices": [ {"index": 0, "message": '
        return None


@pytest.fixture
def server_factory():
    servers = []

    def make(*args, **kwargs) -> FakeServer:
        servers.append(FakeServer(*args, **kwargs))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def _backend(url: str, **overrides) -> OpenAIBackend:
    options = dict(base_url=url, model="tiny-chat", api_key=KEY, concurrency=2, timeout_s=0.5,
                   max_retries=2, backoff_base_s=0.01, backoff_max_s=0.05)
    return OpenAIBackend(**(options | overrides))


def _requests(count: int, n: int = 2) -> list[GenerationRequest]:
    return [GenerationRequest.chat([{"role": "user", "content": f"q{i}"}], SamplingParams(seed=i), n) for i in range(count)]


def test_candidates_key_and_sampling_reach_the_server(server_factory):
    server = server_factory([])
    out = _backend(server.url).generate(_requests(3, n=2))
    assert out == [[f"reply 0 to q{i}", f"reply 1 to q{i}"] for i in range(3)]
    assert all(r["auth"] == f"Bearer {KEY}" for r in server.requests)
    body = server.requests[0]["body"]
    assert body["n"] == 2 and body["model"] == "tiny-chat" and body["max_tokens"] == 128 and "seed" in body


def test_429_and_500_are_retried_then_succeed_and_only_the_success_is_cached(server_factory, tmp_path):
    server = server_factory(["429", "500"])
    cache_path = tmp_path / "cache.jsonl"
    backend = CachedBackend(_backend(server.url, concurrency=1), ResponseCache(cache_path))
    out = backend.generate(_requests(1))
    assert out == [["reply 0 to q0", "reply 1 to q0"]]
    assert server.behaviours == ["429", "500", "ok"]
    assert len(cache_path.read_text().splitlines()) == 1


def test_a_timeout_is_retried(server_factory):
    server = server_factory(["sleep"])
    out = _backend(server.url, concurrency=1).generate(_requests(1, n=1))
    assert out == [["reply 0 to q0"]] and len(server.requests) == 2


def test_persistent_500_fails_clearly_without_the_key_and_caches_nothing(server_factory, tmp_path):
    server = server_factory([], default="500")
    cache_path = tmp_path / "cache.jsonl"
    with pytest.raises(BackendError) as info:
        CachedBackend(_backend(server.url, concurrency=1), ResponseCache(cache_path)).generate(_requests(1))
    message = str(info.value)
    assert "after 3 attempts" in message and "HTTP 500" in message and server.url in message
    assert KEY not in message and KEY not in repr(info.value)
    assert len(server.requests) == 3
    assert not cache_path.exists() or cache_path.read_text() == ""


def test_malformed_json_is_retried_then_a_clear_error(server_factory, tmp_path):
    server = server_factory(["badjson", "badjson", "badjson"])
    with pytest.raises(BackendError, match="malformed JSON"):
        _backend(server.url, concurrency=1).generate(_requests(1))
    assert len(server.requests) == 3
    recovering = server_factory(["badjson"])
    assert _backend(recovering.url).generate(_requests(1, n=1)) == [["reply 0 to q0"]]


def test_wrong_key_is_not_retried_and_the_key_is_scrubbed(server_factory):
    server = server_factory([], default="401")
    backend = _backend(server.url)
    with pytest.raises(BackendError, match="not retryable") as info:
        backend.generate(_requests(1))
    assert len(server.requests) == 1 and KEY not in str(info.value) and "***" in str(info.value)
    assert KEY not in repr(backend)


def test_concurrency_limit_is_respected(server_factory):
    server = server_factory([], delay_s=0.2)
    _backend(server.url, concurrency=3).generate(_requests(9, n=1))
    assert server.stats["max_in_flight"] == 3


def test_key_from_credentials_else_env_else_clear_error(server_factory, monkeypatch, tmp_path):
    server = server_factory([])
    params = {"backend": "openai", "cache_path": None,
              "openai": {"base_url": server.url, "model": "m", "api_key_env": "RELEARN_TEST_KEY", "timeout_s": 2}}
    monkeypatch.delenv("RELEARN_TEST_KEY", raising=False)
    with pytest.raises(BackendError, match="credentials.yml") as info:
        build_backend(params, LLMCredentials())
    assert "RELEARN_TEST_KEY" in str(info.value)
    build_backend(params, LLMCredentials(api_key=KEY)).generate(_requests(1, n=1))
    monkeypatch.setenv("RELEARN_TEST_KEY", "env-key-777")
    build_backend(params, LLMCredentials()).generate(_requests(1, n=1))
    assert [r["auth"] for r in server.requests] == [f"Bearer {KEY}", "Bearer env-key-777"]
    assert KEY not in repr(LLMCredentials(api_key=KEY))
