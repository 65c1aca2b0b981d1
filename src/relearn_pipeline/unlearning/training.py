"""One unlearning fine-tune: LoRA on the target, the chosen method's loss, checkpoints and resume.

The same function runs in a single process (the Kedro node) and in every process of a data-parallel
launch (``torchrun``/``accelerate launch``, see docs/scale_out.md): the Trainer shards the batches,
averages gradients and writes checkpoints from rank 0; callers write outputs only when
``result.is_main_process``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import resource
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import PreTrainedModel, TrainerCallback, TrainingArguments, set_seed

from relearn_pipeline.models import ModelBundle
from relearn_pipeline.models.context import check_max_length
from relearn_pipeline.params import Lora
from relearn_pipeline.unlearning.checkpoints import MarkCheckpointComplete, last_complete_checkpoint
from relearn_pipeline.unlearning.config import FinetuneConfig
from relearn_pipeline.unlearning.pairing import PairedCollator, PairedDataset, encode_records
from relearn_pipeline.unlearning.trainer import UnlearningTrainer

logger = logging.getLogger(__name__)

HISTORY_COLUMNS = ("step", "epoch", "loss", "forget", "retain", "kl", "forget_ce", "grad_norm", "learning_rate")
# Settings that do not change the trained weights, left out of the checkpoint key.
_OPERATIONAL = ("progress_bar", "keep_checkpoints", "checkpoint_dir", "resume", "save_merged", "save_total_limit")


@dataclass
class FinetuneResult:
    model: PeftModel  # the target with the trained adapter, in eval mode
    history: pd.DataFrame  # one row per logged optimizer step: total loss and each term
    summary: dict
    is_main_process: bool


def attach_lora(model: PreTrainedModel, lora: Lora) -> PeftModel:
    """Wrap ``model`` in a fresh LoRA adapter (its weights are frozen; only the adapter trains)."""
    target = lora.target_modules if isinstance(lora.target_modules, str) else list(lora.target_modules)
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=target,
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def train_unlearning(
    bundle: ModelBundle,
    augmented_forget_set: pd.DataFrame | None,
    forget_set: pd.DataFrame | None,
    retain_set: pd.DataFrame | None,
    config: FinetuneConfig,
    callbacks: list[TrainerCallback] | None = None,
) -> FinetuneResult:
    """Fine-tune a LoRA adapter on ``bundle.model`` with ``config.method``; resumes a matching run.

    The adapter is injected into ``bundle.model`` in place (PEFT's way); ``result.model`` wraps it.
    """
    method = config.spec
    tokenizer = bundle.tokenizer
    if method.forget_data == "augmented":
        forget_name, forget_records = "augmented_forget_set", augmented_forget_set
    else:
        forget_name, forget_records = "forget_set", forget_set
    if forget_records is None:
        raise ValueError(f"method {method.name!r} trains on {forget_name}, but none was given")
    context = check_max_length(config.max_length, bundle, "finetune.max_length")
    forget = encode_records(forget_records, tokenizer, config.max_length, forget_name, context)
    retain = None
    if method.uses_retain:
        if retain_set is None:
            raise ValueError(f"method {method.name!r} uses retain_set, but none was given")
        retain = encode_records(retain_set, tokenizer, config.max_length, "retain_set", context)

    output_dir = Path(config.checkpoint_dir) / run_key(config, bundle.spec, forget, retain)
    set_seed(config.seed)
    model = attach_lora(bundle.model, config.lora)
    trainer = UnlearningTrainer(
        model=model,
        args=training_arguments(config, output_dir),
        train_dataset=PairedDataset(forget, retain, seed=config.seed),
        data_collator=PairedCollator(tokenizer.pad_token_id),
        callbacks=[*(callbacks or []), MarkCheckpointComplete()],
        method=method,
        weights=config.weights,
        pad_token_id=tokenizer.pad_token_id,
    )
    checkpoint = (
        last_complete_checkpoint(output_dir, remove_incomplete=trainer.is_world_process_zero())
        if config.resume
        else None
    )
    if checkpoint:
        logger.info("Resuming %s from %s", method.name, checkpoint)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=checkpoint)
    elapsed = time.perf_counter() - started

    accelerator = trainer.accelerator
    work = torch.tensor(
        [int(trainer.trained_tokens), trainer.trained_positions, trainer.reference_positions],
        device=accelerator.device,
    )
    tokens, positions, reference_positions = (int(v) for v in accelerator.reduce(work, reduction="sum"))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process and not config.keep_checkpoints:
        shutil.rmtree(output_dir, ignore_errors=True)

    peft_model = trainer.model
    peft_model.eval()
    history = training_history(trainer.state.log_history)
    summary = {
        "method": method.name,
        "forget_data": forget_name,
        "forget_examples": len(forget),
        "retain_examples": len(retain) if retain else 0,
        "steps": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "world_size": accelerator.num_processes,
        "train_time_s": round(elapsed, 3),
        "trained_tokens": tokens,
        "tokens_per_s": round(tokens / elapsed, 2) if elapsed > 0 else None,
        "trained_positions": positions,  # padding included: what the hardware computed
        "reference_positions": reference_positions,
        **peak_memory(),
        "precision": "bf16" if trainer.args.bf16 else "fp32",
        "trainable_parameters": sum(p.numel() for p in peft_model.parameters() if p.requires_grad),
        "resumed_from": checkpoint,
        "final": history.iloc[-1].dropna().to_dict() if not history.empty else {},
        "config": config.to_dict(),
        "base_model": bundle.spec,
    }
    return FinetuneResult(peft_model, history, summary, accelerator.is_main_process)


def training_arguments(config: FinetuneConfig, output_dir: Path) -> TrainingArguments:
    """Map the stage's config onto ``TrainingArguments`` (no reporting integrations, ever)."""
    cuda = torch.cuda.is_available()
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    bf16 = (cuda and torch.cuda.is_bf16_supported()) if config.bf16 == "auto" else bool(config.bf16)
    return TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        warmup_steps=config.warmup_steps,
        weight_decay=config.weight_decay,
        lr_scheduler_type=config.lr_scheduler,
        max_grad_norm=config.max_grad_norm,
        seed=config.seed,
        data_seed=config.seed,
        logging_steps=config.logging_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        report_to="none",
        bf16=bf16,
        activation_checkpointing=config.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if config.gradient_checkpointing else None,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=cuda,
        # On CPU, accelerate only sets up multi-process training when told the run is CPU-only.
        use_cpu=distributed and not cuda,
        ddp_backend="gloo" if distributed and not cuda else None,
        ddp_find_unused_parameters=False,
        disable_tqdm=not config.progress_bar,
        optim=config.optimizer,
    )


