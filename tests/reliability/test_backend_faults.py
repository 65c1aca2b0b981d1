"""The openai backend against a real server process on 127.0.0.1: SIGKILL mid-run, resume, and load.

The server (tests/reliability/openai_server.py) is a separate process; the test kills it with
SIGKILL while requests are in flight, then starts it again on the same port.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml

from relearn_pipeline.llm import BackendError, GenerationRequest, SamplingParams
from relearn_pipeline.llm.openai_backend import OpenAIBackend
from relearn_pipeline.pipelines.augment.nodes import generate_question_variants

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parents[1]
SERVER = HERE / "openai_server.py"


class ServerProcess:
    """openai_server.py as a child process; ``kill()`` sends SIGKILL."""

    def __init__(self, tmp_path: Path, port: int = 0, serve: int = -1, delay_s: float = 0.0):
        port_file = tmp_path / f"port-{time.monotonic_ns()}"
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVER), "--port-file", str(port_file), "--port", str(port),
             "--serve", str(serve), "--delay-s", str(delay_s)],
        )
        deadline = time.monotonic() + 20
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        self.port = int(port_file.read_text())
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def stats(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=5) as response:
            return json.loads(response.read())

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def servers(tmp_path):
    started: list[ServerProcess] = []

    def start(**kwargs) -> ServerProcess:
        started.append(ServerProcess(tmp_path, **kwargs))
        return started[-1]

    yield start
    for server in started:
        server.kill()


def _augment_params(url: str, cache: Path) -> dict:
    params = yaml.safe_load((PROJECT / "conf/base/parameters_augment.yml").read_text())["augment"]
    params["llm"] = {
        "backend": "openai",
        "cache_path": str(cache),
        "openai": {"base_url": url, "model": "test-chat", "api_key_env": None, "api_key_required": False,
                   "concurrency": 2, "timeout_s": 20, "max_retries": 2, "backoff_base_s": 0.05,
                   "backoff_max_s": 0.2},
    }
    params["variants"] = ["rephrase", "specific", "noisy", "reverse"]
    params["question"] = {"candidates": 2, "rounds": 1, "sampling": params["question"]["sampling"]}
    return params


def _prompts() -> dict:
    return {p.stem: yaml.safe_load(p.read_text()) for p in (PROJECT / "conf/base/prompts").glob("*.yml")}


FORGET = pd.DataFrame(
    [{"id": f"forget-{i}", "subject": "Elena Marsh", "question": f"What is fact {i} about Elena Marsh?",
      "answer": f"Elena Marsh's fact {i} is {i * 7} blue kites."} for i in range(5)]
)  # 5 records x 4 variants = 20 calls
SERVED_BEFORE_KILL = 7


def _cache_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_server_killed_mid_augment_fails_clearly_keeps_responses_and_resumes_with_only_missing_calls(servers, tmp_path):
    cache = tmp_path / "llm_cache.jsonl"
    first = servers(serve=SERVED_BEFORE_KILL)  # answers 7, then holds every further request
    params = _augment_params(first.url, cache)
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = generate_question_variants(FORGET, _prompts(), params, None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    started = time.monotonic()
    worker.start()
    deadline = time.monotonic() + 30
    while len(_cache_lines(cache)) < SERVED_BEFORE_KILL or first.stats()["in_flight"] < 1:
        assert time.monotonic() < deadline, "the backend never reached the server's limit"
        time.sleep(0.02)
    assert first.stats()["served"] == SERVED_BEFORE_KILL
    first.kill()  # SIGKILL with requests in flight
    worker.join(30)
    assert not worker.is_alive(), "augment hung after the server died"
    assert time.monotonic() - started < 30

    error = outcome.get("error")
    assert isinstance(error, BackendError), outcome
    message = str(error)
    assert f"openai backend at {first.url}" in message and "after 3 attempts" in message, message
    assert "connection error" in message and "Check that the server is up" in message, message
    kept = _cache_lines(cache)
    assert len(kept) == SERVED_BEFORE_KILL and all(len(line["texts"]) == 2 for line in kept)

    # The server is back (same port): only the missing calls are made.
    second = servers(port=first.port)
    variants, usage = generate_question_variants(FORGET, _prompts(), params, None)
    total = len(FORGET) * len(params["variants"])
    assert second.stats()["received"] == total - SERVED_BEFORE_KILL
    assert len(_cache_lines(cache)) == total
    assert len(variants) >= len(FORGET)  # the originals, plus every usable variant

    # A third run makes no call at all, and gives the same table.
    again, _ = generate_question_variants(FORGET, _prompts(), params, None)
    assert second.stats()["received"] == total - SERVED_BEFORE_KILL
    pd.testing.assert_frame_equal(again, variants)


BURST = 2000
CONCURRENCY = 8
PEAK_BYTES = 48 * 2**20  # tracemalloc peak of the Python heap during the burst


def test_a_burst_of_2000_prompts_holds_the_concurrency_limit_with_bounded_memory(servers):
    server = servers(delay_s=0.005)  # answers after 5 ms, so that requests overlap
    backend = OpenAIBackend(base_url=server.url, model="m", api_key="not-needed", concurrency=CONCURRENCY,
                            timeout_s=30, max_retries=2, backoff_base_s=0.05, backoff_max_s=0.2)
    requests = [GenerationRequest.chat([{"role": "user", "content": f"prompt {i}"}], SamplingParams(seed=i), 1)
                for i in range(BURST)]
    arrived = []
    tracemalloc.start()
    try:
        results = backend.generate(requests, on_result=lambda i, texts: arrived.append(i))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    stats = server.stats()
    assert stats["received"] == stats["served"] == BURST  # no retries were needed
    # never exceeded, and the burst did run requests side by side (on a busy 2-core machine the
    # server may not see all 8 at the same instant)
    assert CONCURRENCY // 2 < stats["max_in_flight"] <= CONCURRENCY, stats
    assert sorted(arrived) == list(range(BURST))
    assert results[1234] == ["variant 0 of: prompt 1234"]
    assert peak < PEAK_BYTES, f"tracemalloc peak {peak / 2**20:.1f} MiB"
