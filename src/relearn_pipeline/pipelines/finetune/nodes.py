"""Nodes of the finetune stage: thin wrappers around ``relearn_pipeline.unlearning``."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from relearn_pipeline.datasets.hf_model import FINGERPRINT_KEY
from relearn_pipeline.datasets.peft_adapter import UnlearnedAdapter
from relearn_pipeline.models import ModelBundle
from relearn_pipeline.unlearning.config import FinetuneConfig, finetune_config
from relearn_pipeline.unlearning.training import train_unlearning

logger = logging.getLogger(__name__)

# Figures of the summary that are also logged to MLflow as finetune.<name>.
SUMMARY_METRICS = ("steps", "train_time_s", "trained_tokens", "tokens_per_s", "peak_memory_mb")


def check_finetune_params(finetune: dict[str, Any], seed: int) -> FinetuneConfig:
    """Validate ``params:finetune`` (an unknown method fails here, before anything is trained)."""
    config = finetune_config(finetune, seed=seed)
    logger.info("Unlearning method %s, weights %s", config.method, config.weights)
    return config


def finetune_adapter(
    target_model: ModelBundle,
    augmented_forget_set: pd.DataFrame,
    forget_set: pd.DataFrame,
    retain_set: pd.DataFrame,
    config: FinetuneConfig,
) -> tuple[UnlearnedAdapter, pd.DataFrame, dict[str, Any]]:
    """Train a LoRA adapter on the target with the configured method; return it with its history."""
    result = train_unlearning(target_model, augmented_forget_set, forget_set, retain_set, config)
    fingerprint = (target_model.metadata.get(FINGERPRINT_KEY) or {}).get("fingerprint")
    adapter = UnlearnedAdapter(
        model=result.model,
        tokenizer=target_model.tokenizer,
        metadata={
            "method": config.method,
            "base_model": target_model.spec,
            "base_fingerprint": fingerprint,
            "summary": {k: v for k, v in result.summary.items() if k != "config"},
        },
        save_merged=config.save_merged,
    )
    return adapter, result.history, result.summary


def finetune_metrics(history: pd.DataFrame, summary: dict[str, Any]) -> dict[str, Any]:
    """Per-step loss and terms as MLflow metric histories, plus the run's summary figures."""
    metrics: dict[str, Any] = {}
    for column in history.columns:
        if column in ("step", "epoch"):
            continue
        points = [
            {"step": int(step), "value": float(value)}
            for step, value in zip(history["step"], history[column])
            if pd.notna(value)
        ]
        if points:
            metrics[column] = points
    for name in SUMMARY_METRICS:
        if summary.get(name) is not None:
            metrics[name] = {"step": 0, "value": float(summary[name])}
    return metrics
