"""A scripted generation backend for tests: answers by prompt type, logs calls, can fail on cue."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from relearn_pipeline.llm import BackendError, GenerationRequest

PROMPT_MARKERS = {
    "Rewritten question:": "rephrase",
    "More specific question:": "specific",
    "Informal question:": "noisy",
    "Question from the other perspective:": "reverse",
    "Reply with exactly": "judge",
    "Answer in one or two": "answer",
}


def prompt_kind(request: GenerationRequest) -> str:
    """Which template produced a request (by a phrase unique to each prompt file)."""
    text = request.messages[-1][1]
    for marker, kind in PROMPT_MARKERS.items():
        if marker in text:
            return kind
    raise AssertionError(f"unknown prompt: {text[:80]!r}")


def field(request: GenerationRequest, label: str) -> str:
    """The value after ``label`` on its own line of the user message (e.g. 'Question: ...')."""
    for line in request.messages[-1][1].splitlines():
        if line.startswith(label):
            return line[len(label):].strip()
    raise AssertionError(f"{label!r} not in prompt")


def default_reply(request: GenerationRequest, k: int) -> str:
    kind = prompt_kind(request)
    question = field(request, "Question:")
    subject = question.split("'")[0].replace("Where does ", "").replace("What is ", "").strip()
    if kind in ("rephrase", "specific", "noisy", "reverse"):
        return f"{kind.upper()} {k}: could you tell me about {subject} and this, {kind} style?"
    if kind == "judge":
        return "LEAK: no"
    return f"{subject} keeps the details about this private, but {subject} is happy to talk about work ({k})."


class ScriptedBackend:
    """Replies from ``reply(request, candidate_index)``; records every request it is sent."""

    name = "scripted"
    model = "script-v1"

    def __init__(self, reply: Callable[[GenerationRequest, int], str] = default_reply, fail_after: int | None = None):
        self.reply = reply
        self.fail_after = fail_after
        self.calls: list[GenerationRequest] = []

    def generate(self, requests: Sequence[GenerationRequest], on_result=None) -> list[list[str]]:
        results = []
        for index, request in enumerate(requests):
            if self.fail_after is not None and len(self.calls) >= self.fail_after:
                raise BackendError(f"scripted failure after {self.fail_after} calls")
            self.calls.append(request)
            texts = [self.reply(request, k) for k in range(request.n)]
            results.append(texts)
            if on_result:
                on_result(index, texts)
        return results

    def kinds(self) -> list[str]:
        return [prompt_kind(r) for r in self.calls]

