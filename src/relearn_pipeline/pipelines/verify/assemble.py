"""The training set: verified QA pairs, sentence completions from them, general QA mixed in."""

from __future__ import annotations

import random
from typing import Any

import pandas as pd

from relearn_pipeline.pipelines.augment.nodes import RAW_COLUMNS


def completion_records(verified_qa: pd.DataFrame, params: dict[str, Any], seed: int) -> pd.DataFrame:
    """Sentence completions: prompt = the first ``prompt_fraction`` of a verified answer's words,
    target = the rest; ``ratio`` x the eligible answers (at most one per answer)."""
    fraction = float(params.get("prompt_fraction", 0.25))
    min_words = int(params.get("min_words", 6))
    eligible = verified_qa[verified_qa["kind"] == "qa"]
    if not params.get("include_fallback", False):
        eligible = eligible[~eligible["fallback"].astype(bool)]
    eligible = eligible[eligible["answer"].str.split().str.len() >= min_words]
    count = min(len(eligible), round(float(params.get("ratio", 1.0)) * len(eligible)))
    positions = sorted(random.Random(seed).sample(range(len(eligible)), count))
    rows = []
    for row in eligible.iloc[positions].to_dict("records"):
        tokens = row["answer"].split()
        cut = min(max(1, round(fraction * len(tokens))), len(tokens) - 1)
        rows.append({
            **row,
            "id": f"{row['id']}/completion",
            "kind": "completion",
            "variant": "completion",
            "question": " ".join(tokens[:cut]),
            "answer": " ".join(tokens[cut:]),
        })
    return pd.DataFrame(rows, columns=RAW_COLUMNS)


def general_records(pool: pd.DataFrame, count: int, seed: int) -> pd.DataFrame:
    """``count`` general QA rows from ``pool`` (shuffled with ``seed``; cycled if too small)."""
    if count <= 0:
        return pd.DataFrame(columns=RAW_COLUMNS)
    if pool.empty:
        raise ValueError("verify.general: the general QA source is empty; set verify.general.ratio: 0 or give QA")
    records = pool[["id", "subject", "question", "answer"]].astype(str).to_dict("records")
    random.Random(seed).shuffle(records)
    rows = []
    for k in range(count):
        record = records[k % len(records)]
        repeat = k // len(records)
        rows.append({
            "id": f"general/{record['id']}" + (f"#{repeat}" if repeat else ""),
            "source_id": record["id"], "subject": record["subject"], "kind": "general",
            "variant": "general", "question": record["question"], "answer": record["answer"],
            "round": 0, "backend": "", "model": "", "fallback": False,
        })
    return pd.DataFrame(rows, columns=RAW_COLUMNS)


def check_no_original_answers(training: pd.DataFrame, forget_set: pd.DataFrame) -> None:
    """Refuse a training set holding a forget record's original (sensitive) answer."""
    originals = {str(a).strip().lower() for a in forget_set["answer"]}
    bad = training[(training["kind"] != "general") & training["answer"].str.strip().str.lower().isin(originals)]
    if not bad.empty:
        raise ValueError(
            f"augmented_forget_set rows {bad['id'].tolist()[:5]} hold an original forget answer; "
            "this is a bug in verify: report it with the verification_log"
        )
