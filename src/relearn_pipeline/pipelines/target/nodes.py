"""The target model: the model to unlearn from, either the base model as is or the base model after
it has memorized the `full` split (the paper's "vanilla" model), cached by a fingerprint.

A fingerprint of (base model, full_set content, training settings) identifies a target; when the
model directory already holds that fingerprint, the stored model is loaded instead of trained again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
from rouge_score import rouge_scorer
from transformers import ProgressCallback, Trainer, TrainingArguments, set_seed

from relearn_pipeline.datasets.hf_model import FINGERPRINT_KEY, CachedModel
from relearn_pipeline.generation import generate_texts
from relearn_pipeline.models import ModelBundle, load_model
from relearn_pipeline.models.context import check_max_length
from relearn_pipeline.prompting import question_prompt
from relearn_pipeline.unlearning.collation import QACollator
from relearn_pipeline.unlearning.pairing import encode_records

logger = logging.getLogger(__name__)

# Bump when the meaning of a stored target changes (e.g. a new prompt format), so old caches retrain.
FINGERPRINT_VERSION = 1
MODES = ("as_is", "memorize")
ADAPTERS = ("lora", "full")
QA_COLUMNS = ("id", "subject", "question", "answer")


def fingerprint_target(
    full_set: pd.DataFrame, base_model: str, model_loading: dict[str, Any], target: dict[str, Any]
) -> dict[str, Any]:
    """Identify the target by a hash of base model, full_set content, training and evaluation settings."""
    mode = _check_mode(target)
    _check_full_set(full_set)
    inputs: dict[str, Any] = {
        "version": FINGERPRINT_VERSION,
        "mode": mode,
        "base_model": base_model,
        "base_model_files": _local_model_identity(base_model),
        "dtype": model_loading.get("dtype", "float32"),
        "full_set_sha256": frame_sha256(full_set),
        "full_set_rows": len(full_set),
        "evaluation": target["evaluation"],
    }
    if mode == "memorize":
        inputs["training"] = target["training"]
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode("utf-8")).hexdigest()
    return {"fingerprint": digest, "inputs": inputs}


def make_target_model(
    full_set: pd.DataFrame,
    base_model: str,
    model_loading: dict[str, Any],
    target: dict[str, Any],
    fingerprint: dict[str, Any],
    cached: CachedModel | None,
) -> tuple[ModelBundle, dict[str, Any]]:
    """Reuse the cached target when its fingerprint matches; otherwise build and evaluate it.

    Building: answer the full questions with the base model, memorize them (or keep the base as
    is), answer again. The figures are stored with the model, so a rerun reuses them too.
    """
    if cached is not None and cached.fingerprint == fingerprint["fingerprint"]:
        logger.info("Reusing the cached target in %s (fingerprint %s)", cached.path, cached.fingerprint[:12])
        started = time.perf_counter()
        bundle = cached.load()
        outcome = {key: cached.record[key] for key in ("training", "evaluation")}
        return bundle, {**outcome, "reused": True, "load_time_s": round(time.perf_counter() - started, 2)}
    if cached is not None:
        logger.info("The target in %s has another fingerprint; building a new one", cached.path)
    bundle = load_model(base_model, **model_loading)
    evaluation = target["evaluation"]
    base_eval = answer_recall(bundle, full_set, evaluation, label="base")
    if _check_mode(target) == "as_is":
        training: dict[str, Any] = {
            "mode": "as_is", "steps": 0, "train_time_s": 0.0, "final_loss": None, "loss_history": []
        }
        target_eval = {**base_eval, "model": "target"}
    else:
        training = {"mode": "memorize", **memorize(bundle, full_set, target["training"])}
        target_eval = answer_recall(bundle, full_set, evaluation, label="target")
    outcome = {"training": training, "evaluation": {"base": base_eval, "target": target_eval}}
    bundle.metadata[FINGERPRINT_KEY] = {**fingerprint, **outcome}
    return bundle, {**outcome, "reused": False}


def memorize(bundle: ModelBundle, full_set: pd.DataFrame, training: dict[str, Any]) -> dict[str, Any]:
    """Fine-tune ``bundle.model`` in place on the QA pairs (LoRA merged back, or full); return the figures."""
    set_seed(training["seed"])
    tokenizer = bundle.tokenizer
    context = check_max_length(training["max_length"], bundle, "target.training.max_length")
    features = encode_records(full_set, tokenizer, training["max_length"], "full_set", context)
    adapter = training.get("adapter", "lora")
    if adapter not in ADAPTERS:
        raise ValueError(f"params:target.training.adapter is {adapter!r}; use one of {', '.join(ADAPTERS)}")
    model = _with_lora(bundle.model, training["lora"]) if adapter == "lora" else bundle.model
    with tempfile.TemporaryDirectory(prefix="relearn-target-") as scratch:
        trainer = Trainer(
            model=model,
            args=_training_arguments(training, scratch, use_cpu=bundle.device.type == "cpu"),
            train_dataset=features,
            data_collator=QACollator(tokenizer.pad_token_id),
        )
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(LossProgressCallback())
        started = time.perf_counter()
        result = trainer.train()
        elapsed = time.perf_counter() - started
    bundle.model = model.merge_and_unload() if adapter == "lora" else model
    bundle.model.eval()
    losses = [float(entry["loss"]) for entry in trainer.state.log_history if "loss" in entry]
    logger.info(
        "Memorized %d QA pairs in %d steps, %.0fs (final loss %.4f)",
        len(features), result.global_step, elapsed, losses[-1] if losses else float("nan"),
    )
    return {
        "adapter": adapter,
        "examples": len(features),
        "steps": int(result.global_step),
        "train_time_s": round(elapsed, 2),
        "final_loss": losses[-1] if losses else None,
        "mean_train_loss": float(result.training_loss),
        "loss_history": losses,
    }


class LossProgressCallback(ProgressCallback):
    """Trainer's progress bar, with the latest loss shown on the bar instead of one printed line per log."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None and logs and "loss" in logs:
            self.training_bar.set_postfix(loss=f"{logs['loss']:.4f}", refresh=False)


