"""HFModelDataset / ModelFingerprintDataset: round trip, fingerprint skip, atomic writes."""

from __future__ import annotations

import json

import pytest
import torch
from kedro.io import DatasetError

from relearn_pipeline.datasets import HFModelDataset, ModelFingerprintDataset
from relearn_pipeline.datasets.hf_model import FINGERPRINT_FILE, FINGERPRINT_KEY
from relearn_pipeline.models import build_tiny_model

IDS = torch.tensor([[5, 6, 7, 8, 9]])


def _logits(bundle) -> torch.Tensor:
    with torch.no_grad():
        return bundle.model(IDS.to(bundle.device)).logits.cpu()


def _fingerprinted(seed: int, fingerprint: str):
    bundle = build_tiny_model(seed=seed)
    bundle.metadata[FINGERPRINT_KEY] = {"fingerprint": fingerprint, "training": {"steps": seed}}
    return bundle


def _crash(*args, **kwargs):
    raise OSError("disk full")


def test_round_trip_gives_the_same_logits_and_tokenizer(tmp_path):
    bundle = _fingerprinted(seed=1, fingerprint="abc")
    dataset = HFModelDataset(str(tmp_path / "model"), load_args={"device": "cpu"})
    assert not dataset.exists()
    dataset.save(bundle)
    assert dataset.exists()
    assert (tmp_path / "model" / "model.safetensors").is_file()
    loaded = dataset.load()
    assert torch.allclose(_logits(loaded), _logits(bundle), atol=1e-6)
    text = "Zoë's email is zoe@example.org"
    assert loaded.tokenizer(text)["input_ids"] == bundle.tokenizer(text)["input_ids"]
    assert loaded.metadata[FINGERPRINT_KEY]["fingerprint"] == "abc"
    assert loaded.metadata[FINGERPRINT_KEY]["training"] == {"steps": 1}


def test_same_fingerprint_is_not_rewritten_but_a_new_one_is(tmp_path):
    target = tmp_path / "model"
    dataset = HFModelDataset(str(target), load_args={"device": "cpu"})
    dataset.save(_fingerprinted(seed=1, fingerprint="same"))
    first_mtime = (target / "model.safetensors").stat().st_mtime_ns

    dataset.save(_fingerprinted(seed=2, fingerprint="same"))  # different weights, same fingerprint
    assert (target / "model.safetensors").stat().st_mtime_ns == first_mtime
    assert torch.allclose(_logits(dataset.load()), _logits(build_tiny_model(seed=1)), atol=1e-6)

    dataset.save(_fingerprinted(seed=2, fingerprint="other"))
    assert torch.allclose(_logits(dataset.load()), _logits(build_tiny_model(seed=2)), atol=1e-6)
    assert json.loads((target / FINGERPRINT_FILE).read_text())["fingerprint"] == "other"


def test_failure_mid_save_leaves_no_directory_that_loads_as_complete(tmp_path, monkeypatch):
    target = tmp_path / "model"
    dataset = HFModelDataset(str(target), load_args={"device": "cpu"})
    bundle = _fingerprinted(seed=1, fingerprint="new")

    monkeypatch.setattr(bundle.tokenizer, "save_pretrained", _crash)  # weights written, then a crash
    with pytest.raises(DatasetError, match="disk full"):
        dataset.save(bundle)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []  # no staging directory left behind
    assert ModelFingerprintDataset(str(target)).load() is None
    with pytest.raises(DatasetError, match="not a complete model directory"):
        dataset.load()


def test_failure_mid_save_keeps_the_previous_model_intact(tmp_path, monkeypatch):
    target = tmp_path / "model"
    dataset = HFModelDataset(str(target), load_args={"device": "cpu"})
    dataset.save(_fingerprinted(seed=1, fingerprint="old"))
    replacement = _fingerprinted(seed=2, fingerprint="new")
    monkeypatch.setattr(replacement.tokenizer, "save_pretrained", _crash)
    with pytest.raises(DatasetError, match="disk full"):
        dataset.save(replacement)
    assert ModelFingerprintDataset(str(target)).load().fingerprint == "old"
    assert torch.allclose(_logits(dataset.load()), _logits(build_tiny_model(seed=1)), atol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_directory_without_fingerprint_is_not_complete(tmp_path):
    bundle = build_tiny_model(seed=0)
    bundle.model.save_pretrained(tmp_path / "plain")
    bundle.tokenizer.save_pretrained(tmp_path / "plain")
    assert not HFModelDataset(str(tmp_path / "plain")).exists()
    assert ModelFingerprintDataset(str(tmp_path / "plain")).load() is None


def test_fingerprint_dataset_loads_the_record_and_the_model_lazily(tmp_path):
    HFModelDataset(str(tmp_path / "model")).save(_fingerprinted(seed=3, fingerprint="f3"))
    cached = ModelFingerprintDataset(str(tmp_path / "model"), load_args={"device": "cpu"}).load()
    assert cached.fingerprint == "f3"
    assert cached.record["training"] == {"steps": 3}
    assert torch.allclose(_logits(cached.load()), _logits(build_tiny_model(seed=3)), atol=1e-6)
    with pytest.raises(DatasetError, match="read-only"):
        ModelFingerprintDataset(str(tmp_path / "model")).save({"fingerprint": "x"})


def test_bad_inputs_name_what_failed(tmp_path):
    with pytest.raises(DatasetError, match=r"HFModelDataset\(.*\): unknown load_args \['torch_dtype'\]"):
        HFModelDataset(str(tmp_path / "m"), load_args={"torch_dtype": "float32"})
    with pytest.raises(DatasetError, match=r"ModelFingerprintDataset\(.*\): unknown load_args"):
        ModelFingerprintDataset(str(tmp_path / "m"), load_args={"torch_dtype": "float32"})
    with pytest.raises(DatasetError, match="saves a models.ModelBundle"):
        HFModelDataset(str(tmp_path / "m")).save({"not": "a bundle"})


def test_catalog_config_round_trips_the_constructor_arguments(tmp_path):
    """Both datasets on one directory serialise back to the arguments they were built with."""
    from kedro.io import DataCatalog

    path = str(tmp_path / "m")
    catalog = DataCatalog(datasets={
        "model": HFModelDataset(path, load_args={"device": "cpu"}),
        "cache": ModelFingerprintDataset(path, load_args={"dtype": "bfloat16"}),
    })
    config = catalog.to_config()[0]
    assert {k: v for k, v in config["model"].items() if k != "type"} == {"filepath": path, "load_args": {"device": "cpu"}}
    assert {k: v for k, v in config["cache"].items() if k != "type"} == {"filepath": path, "load_args": {"dtype": "bfloat16"}}
