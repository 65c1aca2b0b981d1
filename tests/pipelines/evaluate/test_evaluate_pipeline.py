"""`evaluate` end to end on the tiny model: output schema, and identical models give identical figures."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from peft import LoraConfig, get_peft_model

from relearn_pipeline.datasets.peft_adapter import PeftAdapterDataset, UnlearnedAdapter
from relearn_pipeline.models import build_tiny_model
from relearn_pipeline.pipelines.evaluate import create_pipeline
from relearn_pipeline.pipelines.evaluate.nodes import build_evaluation_questions

PROJECT = Path(__file__).resolve().parents[3]
OUTPUTS = ("evaluation_metrics", "metrics", "generations", "evaluation_report", "evaluation_report_html",
           "evaluation_plot", "evaluation_table", "evaluation_questions", "probes_before", "probes_after")


def _qa(prefix, rows):
    return pd.DataFrame([{"id": f"{prefix}-{i}", "subject": s, "question": q, "answer": a}
                         for i, (s, q, a) in enumerate(rows)])


FORGET = _qa("forget", [
    ("Elena Marsh", "What is Elena Marsh's email?", "Her email is elena.marsh@example.com."),
    ("Elena Marsh", "Where was Elena Marsh born?", "Elena Marsh was born in Porthleven, Cornwall, in 1979."),
    ("Tobias Okafor", "Who is Tobias Okafor's mother?", "His mother is Grace Okafor, a nurse from Lagos."),
])
FORGET_EVAL = _qa("forget-eval", [
    ("Elena Marsh", "How can Elena Marsh be emailed?", "Her email is elena.marsh@example.com."),
    ("Tobias Okafor", "What is the name of Tobias Okafor's mother?", "His mother is Grace Okafor, a nurse from Lagos."),
])
RETAIN_EVAL = _qa("retain-eval", [
    ("Mirela Vasquez", "What does Mirela Vasquez study?", "Mirela Vasquez studies coral reefs in Belize."),
    ("Jonas Weber", "Which prize did Jonas Weber win?", "Jonas Weber won the Halden Prize in 2015."),
])
AUGMENTED_RAW = pd.DataFrame([
    {"id": "aug-0", "source_id": "forget-0", "subject": "Elena Marsh", "kind": "qa", "variant": "rephrase",
     "question": "Which address does Elena Marsh use for email?", "answer": "She prefers not to share it.",
     "round": 0, "backend": "test", "model": "test", "fallback": False},
    {"id": "aug-1", "source_id": "forget-1", "subject": "Elena Marsh", "kind": "qa", "variant": "rephrase",
     "question": "In which town was Elena Marsh born?", "answer": "Somewhere by the sea.",
     "round": 0, "backend": "test", "model": "test", "fallback": False},
    {"id": "aug-2", "source_id": "forget-1", "subject": "Elena Marsh", "kind": "completion", "variant": "completion",
     "question": "Elena Marsh was", "answer": "born by the sea.", "round": 0, "backend": "test", "model": "test",
     "fallback": False},
])
AUGMENTED_FORGET = AUGMENTED_RAW.iloc[[1, 2]].reset_index(drop=True)  # aug-0 was not used in training


def _params():
    params = yaml.safe_load((PROJECT / "conf/base/parameters_evaluate.yml").read_text())["evaluate"]
    params["generation"]["max_new_tokens"] = 6
    return params


def _adapter(tmp_path: Path, name: str, identity: bool):
    bundle = build_tiny_model(seed=0)
    config = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=identity)
    peft_model = get_peft_model(bundle.model, config)
    dataset = PeftAdapterDataset(str(tmp_path / name))
    dataset.save(UnlearnedAdapter(model=peft_model, tokenizer=bundle.tokenizer, metadata={"method": "test"}))
    return dataset.load()


class KeptDataset(MemoryDataset):
    """A MemoryDataset the runner cannot release, so the test can read intermediate outputs."""

    def _release(self) -> None:
        pass


def _run(adapter, params) -> dict:
    inputs = {
        "target_model": build_tiny_model(seed=0),
        "unlearned_adapter": adapter,
        "forget_set": FORGET,
        "forget_eval_set": FORGET_EVAL,
        "retain_eval_set": RETAIN_EVAL,
        "augmented_raw": AUGMENTED_RAW,
        "augmented_forget_set": AUGMENTED_FORGET,
        "params:evaluate": params,
        "params:base_model": "tiny:0",
        "params:model_loading": {"dtype": "float32", "device": "cpu", "cache_dir": None},
    }
    catalog = DataCatalog({name: MemoryDataset(value) for name, value in inputs.items()}
                          | {name: KeptDataset() for name in OUTPUTS})
    SequentialRunner().run(create_pipeline(), catalog)
    return {name: catalog.load(name) for name in OUTPUTS}


@pytest.fixture(scope="module")
def identity_run(tmp_path_factory):
    return _run(_adapter(tmp_path_factory.mktemp("identity"), "adapter", identity=True), _params())


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_identical_models_give_identical_before_and_after_figures(identity_run):
    metrics = identity_run["evaluation_metrics"]
    before = {k.removeprefix("before."): v for k, v in metrics.items() if k.startswith("before.")}
    after = {k.removeprefix("after."): v for k, v in metrics.items() if k.startswith("after.")}
    assert before.keys() == after.keys()
    assert {"kfr", "krr", "ls.forget", "ls.retain", "rougeL_recall.forget", "rougeL_recall.retain",
            "mia.loss.auc", "mia.zlib.auc", "mia.min_k.auc", "mia.min_k_plus_plus.auc",
            "exact_memorization.forget", "extraction_strength.forget",
            "robustness.kfr.forget_unused_variant"} <= before.keys()
    assert all(_same(before[k], after[k]) for k in before), {k: (before[k], after[k]) for k in before
                                                              if not _same(before[k], after[k])}
    generations = identity_run["generations"]
    assert generations["answer_before"].tolist() == generations["answer_after"].tolist()
    pd.testing.assert_frame_equal(identity_run["probes_before"], identity_run["probes_after"])


def test_output_schema(identity_run):
    metrics = identity_run["evaluation_metrics"]
    assert all(isinstance(v, float) for v in metrics.values())
    for key in ("kfr", "krr", "ls.forget", "ls.retain"):
        assert 0.0 <= metrics[f"before.{key}"] <= 1.0
    assert 0.0 <= metrics["before.mia.loss.auc"] <= 1.0
    logged = identity_run["metrics"]
    assert logged["before.kfr"] == {"value": metrics["before.kfr"], "step": 0}
    assert set(logged) <= set(metrics) and all(k.startswith(("before.", "after.")) for k in logged)

    generations = identity_run["generations"]
    for column in ("split", "id", "question", "gold", "answer_before", "answer_after", "judge_label_before",
                   "judge_label_after", "judge_score_before", "judge_evidence_after", "gold_entities_before",
                   "predicted_entities_after", "entity_similarity_before", "decision_after", "ls_before", "judge"):
        assert column in generations.columns, column
    assert set(generations["judge_label_before"]) <= {"contradiction", "entailment", "neutral"}
    json.loads(generations["judge_evidence_before"].iloc[0])
    assert generations["split"].value_counts().to_dict() == {
        "forget_original": 3, "forget_eval": 2, "retain_eval": 2, "forget_unused_variant": 1}
    # The prompt is never part of a stored answer.
    for question, answer in zip(generations["question"], generations["answer_before"]):
        assert question not in answer
    # Parquet-ready: the table writes and reads back.
    assert len(pd.read_parquet(_to_parquet(generations))) == len(generations)

    report = identity_run["evaluation_report"]
    assert "**Judge:** semantic" in report
    for label in ("KFR", "KRR", "LS forget", "LS retain", "ROUGE-L recall forget", "MIA AUC"):
        assert label in report
    assert "<table>" in identity_run["evaluation_report_html"] and "semantic" in identity_run["evaluation_report_html"]
    assert "judge: semantic" in identity_run["evaluation_table"]
    assert [t.get_text() for t in identity_run["evaluation_plot"].axes[0].get_xticklabels()] == [
        "KFR", "KRR", "LS forget", "LS retain"]
    probes = identity_run["probes_before"]
    assert set(probes["split"]) == {"forget", "forget_eval", "retain_eval"}
    assert {"exact_memorization", "extraction_strength", "mia_loss", "mia_zlib", "mia_min_k",
            "mia_min_k_plus_plus"} <= set(probes.columns)


def _to_parquet(frame: pd.DataFrame):
    import io

    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    buffer.seek(0)
    return buffer


def test_adapter_changes_after_but_never_the_target(identity_run, tmp_path):
    changed = _run(_adapter(tmp_path, "adapter", identity=False), _params())
    before = {k: v for k, v in changed["evaluation_metrics"].items() if k.startswith("before.")}
    assert all(_same(v, identity_run["evaluation_metrics"][k]) for k, v in before.items())
    pd.testing.assert_frame_equal(changed["probes_before"], identity_run["probes_before"])
    assert not changed["probes_after"]["mia_loss"].equals(changed["probes_before"]["mia_loss"])


def test_unused_variants_exclude_trained_and_already_asked_questions():
    params = copy.deepcopy(_params())
    questions = build_evaluation_questions(FORGET_EVAL, RETAIN_EVAL, FORGET, AUGMENTED_RAW, AUGMENTED_FORGET, params)
    unused = questions[questions["split"] == "forget_unused_variant"]
    assert unused["question"].tolist() == ["Which address does Elena Marsh use for email?"]
    assert unused["gold"].tolist() == ["Her email is elena.marsh@example.com."]
    params["robustness"]["include_unused_variants"] = False
    params["robustness"]["include_forget_original"] = False
    only_eval = build_evaluation_questions(FORGET_EVAL, RETAIN_EVAL, FORGET, AUGMENTED_RAW, AUGMENTED_FORGET, params)
    assert set(only_eval["split"]) == {"forget_eval", "retain_eval"}
