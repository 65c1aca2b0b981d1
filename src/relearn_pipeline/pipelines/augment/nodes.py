"""Augment nodes: forget records -> question variants -> vague answer candidates (augmented_raw)."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import pandas as pd

from relearn_pipeline.llm import LLMCredentials, build_backend, load_prompt_templates, sampling_from_params
from relearn_pipeline.pipelines.augment.variants import (
    ANSWER_PROMPT,
    QUESTION_VARIANTS,
    answer_request,
    clean_question,
    question_problem,
    question_prompt_name,
    question_request,
    required_prompts,
    round_seed,
)
from relearn_pipeline.text.normalize import protected_spans

logger = logging.getLogger(__name__)

RAW_COLUMNS = [
    "id", "source_id", "subject", "kind", "variant", "question", "answer",
    "round", "backend", "model", "fallback",
]
QUESTION_COLUMNS = ["source_id", "subject", "variant", "question", "round"]


def _variants(params: dict[str, Any]) -> list[str]:
    variants = list(params.get("variants") or QUESTION_VARIANTS)
    unknown = [v for v in variants if v not in QUESTION_VARIANTS]
    if unknown:
        raise ValueError(
            f"augment.variants: unknown {unknown}; choose from {', '.join(QUESTION_VARIANTS)}"
        )
    return variants


def _records(forget_set: pd.DataFrame, params: dict[str, Any]) -> list[dict[str, Any]]:
    missing = {"id", "subject", "question", "answer"} - set(forget_set.columns)
    if missing:
        raise ValueError(f"forget_set lacks columns {sorted(missing)}; run the ingest pipeline first")
    limit = params.get("max_records")
    frame = forget_set if limit is None else forget_set.head(int(limit))
    return frame[["id", "subject", "question", "answer"]].astype(str).to_dict("records")


def spans_by_record(sensitive_spans: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """The sensitive_spans table grouped by record id."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for span in sensitive_spans.to_dict("records"):
        grouped.setdefault(str(span["record_id"]), []).append(span)
    return grouped


def generate_question_variants(
    forget_set: pd.DataFrame,
    prompt_files: dict[str, Any],
    params: dict[str, Any],
    credentials: LLMCredentials | None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Four question variants per forget record (plus the original), and the LLM calls spent.

    Each variant keeps the first candidate that is a question naming the subject and differing
    from the others; a variant without one after ``question.rounds`` rounds is left out (counted).
    """
    variants = _variants(params)
    templates = load_prompt_templates(prompt_files, required_prompts(variants))
    records = _records(forget_set, params)
    backend = build_backend(params["llm"], credentials)
    options = params["question"]
    rows = [
        {"source_id": r["id"], "subject": r["subject"], "variant": "original", "question": r["question"], "round": 0}
        for r in records
    ]
    chosen: dict[str, list[str]] = {r["id"]: [] for r in records}
    pending = [(r, v) for r in records for v in variants]
    rejected: Counter = Counter()
    for round_index in range(int(options.get("rounds", 1))):
        if not pending:
            break
        sampling = sampling_from_params(options["sampling"], round_seed(params["seed"], round_index, "question"))
        requests = [
            question_request(templates[question_prompt_name(v)], r["subject"], r["question"], sampling, int(options["candidates"]))
            for r, v in pending
        ]
        replies = backend.generate(requests, purpose="question_variant")
        still = []
        for (record, variant), candidates, request in zip(pending, replies, requests):
            instructions = request.messages[-1][1]
            for raw in candidates:
                question = clean_question(raw)
                problem = question_problem(question, record["question"], record["subject"], instructions, chosen[record["id"]])
                if problem is None:
                    chosen[record["id"]].append(question)
                    rows.append({"source_id": record["id"], "subject": record["subject"], "variant": variant, "question": question, "round": round_index})
                    break
                rejected[problem] += 1
            else:
                still.append((record, variant))
        pending = still
    for record, variant in pending:
        logger.warning("augment: no usable %s question variant for record %s", variant, record["id"])
    order = {v: i for i, v in enumerate(["original", *variants])}
    frame = pd.DataFrame(rows, columns=QUESTION_COLUMNS)
    frame = frame.assign(_o=frame["variant"].map(order)).sort_values(["source_id", "_o"], kind="stable").drop(columns="_o")
    usage = {
        "llm_calls": backend.counts.as_dict(),
        "question_variants": {
            "accepted": {v: int((frame["variant"] == v).sum()) for v in variants},
            "missing": [{"source_id": r["id"], "variant": v} for r, v in pending],
            "rejected_candidates": dict(rejected),
        },
    }
    return frame.reset_index(drop=True), usage


def generate_answer_candidates(
    question_variants: pd.DataFrame,
    forget_set: pd.DataFrame,
    sensitive_spans: pd.DataFrame,
    prompt_files: dict[str, Any],
    params: dict[str, Any],
    credentials: LLMCredentials | None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``answer.candidates`` vague answers for the original question and each variant (round 0)."""
    templates = load_prompt_templates(prompt_files, required_prompts(_variants(params)))
    records = {r["id"]: r for r in _records(forget_set, {})}
    spans = spans_by_record(sensitive_spans)
    backend = build_backend(params["llm"], credentials)
    options = params["answer"]
    sampling = sampling_from_params(options["sampling"], round_seed(params["seed"], 0, "answer"))
    items = question_variants.to_dict("records")
    requests = []
    for item in items:
        record = records.get(item["source_id"])
        if record is None:
            raise ValueError(f"question_variants row for {item['source_id']!r} has no forget_set record")
        details = [s["text"] for s in protected_spans(spans.get(record["id"], []), record["subject"], record["question"])]
        requests.append(answer_request(templates[ANSWER_PROMPT], record, item["question"], details, sampling, int(options["candidates"])))
    replies = backend.generate(requests, purpose="answer_variant")
    rows = [
        {
            "id": f"{item['source_id']}/{item['variant']}/r0/c{k}",
            "source_id": item["source_id"],
            "subject": item["subject"],
            "kind": "qa",
            "variant": item["variant"],
            "question": item["question"],
            "answer": text,
            "round": 0,
            "backend": backend.name,
            "model": backend.model,
            "fallback": False,
        }
        for item, candidates in zip(items, replies)
        for k, text in enumerate(candidates)
    ]
    return pd.DataFrame(rows, columns=RAW_COLUMNS), {"llm_calls": backend.counts.as_dict()}


def summarize_augment_usage(question_usage: dict[str, Any], answer_usage: dict[str, Any]) -> dict[str, Any]:
    """LLM calls of the augment stage (for the verification report's cost figures)."""
    calls = {}
    for key in ("requests", "cache_hits", "backend_calls"):
        calls[key] = question_usage["llm_calls"][key] + answer_usage["llm_calls"][key]
    calls["by_purpose"] = {**question_usage["llm_calls"]["by_purpose"], **answer_usage["llm_calls"]["by_purpose"]}
    return {"llm_calls": calls, "question_variants": question_usage["question_variants"]}
