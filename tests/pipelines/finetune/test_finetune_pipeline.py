"""The finetune pipeline on an in-memory catalog with the tiny model; its config files; the adapter dataset."""


import pandas as pd
import pytest
import torch
import yaml
from kedro.io import AbstractDataset, DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import CSVDataset

from relearn_pipeline.datasets import AdapterArtifact, PeftAdapterDataset, apply_adapter
from relearn_pipeline.models import build_tiny_model, load_model
from relearn_pipeline.pipelines.finetune import create_pipeline
from relearn_pipeline.pipelines.finetune.nodes import finetune_metrics
from relearn_pipeline.unlearning.config import finetune_config
from relearn_pipeline.unlearning.launch import parse_params, run_finetune_stage
from relearn_pipeline.unlearning.losses import METHODS


def qa(prefix, n):
    return pd.DataFrame(
        {
            "id": [f"{prefix}-{i}" for i in range(n)],
            "subject": ["Ada Stone"] * n,
            "question": [f"What is {prefix} detail {i} of Ada Stone?" for i in range(n)],
            "answer": [f"Ada Stone's {prefix} detail {i} is {i * 11} blue doors." for i in range(n)],
        }
    )


@pytest.fixture
def finetune_params(project_root):
    return yaml.safe_load((project_root / "conf/base/parameters_finetune.yml").read_text())["finetune"]


def small(params, tmp_path, **overrides):
    """The project's settings, scaled down to a few steps of the tiny model."""
    return {
        **params,
        "max_steps": 3,
        "batch_size": 2,
        "learning_rate": 5e-3,
        "progress_bar": False,
        "checkpoint_dir": str(tmp_path / "checkpoints"),
        **overrides,
    }


class Kept(MemoryDataset):
    """A MemoryDataset the runner cannot release, so the test can read outputs afterwards."""

    def _release(self):
        pass


def catalog_for(params, tmp_path, target=None):
    datasets = {
        "target_model": target or MemoryDataset(build_tiny_model(0), copy_mode="assign"),
        "augmented_forget_set": MemoryDataset(qa("aug", 4)),
        "forget_set": MemoryDataset(qa("forget", 4)),
        "retain_set": MemoryDataset(qa("retain", 6)),
        "unlearned_adapter": PeftAdapterDataset(str(tmp_path / "unlearned_adapter")),
        "finetune_history": CSVDataset(filepath=str(tmp_path / "finetune_history.csv")),
        "finetune_summary": JSONDataset(filepath=str(tmp_path / "finetune_summary.json")),
        "finetune_metrics": Kept(),
        "params:finetune": MemoryDataset(params),
        "params:seed": MemoryDataset(42),
    }
    return DataCatalog(datasets=datasets)