def answer_recall(
    bundle: ModelBundle, full_set: pd.DataFrame, evaluation: dict[str, Any], label: str
) -> dict[str, Any]:
    """Greedy answers to every question, scored by ROUGE-L recall against the gold answer."""
    _check_full_set(full_set)
    questions, golds = list(full_set["question"]), list(full_set["answer"])
    prompts = [question_prompt(bundle.tokenizer, q) for q in questions]
    answers = [
        texts[0]
        for texts in generate_texts(
            bundle,
            prompts,
            max_new_tokens=evaluation["max_new_tokens"],
            batch_size=evaluation["batch_size"],
            desc=f"answering as {label}",
        )
    ]
    recalls = rouge_l_recall(answers, golds)
    ids = full_set["id"] if "id" in full_set.columns else full_set.index
    return {
        "model": label,
        "rougeL_recall_mean": sum(recalls) / len(recalls),
        "per_question": [
            {"id": str(i), "question": q, "gold": g, "generated": a, "rougeL_recall": r}
            for i, q, g, a, r in zip(ids, questions, golds, answers, recalls, strict=True)
        ],
    }


def rouge_l_recall(predictions: list[str], references: list[str]) -> list[float]:
    """ROUGE-L recall (stemmed) of each prediction against its reference."""
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    pairs = zip(predictions, references, strict=True)
    return [scorer.score(ref, pred)["rougeL"].recall for pred, ref in pairs]


def report_target(outcome: dict[str, Any], warn_below_rougeL_recall: float | None) -> dict[str, Any]:
    """The report (JSON): recalls of base and target, training figures and loss history, answers."""
    training, evaluation, reused = outcome["training"], outcome["evaluation"], bool(outcome["reused"])
    base_recall = evaluation["base"]["rougeL_recall_mean"]
    target_recall = evaluation["target"]["rougeL_recall_mean"]
    report = {
        "base_rougeL_recall_full": base_recall,
        "target_rougeL_recall_full": target_recall,
        "reused": reused,
        **training,  # mode, steps, train_time_s, final_loss, loss_history, ...
        "questions": len(evaluation["target"]["per_question"]),
        "answers": _side_by_side(evaluation["base"], evaluation["target"]),
    }
    if reused:
        report["load_time_s"] = outcome.get("load_time_s")
    logger.info(
        "Target ROUGE-L recall on the full questions: %.3f (base model before memorizing: %.3f)%s",
        target_recall,
        base_recall,
        " [reused the cached target]" if reused else "",
    )
    threshold = warn_below_rougeL_recall
    if training.get("mode") == "memorize" and threshold is not None and target_recall < threshold:
        logger.warning(
            "The memorized target reaches ROUGE-L recall %.3f < %.2f on its own training questions; "
            "raise params:target.training.epochs or learning_rate",
            target_recall,
            threshold,
        )
    return report


