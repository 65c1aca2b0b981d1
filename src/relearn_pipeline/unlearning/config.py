"""The finetune stage's settings, read from ``params:finetune`` and checked before any training."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from relearn_pipeline.unlearning.losses import METHODS, LossWeights, Method, get_method


@dataclass(frozen=True)
class LoraSettings:
    r: int = 32
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | tuple[str, ...] = "all-linear"


@dataclass(frozen=True)
class FinetuneConfig:
    """Everything one unlearning fine-tune needs besides the model and the data."""

    method: str = "relearn_klr_gdr"
    weights: LossWeights = field(default_factory=LossWeights)
    lora: LoraSettings = field(default_factory=LoraSettings)
    learning_rate: float = 1e-4
    optimizer: str = "adamw_torch"  # any transformers `optim` name (adamw_torch, sgd, adafactor, ...)
    epochs: float = 2.0
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = 4  # per process
    gradient_accumulation_steps: int = 1
    max_length: int = 512  # truncation limit only; batches are padded to their own longest row
    warmup_steps: float = 0.0  # int: steps, float in [0, 1): share of all steps
    weight_decay: float = 0.0
    lr_scheduler: str = "linear"
    max_grad_norm: float = 1.0
    seed: int = 42
    logging_steps: int = 1
    save_steps: int = 50
    save_total_limit: int = 2
    checkpoint_dir: str = "data/06_models/finetune_checkpoints"
    resume: bool = True
    keep_checkpoints: bool = False
    gradient_checkpointing: bool = False
    bf16: str | bool = "auto"  # auto: bf16 on GPUs that support it, fp32 elsewhere
    save_merged: bool = False
    progress_bar: bool = True

    @property
    def spec(self) -> Method:
        return get_method(self.method)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _build(cls, values: dict[str, Any], where: str):
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known keys: {', '.join(sorted(known))}")
    return cls(**values)


def finetune_config(params: dict[str, Any], seed: int | None = None) -> FinetuneConfig:
    """Build and check a ``FinetuneConfig`` from ``params:finetune``; unknown method names fail here.

    ``weights`` maps method names to their term weights; the chosen method's entry (or ``default``)
    is used. ``npo_beta`` sets NPO's beta for every method that uses it.
    """
    values = dict(params or {})
    method = get_method(values.get("method", FinetuneConfig.method)).name
    all_weights = dict(values.pop("weights", None) or {})
    npo_beta = float(values.pop("npo_beta", LossWeights.npo_beta))
    chosen = all_weights.get(method, all_weights.get("default", {})) or {}
    unknown_methods = sorted(set(all_weights) - {"default"} - set(METHODS))
    if unknown_methods:
        raise ValueError(f"finetune.weights: unknown method(s) {unknown_methods}; known: {', '.join(sorted(METHODS))}")
    weights = _build(LossWeights, {**chosen, "npo_beta": npo_beta}, f"finetune.weights.{method}")
    lora = _build(LoraSettings, dict(values.pop("lora", None) or {}), "finetune.lora")
    if isinstance(lora.target_modules, list):
        lora = dataclasses.replace(lora, target_modules=tuple(lora.target_modules))
    if seed is not None and "seed" not in values:
        values["seed"] = seed
    config = _build(FinetuneConfig, {**values, "method": method, "weights": weights, "lora": lora}, "finetune")
    _check(config)
    return config


def _check(config: FinetuneConfig) -> None:
    positive = {
        "batch_size": config.batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "max_length": config.max_length,
        "save_steps": config.save_steps,
        "logging_steps": config.logging_steps,
        "learning_rate": config.learning_rate,
    }
    for name, value in positive.items():
        if not value > 0:
            raise ValueError(f"finetune.{name} must be > 0, got {value!r}")
    if config.max_steps <= 0 and not config.epochs > 0:
        raise ValueError(f"finetune.epochs must be > 0 (or set finetune.max_steps), got {config.epochs!r}")
    if config.bf16 not in ("auto", True, False):
        raise ValueError(f"finetune.bf16 must be auto, true or false, got {config.bf16!r}")
    if config.weights.npo_beta <= 0:
        raise ValueError(f"finetune.npo_beta must be > 0, got {config.weights.npo_beta!r}")
