import pytest
import torch

from relearn_pipeline.models import ModelSpecError, build_tiny_model, load_model, pick_device
from relearn_pipeline.models.loading import embedded_model_dir


def test_tiny_model_is_seeded_and_small():
    first, second = build_tiny_model(seed=3), build_tiny_model(seed=3)
    for a, b in zip(first.model.parameters(), second.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert sum(p.numel() for p in first.model.parameters()) < 500_000
    other = build_tiny_model(seed=4)
    assert not torch.equal(next(first.model.parameters()), next(other.model.parameters()))


def test_tiny_tokenizer_round_trips_unicode_and_chat_format(tiny_bundle):
    tok = tiny_bundle.tokenizer
    text = "Zoë lives at 12 Rue d'Été — ok?"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    prompt = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert prompt == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_tiny_spec_loads_through_load_model():
    bundle = load_model("tiny:7", device="cpu")
    assert bundle.spec == "tiny:7"
    assert bundle.device.type == "cpu"


def test_local_directory_spec_round_trips(tmp_path, tiny_bundle):
    tiny_bundle.model.save_pretrained(tmp_path)
    tiny_bundle.tokenizer.save_pretrained(tmp_path)
    loaded = load_model(str(tmp_path), device="cpu")
    ids = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        assert torch.allclose(loaded.model(ids).logits, tiny_bundle.model(ids).logits)


def test_offline_hub_id_fails_at_once_naming_the_spec(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelSpecError, match="'someorg/some-model-that-is-not-cached'"):
        load_model("someorg/some-model-that-is-not-cached")


@pytest.mark.parametrize("spec", ["", "not a spec at all", "tiny:abc", "embedded:gpt-99"])
def test_bad_specs_are_rejected_with_the_spec_named(spec):
    with pytest.raises(ModelSpecError) as error:
        load_model(spec)
    assert repr(spec.strip()) in str(error.value) or "non-empty" in str(error.value)


def test_unknown_dtype_is_rejected():
    with pytest.raises(ModelSpecError, match="dtype"):
        load_model("tiny:0", dtype="float8")


def test_auto_device_on_a_cpu_machine_is_cpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present; auto picks cuda")
    assert pick_device("auto").type in {"cpu", "mps"}


@pytest.mark.slow
def test_embedded_model_converts_once_then_loads_from_cache(tmp_path):
    directory = embedded_model_dir("embedded:smollm2-135m-instruct", cache_dir=tmp_path)
    assert (directory / "model.safetensors").is_file()
    mtime = (directory / "model.safetensors").stat().st_mtime
    again = embedded_model_dir("embedded:smollm2-135m-instruct", cache_dir=tmp_path)
    assert again == directory and (directory / "model.safetensors").stat().st_mtime == mtime
    bundle = load_model("embedded:smollm2-135m-instruct", cache_dir=tmp_path, device="cpu")
    assert bundle.model.config.model_type == "llama"
    assert bundle.tokenizer.pad_token is not None
