"""A backend wrapper that answers from the response cache first and counts what it spends."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from relearn_pipeline.llm.cache import ResponseCache, request_key
from relearn_pipeline.llm.requests import GenerationBackend, GenerationRequest, ResultCallback


@dataclass
class CallCounts:
    """Requests asked for (``requests``), answered from the cache, and sent to the backend."""

    requests: int = 0
    cache_hits: int = 0
    backend_calls: int = 0
    by_purpose: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {
            "requests": self.requests,
            "cache_hits": self.cache_hits,
            "backend_calls": self.backend_calls,
            "by_purpose": dict(self.by_purpose),
        }


class CachedBackend:
    """Serve requests from ``cache`` when present; send only the missing ones to ``backend``.

    Each fresh response is written to the cache the moment the backend reports it, so a run
    killed halfway keeps everything it paid for. Failed requests raise and are never cached.
    """

    def __init__(self, backend: GenerationBackend, cache: ResponseCache | None):
        self.backend = backend
        self.cache = cache
        self.name = backend.name
        self.model = backend.model
        self.counts = CallCounts()

    def __repr__(self) -> str:
        return f"CachedBackend({self.backend!r}, cache={self.cache!r})"

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        on_result: ResultCallback | None = None,
        purpose: str = "generate",
    ) -> list[list[str]]:
        """Candidates for every request, in order; ``purpose`` labels the calls in the counts."""
        requests = list(requests)
        self.counts.requests += len(requests)
        self.counts.by_purpose[purpose] += len(requests)
        keys = [request_key(self.name, self.model, r) for r in requests]
        results: list[list[str] | None] = [None] * len(requests)
        if self.cache is not None:
            self.cache.refresh()
            for index, key in enumerate(keys):
                hit = self.cache.get(key)
                if hit is not None and len(hit) == requests[index].n:
                    results[index] = hit
                    self.counts.cache_hits += 1
                    if on_result:
                        on_result(index, hit)
        missing = [i for i, r in enumerate(results) if r is None]
        if not missing:
            return [list(r) for r in results]  # type: ignore[arg-type]

        def store(position: int, texts: list[str]) -> None:
            index = missing[position]
            if len(texts) != requests[index].n:
                raise ValueError(
                    f"{self.name} backend returned {len(texts)} candidates for request {index}, "
                    f"expected {requests[index].n}"
                )
            results[index] = list(texts)
            self.counts.backend_calls += 1
            if self.cache is not None:
                self.cache.put(keys[index], list(texts), backend=self.name, model=self.model)
            if on_result:
                on_result(index, list(texts))

        fresh = self.backend.generate([requests[i] for i in missing], on_result=store)
        for position, texts in enumerate(fresh):
            if results[missing[position]] is None:  # a backend that ignored the callback
                store(position, texts)
        return [list(r) for r in results]  # type: ignore[arg-type]
