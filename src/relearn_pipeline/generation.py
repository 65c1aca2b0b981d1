"""Batched text generation shared by the target's recall, augmentation and evaluation."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from relearn_pipeline.continuous_generation import UnsupportedModel, sample_continuous
from relearn_pipeline.llm.requests import SamplingParams
from relearn_pipeline.models.loading import ModelBundle

logger = logging.getLogger(__name__)


def generate_texts(
    bundle: ModelBundle,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 128,
    batch_size: int = 16,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    num_return_sequences: int = 1,
    seed: int = 0,
    desc: str = "generating",
    progress: bool = True,
    continuous: bool = True,
) -> list[list[str]]:
    """Continue each already-formatted prompt; returns ``num_return_sequences`` texts per prompt.

    ``continuous=True`` (default) runs ``continuous_generation.sample_continuous`` with
    ``batch_size`` prompts in flight (greedy answers equal ``model.generate``'s one prompt at a
    time). ``continuous=False``, or a model that cannot be batched that way: ``model.generate`` on
    fixed batches of prompts sorted by length, seeded per batch. Only newly generated tokens are
    decoded: the prompt is never part of the returned text.
    """
    if continuous:
        sampling = SamplingParams(
            temperature=temperature if do_sample else 0.0, top_p=top_p, top_k=top_k,
            max_new_tokens=max_new_tokens, seed=seed,
        )
        bar = tqdm(total=len(prompts), desc=desc, disable=not progress, unit="prompt")
        try:
            return sample_continuous(
                bundle, prompts, sampling, n=num_return_sequences, batch_size=batch_size, on_progress=bar.update
            )
        except UnsupportedModel as error:
            logger.warning("%s; generating in fixed batches instead", error)
        finally:
            bar.close()
    tokenizer, model = bundle.tokenizer, bundle.model
    tokenizer.padding_side = "left"
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    results: list[list[str]] = [[] for _ in prompts]
    sampling = {"temperature": temperature, "top_p": top_p, "top_k": top_k} if do_sample else {}
    model.eval()
    bar = tqdm(total=len(prompts), desc=desc, disable=not progress, unit="prompt")
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        batch = tokenizer(
            [prompts[i] for i in chunk], return_tensors="pt", padding=True, add_special_tokens=False
        ).to(bundle.device)
        if do_sample:
            # Seed per batch position, so a result does not depend on what ran before it.
            torch.manual_seed(seed + start)
        with torch.inference_mode():
            output = model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=do_sample,
                num_return_sequences=num_return_sequences,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                **sampling,
            )
        new_tokens = output[:, batch["input_ids"].shape[1] :]
        texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        for offset, index in enumerate(chunk):
            first = offset * num_return_sequences
            results[index] = [t.strip() for t in texts[first : first + num_return_sequences]]
        bar.update(len(chunk))
    bar.close()
    return results
