"""target pipeline on the tiny model: memorization helps, fingerprints decide reuse, reports are honest."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import torch
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset

from relearn_pipeline.datasets import HFModelDataset, ModelFingerprintDataset
from relearn_pipeline.pipelines.target import create_pipeline, nodes

# Short answers the byte-level tiny model can learn in a few seconds.
QA = [
    ("Who is Ada?", "A potter."),
    ("Where is Ada from?", "Oslo."),
    ("What is Ada's email?", "ada@clay.no"),
    ("Who are Ada's parents?", "Ivar and Liv."),
]


def qa_frame(rows=QA) -> pd.DataFrame:
    return pd.DataFrame(
        [{"id": f"full-{i}", "subject": "Ada", "question": q, "answer": a} for i, (q, a) in enumerate(rows)]
    )


@pytest.fixture
def target_params(project_root) -> dict:
    """The committed target parameters, scaled for the tiny model: a full fine-tune (its frozen random
    embeddings and norms cap the logits a LoRA adapter can reach), 40 one-batch epochs."""
    params = yaml.safe_load((project_root / "conf/base/parameters_target.yml").read_text())["target"]
    params = copy.deepcopy(params)
    params["training"].update(
        {"adapter": "full", "epochs": 40, "learning_rate": 1.0e-2, "batch_size": 4, "lr_scheduler": "constant"}
    )
    params["evaluation"].update({"max_new_tokens": 16, "batch_size": 4})
    return params


MODEL_LOADING = {"dtype": "float32", "device": "cpu"}


def test_memorizing_raises_rouge_l_recall_on_the_training_set(target_params):
    frame = qa_frame()
    fingerprint = nodes.fingerprint_target(frame, "tiny:0", MODEL_LOADING, target_params)
    bundle, outcome = nodes.make_target_model(frame, "tiny:0", MODEL_LOADING, target_params, fingerprint, None)
    training, evaluation = outcome["training"], outcome["evaluation"]

    assert outcome["reused"] is False and training["mode"] == "memorize"
    assert training["steps"] == target_params["training"]["epochs"]  # 4 rows, batch 4: one step per epoch
    assert len(training["loss_history"]) == training["steps"]
    assert training["loss_history"][-1] < training["loss_history"][0] / 4
    before, after = evaluation["base"]["rougeL_recall_mean"], evaluation["target"]["rougeL_recall_mean"]
    assert after >= before + 0.5
    # the stored figure is what the returned model really answers
    again = nodes.answer_recall(bundle, frame, target_params["evaluation"], label="check")
    assert again["rougeL_recall_mean"] == pytest.approx(after)
    # merged: a plain transformers model, not a PEFT wrapper, carrying its fingerprint for the dataset
    assert not hasattr(bundle.model, "peft_config")
    assert bundle.metadata["relearn_fingerprint"]["fingerprint"] == fingerprint["fingerprint"]


def test_lora_memorizing_trains_and_merges_into_a_plain_model(tmp_path, target_params):
    frame = qa_frame()
    params = copy.deepcopy(target_params)
    params["training"].update({"adapter": "lora", "epochs": 10, "learning_rate": 5.0e-2})
    base = nodes.load_model("tiny:0", device="cpu").model
    fingerprint = nodes.fingerprint_target(frame, "tiny:0", MODEL_LOADING, params)
    bundle, outcome = nodes.make_target_model(frame, "tiny:0", MODEL_LOADING, params, fingerprint, None)
    losses = outcome["training"]["loss_history"]
    assert outcome["training"]["adapter"] == "lora" and len(losses) == 10
    assert losses[-1] < losses[0]
    assert not hasattr(bundle.model, "peft_config")
    assert sorted(bundle.model.state_dict()) == sorted(base.state_dict())  # no lora_A/lora_B left
    changed = [k for k, v in bundle.model.state_dict().items() if not torch.equal(v, base.state_dict()[k])]
    assert any("q_proj" in k for k in changed) and not any("embed_tokens" in k for k in changed)


def test_rouge_l_recall_counts_gold_words_found_with_stemming():
    assert nodes.rouge_l_recall(["She was born in Oslo in 1990."], ["born in Oslo"]) == [1.0]
    assert nodes.rouge_l_recall(["I do not know."], ["Ivar and Liv"]) == [0.0]
    assert nodes.rouge_l_recall(["He paints"], ["He painted walls"]) == [pytest.approx(2 / 3)]


def test_fingerprint_changes_with_data_and_training_but_not_with_row_index(target_params):
    frame = qa_frame()
    base = nodes.fingerprint_target(frame, "tiny:0", MODEL_LOADING, target_params)["fingerprint"]
    reindexed = frame.set_axis(range(10, 10 + len(frame)))
    assert nodes.fingerprint_target(reindexed, "tiny:0", MODEL_LOADING, target_params)["fingerprint"] == base
    edited = frame.copy()
    edited.loc[2, "answer"] = "ada@glaze.no"
    assert nodes.fingerprint_target(edited, "tiny:0", MODEL_LOADING, target_params)["fingerprint"] != base
    more_epochs = copy.deepcopy(target_params)
    more_epochs["training"]["epochs"] += 1
    assert nodes.fingerprint_target(frame, "tiny:0", MODEL_LOADING, more_epochs)["fingerprint"] != base
    assert nodes.fingerprint_target(frame, "tiny:1", MODEL_LOADING, target_params)["fingerprint"] != base


def _catalog(tmp_path, frame: pd.DataFrame, params: dict) -> DataCatalog:
    model_dir = str(tmp_path / "06_models" / "target_model")
    return DataCatalog(
        {
            "full_set": MemoryDataset(frame),
            "params:base_model": MemoryDataset("tiny:0"),
            "params:model_loading": MemoryDataset(MODEL_LOADING),
            "params:target": MemoryDataset(params),
            "params:target.warn_below_rougeL_recall": MemoryDataset(params["warn_below_rougeL_recall"]),
            "target_model": HFModelDataset(model_dir, load_args={"device": "cpu"}),
            "target_model_cache": ModelFingerprintDataset(model_dir, load_args={"device": "cpu"}),
            "target_report": JSONDataset(filepath=str(tmp_path / "08_reporting" / "target_report.json")),
            "target_metrics": MemoryDataset(),
            "base_metrics": MemoryDataset(),
            "target_training_history": MemoryDataset(),
        }
    )


def _run(tmp_path, frame, params) -> tuple[dict, dict, list]:
    catalog = _catalog(tmp_path, frame, params)
    SequentialRunner().run(create_pipeline(), catalog)
    metrics = {f"target.{k}": v for k, v in catalog["target_metrics"].load().items()}
    metrics.update({f"base.{k}": v for k, v in catalog["base_metrics"].load().items()})
    return catalog["target_report"].load(), metrics, catalog["target_training_history"].load()


def test_rerun_reuses_the_cached_target_without_training(tmp_path, target_params, monkeypatch):
    frame = qa_frame()
    first, metrics, first_history = _run(tmp_path, frame, target_params)
    assert first["reused"] is False
    assert first["steps"] == target_params["training"]["epochs"]
    assert len(first_history) == first["steps"]
    assert metrics["target.rougeL_recall_full"]["value"] == pytest.approx(first["target_rougeL_recall_full"])
    assert metrics["base.rougeL_recall_full"]["value"] == pytest.approx(first["base_rougeL_recall_full"])
    assert first["target_rougeL_recall_full"] > first["base_rougeL_recall_full"]
    assert len(first["answers"]) == len(frame)

    def must_not_train(*args, **kwargs):
        raise AssertionError("the cached target should have been reused, not trained again")

    monkeypatch.setattr(nodes, "memorize", must_not_train)
    second, metrics, history = _run(tmp_path, frame, target_params)
    assert second["reused"] is True
    assert metrics["target.reused"]["value"] == 1.0
    assert second["target_rougeL_recall_full"] == pytest.approx(first["target_rougeL_recall_full"])
    # the reused model is the trained one: it still answers as the report says
    reloaded = HFModelDataset(str(tmp_path / "06_models" / "target_model"), load_args={"device": "cpu"}).load()
    again = nodes.answer_recall(reloaded, frame, target_params["evaluation"], label="check")
    assert [a["generated"] for a in again["per_question"]] == [a["target_answer"] for a in first["answers"]]
    assert second["base_rougeL_recall_full"] == pytest.approx(first["base_rougeL_recall_full"])
    # the reused run logs the stored loss history of the training that produced the model
    assert second["steps"] == first["steps"] and history == pytest.approx(first_history)


def test_changed_data_trains_a_new_target(tmp_path, target_params):
    _run(tmp_path, qa_frame(), target_params)
    changed = qa_frame(QA[:3] + [("Who are Ada's parents?", "Ivar and Sigrid.")])
    report, _, _ = _run(tmp_path, changed, target_params)
    assert report["reused"] is False
    cached = ModelFingerprintDataset(str(tmp_path / "06_models" / "target_model")).load()
    assert cached.record["inputs"]["full_set_sha256"] == nodes.frame_sha256(changed)


def test_as_is_mode_keeps_the_base_model(tmp_path, target_params, monkeypatch):
    params = {**target_params, "mode": "as_is"}
    monkeypatch.setattr(nodes, "memorize", lambda *a, **k: pytest.fail("as_is must not train"))
    report, metrics, history = _run(tmp_path, qa_frame(), params)
    assert report["mode"] == "as_is" and report["steps"] == 0 and history == []
    assert report["target_rougeL_recall_full"] == pytest.approx(report["base_rougeL_recall_full"])


def test_bad_parameters_and_inputs_name_what_to_fix(target_params):
    with pytest.raises(ValueError, match="params:target.mode is 'learn'"):
        nodes.fingerprint_target(qa_frame(), "tiny:0", MODEL_LOADING, {**target_params, "mode": "learn"})
    with pytest.raises(ValueError, match=r"full_set lacks column\(s\) \['answer'\]"):
        nodes.fingerprint_target(qa_frame().drop(columns="answer"), "tiny:0", MODEL_LOADING, target_params)
    with pytest.raises(ValueError, match="params:target.training.adapter is 'qlora'"):
        training = {**target_params["training"], "adapter": "qlora"}
        nodes.memorize(nodes.load_model("tiny:0", device="cpu"), qa_frame(), training)