def logits_of(model, tokenizer):
    ids = tokenizer("<|im_start|>user\nWho is Ada Stone?<|im_end|>\n", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_pipeline_trains_saves_the_adapter_and_logs_each_term(finetune_params, tmp_path):
    params = small(finetune_params, tmp_path, method="npo_klr", save_merged=True)
    catalog = catalog_for(params, tmp_path)
    SequentialRunner().run(create_pipeline(), catalog)

    history = catalog.load("finetune_history")
    assert list(history["step"]) == [1, 2, 3]
    assert {"loss", "forget", "kl", "forget_ce"} <= set(history.columns)
    summary = catalog.load("finetune_summary")
    assert summary["method"] == "npo_klr" and summary["forget_data"] == "forget_set"
    for key in ("steps", "tokens_per_s", "train_time_s", "peak_memory_mb"):
        assert summary[key] > 0, key
    metrics = catalog.load("finetune_metrics")
    assert [p["step"] for p in metrics["kl"]] == [1, 2, 3]
    assert metrics["train_time_s"]["value"] == pytest.approx(summary["train_time_s"])

    artifact = catalog.load("unlearned_adapter")
    assert isinstance(artifact, AdapterArtifact)
    assert artifact.config["r"] == 32 and artifact.config["lora_alpha"] == 32
    assert artifact.metadata["method"] == "npo_klr"
    assert artifact.merged_path is not None

    target = build_tiny_model(0)
    before = logits_of(target.model, target.tokenizer)
    unmerged = apply_adapter(build_tiny_model(0), artifact, merge=False)
    merged = apply_adapter(build_tiny_model(0), str(artifact.path))
    from_disk = load_model(str(artifact.merged_path), device="cpu")
    after = logits_of(merged.model, merged.tokenizer)
    assert (after - before).abs().max() > 1e-4  # the adapter changes the model
    torch.testing.assert_close(logits_of(unmerged.model, target.tokenizer), after, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(logits_of(from_disk.model, target.tokenizer), after, rtol=1e-4, atol=1e-4)
    with unmerged.model.disable_adapter():
        torch.testing.assert_close(logits_of(unmerged.model, target.tokenizer), before)


class MustNotLoad(AbstractDataset):
    def load(self):
        raise AssertionError("target_model was loaded: training started before the method was checked")

    def save(self, data):
        raise NotImplementedError

    def _describe(self):
        return {}


def test_unknown_method_fails_before_training_and_lists_the_known_ones(finetune_params, tmp_path):
    params = small(finetune_params, tmp_path, method="relearn_dpo")
    catalog = catalog_for(params, tmp_path, target=MustNotLoad())
    with pytest.raises(Exception, match=r"unknown unlearning method 'relearn_dpo'.*npo_klr.*relearn_klr_gdr"):
        SequentialRunner().run(create_pipeline(), catalog)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_name_is_a_valid_params_override(finetune_params, method):
    runtime = parse_params(f"finetune.method={method}")
    config = finetune_config({**finetune_params, **runtime["finetune"]}, seed=42)
    assert config.method == method
    assert config.lora.r == 32 and config.lora.alpha == 32 and config.lora.dropout == 0.05
    assert config.weights.npo_beta == 0.1


def test_defaults_and_catalog_entries(finetune_params, project_root):
    assert finetune_config(finetune_params).method == "relearn_klr_gdr"
    assert set(finetune_params["weights"]) - {"default"} <= set(METHODS)
    catalog = yaml.safe_load((project_root / "conf/base/catalog_finetune.yml").read_text())
    assert set(catalog) == {"unlearned_adapter", "finetune_history", "finetune_summary", "finetune_metrics"}
    for name, entry in catalog.items():
        assert entry["metadata"]["kedro-viz"]["layer"], name
    # under the environment's data root (tests/test_conf_envs.py checks what it resolves to)
    assert catalog["unlearned_adapter"]["path"] == "${globals:data_root}/06_models/unlearned_adapter"


def test_unknown_settings_are_named():
    with pytest.raises(ValueError, match=r"parameters_finetune\.yml: finetune\.epoch: unknown key"):
        finetune_config({"method": "ga", "epoch": 3})
    with pytest.raises(ValueError, match=r"parameters_finetune\.yml: finetune\.weights\.ga\.forgett: unknown key"):
        finetune_config({"method": "ga", "weights": {"ga": {"forgett": 1.0}}})


def test_bad_values_fail_before_training_as_the_parameter_check_says():
    """finetune_config applies params.FinetuneParams, the one definition of the block's bounds."""
    with pytest.raises(ValueError, match=r"finetune\.learning_rate: Input should be greater than 0"):
        finetune_config({"method": "ga", "learning_rate": -1.0})
    with pytest.raises(ValueError, match=r"finetune\.bf16: "):
        finetune_config({"method": "ga", "bf16": "maybe"})


def test_the_chosen_method_gets_its_weights_and_the_run_seed():
    weights = {"default": {"forget": 0.5}, "ga": {"forget": 2.0, "kl": 0.0}}
    ga = finetune_config({"method": "ga", "weights": weights, "npo_beta": 0.2}, seed=7)
    assert (ga.weights.forget, ga.weights.retain, ga.weights.kl, ga.weights.npo_beta) == (2.0, 1.0, 0.0, 0.2)
    assert ga.seed == 7
    npo = finetune_config({"method": "npo", "weights": weights, "seed": 3}, seed=7)
    assert (npo.weights.forget, npo.weights.retain) == (0.5, 1.0) and npo.seed == 3


def test_metrics_are_mlflow_histories():
    history = pd.DataFrame({"step": [1, 2], "epoch": [0.5, 1.0], "loss": [2.0, 1.5], "kl": [float("nan"), 0.1]})
    metrics = finetune_metrics(history, {"train_time_s": 3.0, "steps": 2})
    assert metrics["loss"] == [{"step": 1, "value": 2.0}, {"step": 2, "value": 1.5}]
    assert metrics["kl"] == [{"step": 2, "value": 0.1}]
    assert metrics["train_time_s"] == {"step": 0, "value": 3.0}
    assert "epoch" not in metrics and "step" not in metrics


def test_adapter_refuses_a_model_of_another_shape(finetune_params, tmp_path):
    catalog = catalog_for(small(finetune_params, tmp_path, method="relearn", max_steps=1), tmp_path)
    SequentialRunner().run(create_pipeline(), catalog)
    wider = build_tiny_model(0, hidden_size=96)
    with pytest.raises(ValueError, match=r"does not fit 'tiny:0' \(hidden_size: adapter 64 vs model 96"):
        apply_adapter(wider, catalog.load("unlearned_adapter"))


def test_loading_a_missing_adapter_says_what_to_run(tmp_path):
    with pytest.raises(Exception, match="run `kedro run --pipeline finetune` first"):
        PeftAdapterDataset(str(tmp_path / "nothing")).load()


def test_launcher_stage_runs_from_a_catalog(finetune_params, tmp_path):
    catalog = catalog_for(small(finetune_params, tmp_path, method="ga_gdr", max_steps=2), tmp_path)
    summary = run_finetune_stage(catalog)
    assert summary["method"] == "ga_gdr" and summary["world_size"] == 1
    assert catalog.load("finetune_summary") == summary
    assert catalog.load("unlearned_adapter").metadata["method"] == "ga_gdr"
