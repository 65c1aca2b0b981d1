"""A local chat model as a generation backend: batched, left-padded, seeded sampling."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence

from tqdm.auto import tqdm

from relearn_pipeline.generation import generate_texts
from relearn_pipeline.models import ModelBundle, load_model
from relearn_pipeline.prompting import chat_prompt
from relearn_pipeline.llm.requests import GenerationRequest, ResultCallback

logger = logging.getLogger(__name__)


class TransformersBackend:
    """Generate with a transformers causal LM (default: the embedded SmolLM2-135M-Instruct).

    Requests with the same sampling params and candidate count are batched together (sorted by
    length so batches pad little); ``n`` candidates come from ``num_return_sequences``.
    """

    name = "transformers"

    def __init__(self, bundle: ModelBundle, batch_size: int = 16):
        if batch_size < 1:
            raise ValueError(f"transformers backend: batch_size must be >= 1, got {batch_size}")
        self.bundle = bundle
        self.model = bundle.spec
        self.batch_size = batch_size
        self.generated_tokens = 0

    @classmethod
    def from_spec(
        cls,
        model: str = "embedded:smollm2-135m-instruct",
        batch_size: int = 16,
        dtype: str = "float32",
        device: str = "auto",
        cache_dir: str | None = None,
    ) -> TransformersBackend:
        """Load the model named by a ``models.load_model`` spec."""
        return cls(load_model(model, dtype=dtype, device=device, cache_dir=cache_dir), batch_size)

    def __repr__(self) -> str:
        return f"TransformersBackend(model={self.model!r}, batch_size={self.batch_size})"

    def generate(
        self, requests: Sequence[GenerationRequest], on_result: ResultCallback | None = None
    ) -> list[list[str]]:
        """``request.n`` candidates per request; ``on_result`` fires after each batch."""
        results: list[list[str]] = [[] for _ in requests]
        groups: dict[tuple, list[int]] = defaultdict(list)
        for index, request in enumerate(requests):
            if request.sampling.temperature <= 0 and request.n > 1:
                raise ValueError(
                    f"request {index}: greedy decoding (temperature 0) gives one candidate; "
                    f"set temperature > 0 to sample n={request.n}"
                )
            groups[(request.sampling, request.n)].append(index)
        tokenizer = self.bundle.tokenizer
        bar = tqdm(total=len(requests), desc=f"generating ({self.model})", unit="prompt", disable=len(requests) < 2)
        for (sampling, n), indices in groups.items():
            prompts = {i: chat_prompt(tokenizer, requests[i].message_dicts()) for i in indices}
            ordered = sorted(indices, key=lambda i: len(prompts[i]))
            for start in range(0, len(ordered), self.batch_size):
                chunk = ordered[start : start + self.batch_size]
                started = time.perf_counter()
                texts = generate_texts(
                    self.bundle,
                    [prompts[i] for i in chunk],
                    max_new_tokens=sampling.max_new_tokens,
                    batch_size=len(chunk),
                    do_sample=sampling.temperature > 0,
                    temperature=sampling.temperature if sampling.temperature > 0 else 1.0,
                    top_p=sampling.top_p,
                    top_k=sampling.top_k,
                    num_return_sequences=n,
                    seed=sampling.seed + start,
                    progress=False,
                )
                produced = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for c in texts for t in c)
                self.generated_tokens += produced
                logger.debug(
                    "generated %d prompts x %d in %.1fs", len(chunk), n, time.perf_counter() - started
                )
                for index, candidates in zip(chunk, texts):
                    results[index] = candidates
                    if on_result:
                        on_result(index, candidates)
                bar.update(len(chunk))
        bar.close()
        return results
