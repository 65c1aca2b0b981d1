"""Verify nodes: check and regenerate candidates, assemble the training set, write the report."""

from __future__ import annotations

from typing import Any

import pandas as pd

from relearn_pipeline.llm import LLMCredentials, build_backend, load_prompt_templates
from relearn_pipeline.pipelines.augment.nodes import RAW_COLUMNS, _variants, spans_by_record
from relearn_pipeline.pipelines.augment.variants import required_prompts
from relearn_pipeline.pipelines.verify.assemble import (
    check_no_original_answers,
    completion_records,
    general_records,
)
from relearn_pipeline.pipelines.verify.report import build_report, render_markdown
from relearn_pipeline.pipelines.verify.verification import build_items, candidate_log, verify_all

GENERAL_SOURCES = ("retain", "none")


def verify_candidates(
    augmented_raw: pd.DataFrame,
    forget_set: pd.DataFrame,
    sensitive_spans: pd.DataFrame,
    prompt_files: dict[str, Any],
    augment_params: dict[str, Any],
    verify_params: dict[str, Any],
    credentials: LLMCredentials | None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """One verified (or fallback) answer per question variant, the candidate log, and LLM usage."""
    templates = load_prompt_templates(prompt_files, required_prompts(_variants(augment_params)))
    items, candidates = build_items(
        augmented_raw, forget_set, spans_by_record(sensitive_spans), verify_params.get("leak", {})
    )
    judge_llm = verify_params.get("judge", {}).get("llm") or augment_params["llm"]
    rows, all_candidates, dropped, calls = verify_all(
        items, candidates, templates, augment_params, verify_params,
        make_backend=lambda: build_backend(judge_llm, credentials),
    )
    usage = {
        "llm_calls": calls or {"requests": 0, "cache_hits": 0, "backend_calls": 0, "by_purpose": {}},
        "dropped_items": [{"source_id": i.source_id, "variant": i.variant, "reason": i.dropped or "no verified answer"} for i in dropped],
        "items": len(items),
    }
    return pd.DataFrame(rows, columns=RAW_COLUMNS), candidate_log(all_candidates), usage


def assemble_training_set(
    verified_qa: pd.DataFrame,
    forget_set: pd.DataFrame,
    retain_set: pd.DataFrame,
    params: dict[str, Any],
) -> pd.DataFrame:
    """QA pairs + sentence completions + general QA (``general.ratio`` x the augmented size)."""
    seed = int(params.get("seed", 0))
    completions = completion_records(verified_qa, params.get("completion", {}), seed)
    general = params.get("general", {})
    source = general.get("source", "retain")
    if source not in GENERAL_SOURCES:
        raise ValueError(f"verify.general.source is {source!r}; use one of {', '.join(GENERAL_SOURCES)}")
    augmented_size = len(verified_qa) + len(completions)
    count = round(float(general.get("ratio", 1.0)) * augmented_size) if source == "retain" else 0
    mixed = general_records(retain_set, count, seed)
    parts = [p for p in (verified_qa, completions, mixed) if not p.empty]
    training = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=RAW_COLUMNS)
    training = training[RAW_COLUMNS].astype(
        {"id": str, "source_id": str, "subject": str, "kind": str, "variant": str, "question": str,
         "answer": str, "round": int, "backend": str, "model": str, "fallback": bool}
    )
    check_no_original_answers(training, forget_set)
    return training


def build_verification_report(
    verification_log: pd.DataFrame,
    augmented_forget_set: pd.DataFrame,
    augment_llm_usage: dict[str, Any],
    verify_usage: dict[str, Any],
    params: dict[str, Any],
) -> dict[str, Any]:
    """Counts per check, per variant type and per round; pass rates; failure examples; LLM cost."""
    return build_report(verification_log, augmented_forget_set, augment_llm_usage, verify_usage, params)


def render_verification_report(report: dict[str, Any]) -> str:
    """The verification report as a readable Markdown page."""
    return render_markdown(report)
