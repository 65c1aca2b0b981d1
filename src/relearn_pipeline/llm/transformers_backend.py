"""A local chat model as a generation backend: continuously batched, seeded sampling."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence

from tqdm.auto import tqdm

from relearn_pipeline.continuous_generation import UnsupportedModel, sample_continuous
from relearn_pipeline.generation import generate_texts
from relearn_pipeline.models import ModelBundle, load_model
from relearn_pipeline.prompting import chat_prompt
from relearn_pipeline.llm.requests import GenerationRequest, ResultCallback

logger = logging.getLogger(__name__)

# Prompts in flight, each with all its candidates (augment.llm.transformers.batch_size).
DEFAULT_BATCH_SIZE = 32


class TransformersBackend:
    """Generate with a transformers causal LM (default: the embedded SmolLM2-135M-Instruct).

    Requests with the same sampling params and candidate count run together, ``batch_size`` prompts
    in flight. ``continuous=True`` (default) uses ``continuous_generation``: each prompt prefilled
    once for its ``n`` candidates, ended rows leave the batch and waiting prompts join it, every
    candidate seeded by its prompt. ``continuous=False`` runs fixed batches through ``model.generate``
    (``num_return_sequences=n``), as does any model whose cache cannot be joined row by row.
    """

    name = "transformers"

    def __init__(self, bundle: ModelBundle, batch_size: int = DEFAULT_BATCH_SIZE, continuous: bool = True):
        if batch_size < 1:
            raise ValueError(f"transformers backend: batch_size must be >= 1, got {batch_size}")
        self.bundle = bundle
        self.model = bundle.spec
        self.batch_size = batch_size
        self.continuous = continuous
        self.generated_tokens = 0

    @classmethod
    def from_spec(
        cls,
        model: str = "embedded:smollm2-135m-instruct",
        batch_size: int = DEFAULT_BATCH_SIZE,
        dtype: str = "float32",
        device: str = "auto",
        cache_dir: str | None = None,
        continuous_batching: bool = True,
    ) -> TransformersBackend:
        """Load the model named by a ``models.load_model`` spec."""
        bundle = load_model(model, dtype=dtype, device=device, cache_dir=cache_dir)
        return cls(bundle, batch_size, continuous=continuous_batching)

    def __repr__(self) -> str:
        return f"TransformersBackend(model={self.model!r}, batch_size={self.batch_size}, continuous={self.continuous})"

    def generate(
        self, requests: Sequence[GenerationRequest], on_result: ResultCallback | None = None
    ) -> list[list[str]]:
        """``request.n`` candidates per request; ``on_result`` fires as soon as a request's exist."""
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

        def deliver(index: int, candidates: list[str]) -> None:
            results[index] = candidates
            self.generated_tokens += sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in candidates)
            if on_result:
                on_result(index, candidates)

        for (sampling, n), indices in groups.items():
            prompts = [chat_prompt(tokenizer, requests[i].message_dicts()) for i in indices]
            started = time.perf_counter()
            if self.continuous:
                try:
                    sample_continuous(
                        self.bundle, prompts, sampling, n=n, batch_size=self.batch_size,
                        on_done=lambda position, texts: deliver(indices[position], texts), on_progress=bar.update,
                    )
                except UnsupportedModel as error:
                    logger.warning("%s; generating in fixed batches instead", error)
                    self.continuous = False
            if not self.continuous:
                self._generate_fixed_batches(prompts, indices, sampling, n, deliver, bar)
            logger.debug("generated %d prompts x %d in %.1fs", len(indices), n, time.perf_counter() - started)
        bar.close()
        return results

    def _generate_fixed_batches(self, prompts, indices, sampling, n, deliver, bar) -> None:
        """``model.generate`` on fixed batches of prompts sorted by length (``continuous=False``)."""
        ordered = sorted(range(len(prompts)), key=lambda position: len(prompts[position]))
        for start in range(0, len(ordered), self.batch_size):
            chunk = ordered[start : start + self.batch_size]
            texts = generate_texts(
                self.bundle,
                [prompts[position] for position in chunk],
                max_new_tokens=sampling.max_new_tokens,
                batch_size=len(chunk),
                do_sample=sampling.temperature > 0,
                temperature=sampling.temperature if sampling.temperature > 0 else 1.0,
                top_p=sampling.top_p,
                top_k=sampling.top_k,
                num_return_sequences=n,
                seed=sampling.seed + start,
                progress=False,
                continuous=False,
            )
            for position, candidates in zip(chunk, texts, strict=True):
                deliver(indices[position], candidates)
            bar.update(len(chunk))

