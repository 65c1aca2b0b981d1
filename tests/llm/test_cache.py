"""The response cache and CachedBackend: reruns are free, crashes resume, concurrent writers are safe."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from relearn_pipeline.llm import BackendError, CachedBackend, GenerationRequest, ResponseCache, SamplingParams, request_key


def _requests(count: int, seed: int = 0) -> list[GenerationRequest]:
    return [
        GenerationRequest.chat([{"role": "user", "content": f"Question {i}: what does Ann do?"}], SamplingParams(seed=seed), n=2)
        for i in range(count)
    ]


def test_key_depends_on_backend_model_messages_sampling_and_n():
    base = _requests(1)[0]
    key = request_key("openai", "m", base)
    assert key == request_key("openai", "m", _requests(1)[0])
    assert key != request_key("transformers", "m", base)
    assert key != request_key("openai", "other", base)
    assert key != request_key("openai", "m", _requests(1, seed=1)[0])
    assert key != request_key("openai", "m", GenerationRequest(base.messages, base.sampling, n=3))
    assert key != request_key("openai", "m", _requests(2)[1])


def test_rerun_makes_zero_backend_calls(tmp_path, scripted):
    path = tmp_path / "cache.jsonl"
    first = scripted.ScriptedBackend(reply=lambda r, k: f"{r.messages[-1][1]} #{k}")
    out1 = CachedBackend(first, ResponseCache(path)).generate(_requests(5))
    assert len(first.calls) == 5
    second = scripted.ScriptedBackend(reply=lambda r, k: "DIFFERENT")
    cached = CachedBackend(second, ResponseCache(path))
    out2 = cached.generate(_requests(5))
    assert second.calls == [] and out2 == out1
    assert cached.counts.as_dict() | {"by_purpose": None} == {"requests": 5, "cache_hits": 5, "backend_calls": 0, "by_purpose": None}


def test_killed_run_resumes_with_only_the_missing_calls(tmp_path, scripted):
    path = tmp_path / "cache.jsonl"
    crashing = scripted.ScriptedBackend(reply=lambda r, k: f"ok {k}", fail_after=3)
    with pytest.raises(BackendError):
        CachedBackend(crashing, ResponseCache(path)).generate(_requests(7))
    assert len(path.read_text().splitlines()) == 3  # each response written as it arrived
    resumed = scripted.ScriptedBackend(reply=lambda r, k: f"ok {k}")
    out = CachedBackend(resumed, ResponseCache(path)).generate(_requests(7))
    assert [r.messages for r in resumed.calls] == [r.messages for r in _requests(7)[3:]]
    assert out == [["ok 0", "ok 1"]] * 7


def test_truncated_last_line_is_skipped_then_repaired(tmp_path, scripted):
    path = tmp_path / "cache.jsonl"
    CachedBackend(scripted.ScriptedBackend(reply=lambda r, k: "a"), ResponseCache(path)).generate(_requests(2))
    whole = path.read_text()
    path.write_text(whole[: len(whole) - 15])  # the second line cut mid-write
    cache = ResponseCache(path)
    assert len(cache) == 1
    again = scripted.ScriptedBackend(reply=lambda r, k: "a")
    CachedBackend(again, cache).generate(_requests(2))
    assert len(again.calls) == 1
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line)["texts"] == ["a", "a"] for line in lines)


def test_failed_calls_are_never_cached(tmp_path, scripted):
    path = tmp_path / "cache.jsonl"
    broken = scripted.ScriptedBackend(fail_after=0)
    with pytest.raises(BackendError):
        CachedBackend(broken, ResponseCache(path)).generate(_requests(2))
    assert not path.exists() or path.read_text() == ""


def _writer(path: str, worker: int, count: int) -> None:
    cache = ResponseCache(path, fsync=False)
    for i in range(count):
        cache.put(f"w{worker}-{i}", [f"text {worker} {i} " + "x" * 2000])


def test_two_processes_write_concurrently(tmp_path):
    path = tmp_path / "cache.jsonl"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(str(path), w, 60)) for w in range(2)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(120)
        assert p.exitcode == 0
    lines = Path(path).read_text().splitlines()
    assert len(lines) == 120 and all(json.loads(line)["texts"] for line in lines)
    cache = ResponseCache(path)
    assert len(cache) == 120 and cache.get("w1-59") == ["text 1 59 " + "x" * 2000]
