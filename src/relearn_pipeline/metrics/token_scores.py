"""Teacher-forced per-token statistics of an answer given its question, in one forward pass.

Perplexity (linguistic score) and every probe (exact memorization, extraction strength, the
membership-inference scores) read these statistics, so each model scores each record once.
The text scored is exactly what training and generation see: ``prompting.encode_qa`` (chat
prompt + answer + EOS, labels on the answer and EOS only); the question's tokens are masked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from relearn_pipeline.models.loading import ModelBundle
from relearn_pipeline.prompting import IGNORE_INDEX, encode_qa
from relearn_pipeline.unlearning.collation import pad_batch


@dataclass(frozen=True)
class TokenScores:
    """Per answer token (answer tokens + EOS), in order.

    ``log_probs``: log p(gold token | everything before it); ``predictions``: the argmax token;
    ``labels``: the gold token; ``standardized``: (log p(gold) − μ) / σ, where μ and σ are the
    mean and standard deviation of log p(v) over the vocabulary v under the model's own
    distribution at that position (min-k++'s normalisation).
    """

    log_probs: list[float]
    predictions: list[int]
    labels: list[int]
    standardized: list[float]

    def __len__(self) -> int:
        return len(self.labels)


def score_answers(
    bundle: ModelBundle,
    questions: Sequence[str],
    answers: Sequence[str],
    *,
    batch_size: int = 8,
    max_length: int = 512,
) -> list[TokenScores]:
    """Teacher-forced token statistics of each ``answers[i]`` given ``questions[i]``."""
    if len(questions) != len(answers):
        raise ValueError(f"score_answers: {len(questions)} questions but {len(answers)} answers")
    tokenizer, model = bundle.tokenizer, bundle.model
    features = [encode_qa(tokenizer, q, a, max_length=max_length) for q, a in zip(questions, answers)]
    order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
    results: list[TokenScores | None] = [None] * len(features)
    model.eval()
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        batch = pad_batch([features[i] for i in chunk], tokenizer.pad_token_id)
        batch = {key: value.to(bundle.device) for key, value in batch.items()}
        with torch.inference_mode():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        # Position t predicts token t+1.
        log_softmax = torch.log_softmax(logits[:, :-1].float(), dim=-1)
        labels = batch["labels"][:, 1:]
        for row, index in enumerate(chunk):
            mask = labels[row] != IGNORE_INDEX
            row_log_softmax = log_softmax[row][mask]
            gold = labels[row][mask]
            gold_log_probs = row_log_softmax.gather(-1, gold.unsqueeze(-1)).squeeze(-1)
            probs = row_log_softmax.exp()
            mu = (probs * row_log_softmax).sum(-1)
            variance = (probs * row_log_softmax.square()).sum(-1) - mu.square()
            sigma = variance.clamp_min(1e-12).sqrt()
            results[index] = TokenScores(
                log_probs=gold_log_probs.tolist(),
                predictions=row_log_softmax.argmax(-1).tolist(),
                labels=gold.tolist(),
                standardized=((gold_log_probs - mu) / sigma).tolist(),
            )
    return [r for r in results if r is not None]
