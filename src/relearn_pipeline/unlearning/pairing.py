"""Forget examples paired with retain examples: the dataset and collator the unlearning trainer reads.

Item ``i`` is forget example ``i`` plus one retain example. Retain examples are drawn by cycling
through a seeded permutation of the retain set, shifted by one forget-set length per epoch, so
every retain example gets used when the retain set is larger than the forget set, the pairing is
the same in every process of a data-parallel run and after a resume, and it changes per epoch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd
import torch
from torch.utils.data import Dataset
from transformers import PreTrainedTokenizerBase

from relearn_pipeline.errors import RecordError
from relearn_pipeline.prompting import qa_token_ids, truncate_qa
from relearn_pipeline.unlearning.collation import pad_batch

logger = logging.getLogger(__name__)

Feature = dict[str, list[int]]


def encode_records(
    records: pd.DataFrame,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    name: str,
    context: int | None = None,
) -> list[Feature]:
    """Encode every (question, answer) row with the shared chat format; labels on answers only.

    A record longer than ``max_length`` is cut to it (counted in one warning); a record longer than
    the model's ``context`` stops the run with a ``RecordError`` naming ``name``, the record and the
    field that makes it long: no truncation makes it a faithful training example.
    """
    missing = {"question", "answer"} - set(records.columns)
    if missing:
        raise ValueError(f"{name}: missing column(s) {sorted(missing)}; expected a QA table (docs/architecture.md)")
    if records.empty:
        raise ValueError(f"{name}: no rows to train on; run the stage that produces {name} first")
    features, truncated = [], []
    for index, row in enumerate(records.itertuples(index=False)):
        record = getattr(row, "id", index)
        if not isinstance(row.question, str) or not isinstance(row.answer, str) or not row.answer.strip():
            raise ValueError(f"{name}: record {record!r} needs a non-empty string question and answer")
        prompt_ids, answer_ids = qa_token_ids(tokenizer, row.question, row.answer)
        length = len(prompt_ids) + len(answer_ids)
        if context is not None and length > context:
            raise_too_long(name, index, record, len(prompt_ids), len(answer_ids), context)
        if length > max_length:
            truncated.append(str(record))
        features.append(truncate_qa(prompt_ids, answer_ids, max_length))
    if truncated:
        shown = ", ".join(truncated[:5]) + (", ..." if len(truncated) > 5 else "")
        logger.warning(
            "%s: %d of %d records are longer than max_length = %d tokens and were cut to it "
            "(the question first, from the left): %s",
            name, len(truncated), len(features), max_length, shown,
        )
    return features


def raise_too_long(name: str, index: int, record: object, prompt: int, answer: int, context: int) -> None:
    """A ``RecordError`` for a record that does not fit the model, naming the field that makes it long."""
    field = "answer" if answer >= prompt else "question"
    raise RecordError(
        name,
        f"record id {record!r} takes {prompt + answer} tokens in the model's chat format "
        f"(question {prompt}, answer {answer}), more than the model's context of {context} tokens",
        record=index,
        field=field,
        hint=f"Shorten the {field} where the record comes from (the raw file ingest reads, see "
        "catalog_ingest.yml) and run again, or drop the record.",
    )


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