def run_key(config: FinetuneConfig, base_model: str, forget: list, retain: list | None) -> str:
    """A name for the checkpoint folder that changes with anything that changes the trained weights."""
    settings = {k: v for k, v in config.to_dict().items() if k not in _OPERATIONAL}
    payload = {
        "settings": settings,
        "base_model": base_model,
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "forget": [f["input_ids"] for f in forget],
        "retain": [f["input_ids"] for f in retain] if retain else None,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{config.method}-{digest}"


def training_history(log_history: list[dict]) -> pd.DataFrame:
    """The Trainer's per-step logs as a table: step, epoch, loss, each term, grad norm, learning rate."""
    rows = [entry for entry in log_history if "loss" in entry]
    frame = pd.DataFrame(rows)
    columns = [c for c in HISTORY_COLUMNS if c in frame.columns] if rows else list(HISTORY_COLUMNS)
    return frame.reindex(columns=columns).reset_index(drop=True)


def peak_memory() -> dict:
    """Peak accelerator memory of this process (CUDA allocator), or its peak resident memory on CPU."""
    if torch.cuda.is_available():
        peak = torch.cuda.max_memory_allocated() / 2**20
        return {"peak_memory_mb": round(peak, 1), "memory_kind": "cuda_max_allocated"}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return {"peak_memory_mb": round(rss * scale / 2**20, 1), "memory_kind": "cpu_max_rss"}
