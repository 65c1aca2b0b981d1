"""Forget examples paired with retain examples: the dataset and collator the unlearning trainer reads.

Item ``i`` is forget example ``i`` plus one retain example. Retain examples are drawn by cycling
through a seeded permutation of the retain set, shifted by one forget-set length per epoch, so
every retain example gets used when the retain set is larger than the forget set, the pairing is
the same in every process of a data-parallel run and after a resume, and it changes per epoch.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from torch.utils.data import Dataset
from transformers import PreTrainedTokenizerBase

from relearn_pipeline.prompting import encode_qa
from relearn_pipeline.unlearning.collation import pad_batch

Feature = dict[str, list[int]]


def encode_records(
    records: pd.DataFrame, tokenizer: PreTrainedTokenizerBase, max_length: int, name: str
) -> list[Feature]:
    """Encode every (question, answer) row with the shared chat format; labels on answers only."""
    missing = {"question", "answer"} - set(records.columns)
    if missing:
        raise ValueError(f"{name}: missing column(s) {sorted(missing)}; expected a QA table (docs/architecture.md)")
    if records.empty:
        raise ValueError(f"{name}: no rows to train on; run the stage that produces {name} first")
    features = []
    for index, row in enumerate(records.itertuples(index=False)):
        if not isinstance(row.question, str) or not isinstance(row.answer, str) or not row.answer.strip():
            record = getattr(row, "id", index)
            raise ValueError(f"{name}: record {record!r} needs a non-empty string question and answer")
        features.append(encode_qa(tokenizer, row.question, row.answer, max_length=max_length))
    return features


class PairedDataset(Dataset):
    """Forget example ``i`` with a retain example chosen by a seeded, per-epoch cycle."""

    def __init__(self, forget: Sequence[Feature], retain: Sequence[Feature] | None, seed: int):
        self.forget = list(forget)
        self.retain = list(retain) if retain else None
        self.epoch = 0
        if self.retain is not None:
            generator = torch.Generator().manual_seed(seed)
            self._order = torch.randperm(len(self.retain), generator=generator).tolist()

    def set_epoch(self, epoch: int) -> None:
        """Called by the Trainer's data loader at the start of each epoch."""
        self.epoch = int(epoch)

    def retain_index(self, index: int) -> int:
        position = (index + self.epoch * len(self.forget)) % len(self.retain)
        return self._order[position]

    def __len__(self) -> int:
        return len(self.forget)

    def __getitem__(self, index: int) -> dict[str, Feature]:
        item = {"forget": self.forget[index]}
        if self.retain is not None:
            item["retain"] = self.retain[self.retain_index(index)]
        return item

    def token_count(self) -> int:
        return sum(len(f["input_ids"]) for f in self.forget)


class PairedCollator:
    """Pads the forget and the retain halves of a batch separately, each to its own longest row."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, items: Sequence[dict[str, Feature]]) -> dict[str, torch.Tensor]:
        batch = {}
        for part in ("forget", "retain"):
            if part in items[0]:
                padded = pad_batch([item[part] for item in items], self.pad_token_id)
                batch.update({f"{part}_{key}": value for key, value in padded.items()})
        return batch
