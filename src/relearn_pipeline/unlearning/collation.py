"""Dynamic padding: each batch is padded to its own longest sequence, never to a fixed length."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from relearn_pipeline.prompting import IGNORE_INDEX


def pad_batch(features: Sequence[dict[str, list[int]]], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-pad ``input_ids``/``attention_mask``/``labels`` to the batch's longest sequence."""
    longest = max(len(f["input_ids"]) for f in features)
    batch: dict[str, list[list[int]]] = {"input_ids": [], "attention_mask": [], "labels": []}
    for feature in features:
        missing = longest - len(feature["input_ids"])
        batch["input_ids"].append(list(feature["input_ids"]) + [pad_token_id] * missing)
        batch["attention_mask"].append(list(feature["attention_mask"]) + [0] * missing)
        batch["labels"].append(list(feature["labels"]) + [IGNORE_INDEX] * missing)
    return {key: torch.tensor(value, dtype=torch.long) for key, value in batch.items()}


class QACollator:
    """A ``data_collator`` for HF Trainer over features made by ``prompting.encode_qa``."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, features: Sequence[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        return pad_batch(features, self.pad_token_id)
