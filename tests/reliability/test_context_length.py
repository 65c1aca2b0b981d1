"""Records and settings longer than the model's context: a clear error naming the dataset, the record
and the field, before anything is trained or written. The tiny model is built with a 96-token context
(its byte tokenizer makes one token per character, so lengths are easy to reason about)."""

from __future__ import annotations

import logging
import re
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from transformers import GPT2Config

from relearn_pipeline.datasets import PeftAdapterDataset
from relearn_pipeline.datasets.atomic_files import AtomicCSVDataset, AtomicJSONDataset
from relearn_pipeline.errors import RecordError
from relearn_pipeline.models import build_tiny_model
from relearn_pipeline.models.context import context_length
from relearn_pipeline.pipelines.evaluate.nodes import probe_model, score_fluency
from relearn_pipeline.pipelines.finetune import create_pipeline
from relearn_pipeline.pipelines.target.nodes import memorize
from relearn_pipeline.unlearning.config import finetune_config
from relearn_pipeline.unlearning.pairing import encode_records
from relearn_pipeline.unlearning.training import train_unlearning

CONTEXT = 96


def qa(prefix: str, n: int, long: dict[int, str] | None = None) -> pd.DataFrame:
    """``n`` short QA rows; ``long`` replaces the answer ("answer") or question ("question") of a row."""
    rows = [{"id": f"{prefix}-{i}", "subject": "Ada", "question": f"What is {prefix} {i}?", "answer": f"It is {i}."}
            for i in range(n)]
    for index, field in (long or {}).items():
        rows[index][field] = f"{'Ada ' if field == 'question' else ''}" + "x" * 120
    return pd.DataFrame(rows)


def small_context_model():
    return build_tiny_model(0, max_positions=CONTEXT)


def test_context_length_comes_from_the_model_config():
    assert context_length(build_tiny_model(0).model) == 2048  # Llama: max_position_embeddings
    assert context_length(small_context_model().model) == CONTEXT
    assert context_length(SimpleNamespace(config=GPT2Config(n_positions=128))) == 128  # GPT-2: n_positions
    assert context_length(SimpleNamespace(config=SimpleNamespace())) is None


def test_finetune_stops_on_a_record_longer_than_the_context_and_writes_nothing(project_root, tmp_path):
    params = yaml.safe_load((project_root / "conf/base/parameters_finetune.yml").read_text())["finetune"]
    params.update(max_steps=2, batch_size=2, max_length=64, progress_bar=False, save_steps=1,
                  checkpoint_dir=str(tmp_path / "checkpoints"))
    outputs = tmp_path / "outputs"
    catalog = DataCatalog(datasets={
        "target_model": MemoryDataset(small_context_model(), copy_mode="assign"),
        "augmented_forget_set": MemoryDataset(qa("aug", 4)),
        "forget_set": MemoryDataset(qa("forget", 4)),
        "retain_set": MemoryDataset(qa("retain", 4, long={2: "answer"})),
        "unlearned_adapter": PeftAdapterDataset(str(outputs / "unlearned_adapter")),
        "finetune_history": AtomicCSVDataset(filepath=str(outputs / "finetune_history.csv")),
        "finetune_summary": AtomicJSONDataset(filepath=str(outputs / "finetune_summary.json")),
        "finetune_metrics": MemoryDataset(),
        "params:finetune": MemoryDataset(params),
        "params:seed": MemoryDataset(42),
    })
    with pytest.raises(RecordError) as caught:
        SequentialRunner().run(create_pipeline(), catalog)
    message = str(caught.value)
    assert re.fullmatch(
        r"retain_set: record 2, field 'answer': record id 'retain-2' takes \d+ tokens in the model's chat format "
        r"\(question \d+, answer 121\), more than the model's context of 96 tokens\. Shorten the answer where the "
        r"record comes from \(the raw file ingest reads, see catalog_ingest\.yml\) and run again, or drop the record\.",
        message,
    ), message
    assert not outputs.exists() and not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize("field", ["question", "answer"])
def test_the_field_that_makes_a_record_too_long_is_named(field):
    tokenizer = small_context_model().tokenizer
    with pytest.raises(RecordError, match=rf"^full_set: record 1, field '{field}': record id 'full-1' takes"):
        encode_records(qa("full", 3, long={1: field}), tokenizer, 64, "full_set", context=CONTEXT)


def test_records_longer_than_max_length_but_within_the_context_are_cut_with_one_warning(caplog):
    tokenizer = small_context_model().tokenizer
    records = qa("retain", 3)
    records.loc[[0, 2], "answer"] = "y" * 50  # prompt (36 tokens) + 51 answer tokens: over 64, under 96
    with caplog.at_level(logging.WARNING, logger="relearn_pipeline.unlearning.pairing"):
        features = encode_records(records, tokenizer, 64, "retain_set", context=CONTEXT)
    assert [len(f["input_ids"]) for f in features] == [64, len(features[1]["input_ids"]), 64]
    assert len(features[1]["input_ids"]) < 64
    assert features[0]["input_ids"][-51:] == features[0]["labels"][-51:]  # the answer kept whole
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "retain_set: 2 of 3 records are longer than max_length = 64 tokens and were cut to it "
        "(the question first, from the left): retain-0, retain-2"
    ]


def test_target_memorizing_stops_on_a_full_set_record_longer_than_the_context():
    training = {"seed": 0, "max_length": 64}
    with pytest.raises(RecordError, match=r"^full_set: record 0, field 'answer': .* context of 96 tokens"):
        memorize(small_context_model(), qa("full", 2, long={0: "answer"}), training)


def _finetune(max_length, tmp_path):
    config = finetune_config({"max_steps": 1, "max_length": max_length, "checkpoint_dir": str(tmp_path)}, seed=0)
    frame = qa("f", 2)
    return train_unlearning(small_context_model(), frame, frame, frame, config)


@pytest.mark.parametrize(
    ("setting", "run"),
    [
        ("finetune.max_length", lambda tmp_path: _finetune(128, tmp_path)),
        ("target.training.max_length", lambda _: memorize(small_context_model(), qa("full", 2), {"seed": 0, "max_length": 128})),
        ("evaluate.scoring.max_length", lambda _: probe_model(
            small_context_model(), qa("f", 1), qa("fe", 1), qa("re", 1), {"scoring": {"max_length": 128, "batch_size": 2}, "mia": {"k": 0.4}})),
        ("evaluate.scoring.max_length", lambda _: score_fluency(
            small_context_model(), qa("f", 1).assign(split="forget"), qa("f", 1), {"scoring": {"max_length": 128, "batch_size": 2}})),
    ],
    ids=["finetune", "target", "evaluate-probes", "evaluate-fluency"],
)
def test_a_max_length_longer_than_the_context_is_refused_with_the_setting_named(setting, run, tmp_path):
    expected = (
        f"params:{setting} = 128 is longer than the context of tiny:0 (96 tokens, its config's position limit); "
        f"set {setting} to at most 96"
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        run(tmp_path)
    assert not list(tmp_path.iterdir())  # nothing trained, no checkpoint