def target_mlflow_metrics(report: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], list[float]]:
    """MLflow metrics of target and base, and the training-loss history, read from the stored report.

    A node of its own, on the stored report only: a rerun with ``--only-missing-outputs`` logs
    these to its new MLflow run without loading or building the target again.
    """
    metrics = {
        "rougeL_recall_full": {"value": report["target_rougeL_recall_full"], "step": 0},
        "reused": {"value": float(report["reused"]), "step": 0},
        "train_time_s": {"value": float(report.get("train_time_s") or 0.0), "step": 0},
        "steps": {"value": float(report.get("steps") or 0), "step": 0},
    }
    if report.get("final_loss") is not None:
        metrics["final_loss"] = {"value": float(report["final_loss"]), "step": 0}
    base_metrics = {"rougeL_recall_full": {"value": report["base_rougeL_recall_full"], "step": 0}}
    return metrics, base_metrics, list(report.get("loss_history") or [])


def frame_sha256(frame: pd.DataFrame) -> str:
    """A content hash of the QA columns, independent of the DataFrame's index and dtypes."""
    columns = [c for c in QA_COLUMNS if c in frame.columns]
    rows = frame.loc[:, columns].astype(str).to_dict(orient="split")
    payload = json.dumps({"columns": rows["columns"], "data": rows["data"]}, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _side_by_side(base_eval: dict[str, Any], target_eval: dict[str, Any]) -> list[dict[str, Any]]:
    """Per question: gold, base answer and target answer with their recalls."""
    return [
        {
            "id": t["id"],
            "question": t["question"],
            "gold": t["gold"],
            "base_answer": b["generated"],
            "base_rougeL_recall": b["rougeL_recall"],
            "target_answer": t["generated"],
            "target_rougeL_recall": t["rougeL_recall"],
        }
        for b, t in zip(base_eval["per_question"], target_eval["per_question"], strict=True)
    ]


def _with_lora(model, lora: dict[str, Any]):
    """Wrap ``model`` with a fresh LoRA adapter described by ``params:target.training.lora``."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=lora["r"],
        lora_alpha=lora["alpha"],
        lora_dropout=lora["dropout"],
        target_modules=lora["target_modules"],
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def _training_arguments(training: dict[str, Any], output_dir: str, use_cpu: bool) -> TrainingArguments:
    """HF TrainingArguments from ``params:target.training``: no checkpoints, no external reporting."""
    return TrainingArguments(
        output_dir=output_dir,
        num_train_epochs=training["epochs"],
        per_device_train_batch_size=training["batch_size"],
        gradient_accumulation_steps=training.get("gradient_accumulation_steps", 1),
        learning_rate=training["learning_rate"],
        lr_scheduler_type=training["lr_scheduler"],
        warmup_steps=training.get("warmup", 0),
        weight_decay=training.get("weight_decay", 0.0),
        max_grad_norm=training.get("max_grad_norm", 1.0),
        seed=training["seed"],
        data_seed=training["seed"],
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=use_cpu,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=False,
    )


def _check_mode(target: dict[str, Any]) -> str:
    mode = target.get("mode")
    if mode not in MODES:
        raise ValueError(f"params:target.mode is {mode!r}; use one of {', '.join(MODES)}")
    return mode


def _check_full_set(full_set: pd.DataFrame) -> None:
    missing = [c for c in ("question", "answer") if c not in full_set.columns]
    if missing:
        raise ValueError(
            f"full_set lacks column(s) {missing}; it must have {list(QA_COLUMNS)} (see docs/architecture.md)"
        )
    if full_set.empty:
        raise ValueError("full_set is empty: the target has nothing to memorize; check the ingest inputs")


def _local_model_identity(spec: str) -> dict[str, Any] | None:
    """Sizes and mtimes of a local base model's files, so a changed directory changes the fingerprint."""
    directory = Path(spec).expanduser()
    if not directory.is_dir():
        return None
    return {
        path.name: [path.stat().st_size, int(path.stat().st_mtime)]
        for path in sorted(directory.glob("*.safetensors")) + sorted(directory.glob("*.json"))
        if path.name != "relearn_fingerprint.json"
    }
