"""The openai backend against a real OpenAI-compatible HTTP server on 127.0.0.1 (http.server)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from relearn_pipeline.llm import BackendError, CachedBackend, GenerationRequest, LLMCredentials, ResponseCache, SamplingParams, build_backend
from relearn_pipeline.llm.openai_backend import OpenAIBackend

KEY = "sk-test-SECRET-4242"


class FakeServer:
    """Serves /v1/chat/completions; ``script`` gives the behaviour of each successive request."""

    def __init__(self, script: list[str], default: str = "ok", delay_s: float = 0.0):
        self.script, self.default, self.delay_s = list(script), default, delay_s
        self.hits: list[dict] = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    behaviour = server.script.pop(0) if server.script else server.default
                    server.hits.append({"body": body, "auth": self.headers.get("Authorization"), "behaviour": behaviour})
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    time.sleep(server.delay_s)
                    server.respond(self, behaviour, body)
                finally:
                    with server.lock:
                        server.in_flight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def respond(self, handler, behaviour: str, body: dict) -> None:
        if behaviour == "sleep":
            time.sleep(1.5)
            behaviour = "ok"
        if behaviour in ("429", "500", "401"):
            payload = {"error": {"message": f"failure {behaviour} for key {KEY}", "type": "x"}}
            self._send(handler, int(behaviour), json.dumps(payload).encode())
            return
        if behaviour == "badjson":
            self._send(handler, 200, b'{"id": "x", "choices": [ {"index": 0, "message": ')
            return
        question = body["messages"][-1]["content"]
        choices = [
            {"index": i, "finish_reason": "stop", "message": {"role": "assistant", "content": f"reply {i} to {question}"}}
            for i in range(body.get("n", 1))
        ]
        payload = {"id": "c", "object": "chat.completion", "created": 0, "model": body["model"], "choices": choices}
        self._send(handler, 200, json.dumps(payload).encode())

    @staticmethod
    def _send(handler, status: int, data: bytes) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


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
    assert all(h["auth"] == f"Bearer {KEY}" for h in server.hits)
    body = server.hits[0]["body"]
    assert body["n"] == 2 and body["model"] == "tiny-chat" and body["max_tokens"] == 128 and "seed" in body


def test_429_and_500_are_retried_then_succeed_and_only_the_success_is_cached(server_factory, tmp_path):
    server = server_factory(["429", "500"])
    cache_path = tmp_path / "cache.jsonl"
    backend = CachedBackend(_backend(server.url, concurrency=1), ResponseCache(cache_path))
    out = backend.generate(_requests(1))
    assert out == [["reply 0 to q0", "reply 1 to q0"]]
    assert [h["behaviour"] for h in server.hits] == ["429", "500", "ok"]
    assert len(cache_path.read_text().splitlines()) == 1


def test_a_timeout_is_retried(server_factory):
    server = server_factory(["sleep"])
    out = _backend(server.url, concurrency=1).generate(_requests(1, n=1))
    assert out == [["reply 0 to q0"]] and len(server.hits) == 2


def test_persistent_500_fails_clearly_without_the_key_and_caches_nothing(server_factory, tmp_path):
    server = server_factory([], default="500")
    cache_path = tmp_path / "cache.jsonl"
    with pytest.raises(BackendError) as info:
        CachedBackend(_backend(server.url, concurrency=1), ResponseCache(cache_path)).generate(_requests(1))
    message = str(info.value)
    assert "after 3 attempts" in message and "HTTP 500" in message and server.url in message
    assert KEY not in message and KEY not in repr(info.value)
    assert len(server.hits) == 3
    assert not cache_path.exists() or cache_path.read_text() == ""


def test_malformed_json_is_retried_then_a_clear_error(server_factory, tmp_path):
    server = server_factory(["badjson", "badjson", "badjson"])
    with pytest.raises(BackendError, match="malformed JSON"):
        _backend(server.url, concurrency=1).generate(_requests(1))
    assert len(server.hits) == 3
    recovering = server_factory(["badjson"])
    assert _backend(recovering.url).generate(_requests(1, n=1)) == [["reply 0 to q0"]]


def test_wrong_key_is_not_retried_and_the_key_is_scrubbed(server_factory):
    server = server_factory([], default="401")
    backend = _backend(server.url)
    with pytest.raises(BackendError, match="not retryable") as info:
        backend.generate(_requests(1))
    assert len(server.hits) == 1 and KEY not in str(info.value) and "***" in str(info.value)
    assert KEY not in repr(backend)


def test_concurrency_limit_is_respected(server_factory):
    server = server_factory([], delay_s=0.2)
    _backend(server.url, concurrency=3).generate(_requests(9, n=1))
    assert server.max_in_flight == 3


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
    assert [h["auth"] for h in server.hits] == [f"Bearer {KEY}", "Bearer env-key-777"]
    assert KEY not in repr(LLMCredentials(api_key=KEY))
