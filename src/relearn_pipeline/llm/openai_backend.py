"""Any OpenAI-compatible chat server (vLLM, llama.cpp server, Ollama, hosted APIs) as a backend.

Requests run concurrently on a thread pool (``concurrency`` at a time). Rate limits (429), server
errors (5xx), timeouts, dropped connections and malformed JSON are retried with exponential
backoff and jitter; other errors (bad request, wrong key) fail at once. The API key is never
logged and is scrubbed from every error message.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import openai

from relearn_pipeline.llm.requests import BackendError, GenerationRequest, ResultCallback

logger = logging.getLogger(__name__)

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class MalformedResponseError(ValueError):
    """The server answered 2xx but the body is not a usable chat completion."""


class OpenAIBackend:
    """Chat completions from an OpenAI-compatible server, ``n`` candidates per request."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str,
        concurrency: int = 4,
        timeout_s: float = 60.0,
        max_retries: int = 5,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 30.0,
        separate_candidates: bool = False,
    ):
        if not api_key:
            raise BackendError(
                "openai backend: no API key. Put it in conf/local/credentials.yml under llm_api.api_key "
                "or export the variable named by augment.llm.openai.api_key_env"
            )
        if concurrency < 1:
            raise ValueError(f"openai backend: concurrency must be >= 1, got {concurrency}")
        self.base_url = base_url
        self.model = model
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.separate_candidates = separate_candidates
        self._api_key = api_key
        self._client = openai.OpenAI(
            base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=0
        )
        self._random = random.Random()
        self._random_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"OpenAIBackend(base_url={self.base_url!r}, model={self.model!r}, "
            f"concurrency={self.concurrency}, timeout_s={self.timeout_s})"
        )

    def generate(
        self, requests: Sequence[GenerationRequest], on_result: ResultCallback | None = None
    ) -> list[list[str]]:
        """Send every request (``concurrency`` at a time); ``on_result`` fires as each arrives."""
        results: list[list[str] | None] = [None] * len(requests)
        failure: BaseException | None = None
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="openai") as pool:
            pending: dict[Future, int] = {
                pool.submit(self._complete_with_retries, index, request): index
                for index, request in enumerate(requests)
            }
            while pending:
                # FIRST_COMPLETED: each response reaches on_result (the cache) as it arrives, not
                # when the whole batch is done, so a killed run keeps what it already received.
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    index = pending.pop(future)
                    if future.cancelled():
                        continue
                    error = future.exception()
                    if error is not None:
                        if failure is None:
                            failure = error
                            for other in pending:  # stop what has not started; finish what has
                                other.cancel()
                        continue
                    results[index] = future.result()
                    if on_result:
                        on_result(index, results[index])  # main thread: cache writes stay serial
        if failure is not None:
            raise failure
        return results  # type: ignore[return-value]

    def _complete_with_retries(self, index: int, request: GenerationRequest) -> list[str]:
        attempts = self.max_retries + 1
        last: str = ""
        for attempt in range(attempts):
            try:
                if self.separate_candidates and request.n > 1:
                    return [
                        self._complete_once(request, 1, request.sampling.seed + k)[0]
                        for k in range(request.n)
                    ]
                return self._complete_once(request, request.n, request.sampling.seed)
            except Exception as exc:  # noqa: BLE001 - classified just below
                retryable, last = self._classify(exc)
                if not retryable:
                    raise BackendError(
                        f"openai backend at {self.base_url} (model {self.model!r}): request {index} "
                        f"failed and is not retryable: {last}"
                    ) from None
                if attempt + 1 < attempts:
                    delay = self._backoff(attempt, exc)
                    logger.warning(
                        "openai backend: request %d attempt %d/%d failed (%s); retrying in %.2fs",
                        index, attempt + 1, attempts, last, delay,
                    )
                    time.sleep(delay)
        raise BackendError(
            f"openai backend at {self.base_url} (model {self.model!r}): request {index} failed "
            f"after {attempts} attempts; last error: {last}. Check that the server is up and "
            "answers /v1/chat/completions, or raise augment.llm.openai.max_retries / timeout_s"
        )

    def _complete_once(self, request: GenerationRequest, n: int, seed: int) -> list[str]:
        sampling = request.sampling
        extra = {"top_k": sampling.top_k} if sampling.top_k > 0 else None
        response = self._client.chat.completions.create(
            model=self.model,
            messages=request.message_dicts(),
            n=n,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=sampling.max_new_tokens,
            seed=seed,
            extra_body=extra,
        )
        choices = getattr(response, "choices", None)
        if not choices or len(choices) != n:
            raise MalformedResponseError(
                f"expected {n} choices, got {len(choices) if choices else 0}"
            )
        texts = []
        for choice in sorted(choices, key=lambda c: getattr(c, "index", 0) or 0):
            content = getattr(getattr(choice, "message", None), "content", None)
            if not isinstance(content, str):
                raise MalformedResponseError("a choice has no message.content string")
            texts.append(content.strip())
        return texts

    def _classify(self, exc: Exception) -> tuple[bool, str]:
        """(retryable?, a one-line description with the API key scrubbed)."""
        if isinstance(exc, openai.APITimeoutError):
            retryable, text = True, f"timed out after {self.timeout_s}s"
        elif isinstance(exc, openai.APIConnectionError):
            retryable, text = True, f"connection error ({type(exc.__cause__ or exc).__name__})"
        elif isinstance(exc, openai.APIStatusError):
            retryable, text = exc.status_code in RETRY_STATUS or exc.status_code >= 500, (
                f"HTTP {exc.status_code}: {exc.message}"
            )
        elif isinstance(exc, (json.JSONDecodeError, openai.APIResponseValidationError, MalformedResponseError)):
            retryable, text = True, f"malformed JSON response ({exc})"
        else:
            retryable, text = False, f"{type(exc).__name__}: {exc}"
        return retryable, self._scrub(text)

    def _backoff(self, attempt: int, exc: Exception) -> float:
        with self._random_lock:
            jitter = 0.5 + self._random.random()
        delay = min(self.backoff_max_s, self.backoff_base_s * (2**attempt)) * jitter
        retry_after = None
        response = getattr(exc, "response", None)
        if response is not None:
            try:
                retry_after = float(response.headers.get("retry-after", ""))
            except (TypeError, ValueError):
                retry_after = None
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_max_s))
        return delay

    def _scrub(self, text: str) -> str:
        if self._api_key and len(self._api_key) >= 4:
            text = text.replace(self._api_key, "***")
        return text[:500]
