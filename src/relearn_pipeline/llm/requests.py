"""What a generation backend is asked for, and the one interface every backend implements."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol, runtime_checkable

# Called once per request as soon as its candidates exist: (index into the request list, texts).
ResultCallback = Callable[[int, list[str]], None]


class BackendError(RuntimeError):
    """A backend could not produce a response; the message says which request and what to do."""


@dataclass(frozen=True)
class SamplingParams:
    """How to sample: ``temperature == 0`` means greedy decoding (then ``n`` must be 1)."""

    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 0
    max_new_tokens: int = 128
    seed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GenerationRequest:
    """One chat prompt (list of ``{"role", "content"}`` messages) and how many candidates to sample."""

    messages: tuple[tuple[str, str], ...]
    sampling: SamplingParams = field(default_factory=SamplingParams)
    n: int = 1

    @classmethod
    def chat(
        cls, messages: Sequence[dict[str, str]], sampling: SamplingParams | None = None, n: int = 1
    ) -> GenerationRequest:
        """Build a request from OpenAI-style message dicts."""
        if n < 1:
            raise ValueError(f"GenerationRequest.n must be >= 1, got {n}")
        pairs = tuple((m["role"], m["content"]) for m in messages)
        return cls(messages=pairs, sampling=sampling or SamplingParams(), n=n)

    def message_dicts(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]


@runtime_checkable
class GenerationBackend(Protocol):
    """Produces ``request.n`` candidate texts for each request, in request order."""

    name: str
    model: str

    def generate(
        self, requests: Sequence[GenerationRequest], on_result: ResultCallback | None = None
    ) -> list[list[str]]: ...
