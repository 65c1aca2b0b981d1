"""augment + verify on demo forget records with the embedded SmolLM2: nothing private survives."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from relearn_pipeline.llm import LLMCredentials
from relearn_pipeline.pipelines.augment import create_pipeline as augment_pipeline
from relearn_pipeline.pipelines.verify import create_pipeline as verify_pipeline
from relearn_pipeline.pipelines.verify.checks import find_leaks, protected_spans
from relearn_pipeline.text.spans import find_sensitive_spans

PROJECT = Path(__file__).resolve().parents[3]


class Kept(MemoryDataset):
    def _release(self) -> None:
        pass


@pytest.mark.slow
def test_demo_records_with_embedded_model_contain_no_sensitive_span(tmp_path):
    demo = json.loads((PROJECT / "data/01_raw/demo/forget.json").read_text())
    forget = pd.DataFrame([r for r in demo if r["id"].endswith(("-email", "-father"))][:2])
    spans = pd.DataFrame([asdict(s) | {"record_id": r["id"]} for r in forget.to_dict("records") for s in find_sensitive_spans(r["answer"])])
    retain = pd.DataFrame(json.loads((PROJECT / "data/01_raw/demo/retain.json").read_text()))
    augment = yaml.safe_load((PROJECT / "conf/base/parameters_augment.yml").read_text())["augment"]
    augment["llm"] |= {"cache_path": str(tmp_path / "cache.jsonl")}
    augment["llm"]["transformers"] |= {"device": "cpu"}
    augment["question"] |= {"candidates": 2, "rounds": 1, "sampling": augment["question"]["sampling"] | {"max_new_tokens": 32}}
    augment["answer"] |= {"candidates": 2, "sampling": augment["answer"]["sampling"] | {"max_new_tokens": 40}}
    verify = yaml.safe_load((PROJECT / "conf/base/parameters_verify.yml").read_text())["verify"] | {"max_rounds": 1}
    prompts = {p.stem: yaml.safe_load(p.read_text()) for p in (PROJECT / "conf/base/prompts").glob("*.yml")}
    outputs = ["augmented_forget_set", "verification_report"]
    catalog = DataCatalog(datasets={
        "forget_set": MemoryDataset(forget), "sensitive_spans": MemoryDataset(spans), "retain_set": MemoryDataset(retain),
        "augment_prompts": MemoryDataset(prompts, copy_mode="assign"),
        "llm_credentials": MemoryDataset(LLMCredentials(), copy_mode="assign"),
        "params:augment": MemoryDataset(augment, copy_mode="deepcopy"),
        "params:verify": MemoryDataset(verify, copy_mode="deepcopy"),
        **{name: Kept() for name in outputs},
    })
    SequentialRunner().run(augment_pipeline() + verify_pipeline(), catalog)
    data, report = catalog.load("augmented_forget_set"), catalog.load("verification_report")
    records = {r["id"]: r for r in forget.to_dict("records")}
    own = data[data["kind"] != "general"]
    assert set(own["source_id"]) == set(records)
    for row in own.itertuples():
        record = records[row.source_id]
        protected = protected_spans(spans[spans["record_id"] == row.source_id].to_dict("records"), record["subject"], record["question"])
        assert protected, row.source_id
        for text in (row.question, row.answer):
            assert find_leaks(text, protected, subject=record["subject"]) == [], (row.id, text)
            assert not any(str(s["text"]).lower() in text.lower() for s in protected)
    assert report["summary"]["items"] == len(own[own["kind"] == "qa"]) and report["summary"]["item_pass_rate"] is not None
    print(json.dumps(report["summary"]), json.dumps(report["per_variant"]))
