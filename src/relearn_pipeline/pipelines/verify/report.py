"""The verification report: what passed, what failed where, examples, and what it cost in LLM calls."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from relearn_pipeline.pipelines.verify.checks import CHECK_ORDER


def _bucket(check: str, reason: str) -> str:
    """A countable form of a failure reason (numbers and quoted replies stripped)."""
    if check == "sensitive_span":
        found = sorted(set(re.findall(r"(\w+) span \((\w+)", reason)))
        return ", ".join(f"{label}/{how}" for label, how in found) or reason.split(":")[0]
    if check == "relevance":
        return "cosine below threshold"
    if check == "privacy_judge":
        return reason.split(":")[0]
    return reason.split("(")[0].strip()


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def build_report(
    log: pd.DataFrame,
    training: pd.DataFrame,
    augment_usage: dict[str, Any],
    verify_usage: dict[str, Any],
    params: dict[str, Any],
) -> dict[str, Any]:
    """The report as a JSON-ready dict (see docs in render_markdown for what each part means)."""
    qa = training[training["kind"] == "qa"]
    verified = qa[~qa["fallback"]]
    fallback = qa[qa["fallback"]]
    dropped = verify_usage.get("dropped_items", [])
    items = int(verify_usage.get("items", len(qa) + len(dropped)))
    index = {name: i for i, name in enumerate(CHECK_ORDER)}
    decided = log["check"].map(lambda c: index.get(c, -1))
    checks = []
    for name, position in index.items():
        evaluated = int((decided >= position).sum())
        failed = int(((log["status"] == "failed") & (log["check"] == name)).sum())
        checks.append({"check": name, "evaluated": evaluated, "failed": failed, "fail_rate": _rate(failed, evaluated)})
    failures = log[log["status"] == "failed"]
    reasons: dict[str, dict[str, int]] = {}
    examples: dict[str, list[dict[str, Any]]] = {}
    limit = int(params.get("report", {}).get("examples_per_check", 3))
    for name in CHECK_ORDER:
        subset = failures[failures["check"] == name]
        if subset.empty:
            continue
        reasons[name] = subset.apply(lambda r: _bucket(name, r["reason"]), axis=1).value_counts().to_dict()
        examples[name] = [
            {"candidate_id": r["candidate_id"], "variant": r["variant"], "round": int(r["round"]),
             "reason": r["reason"], "answer": r["answer_redacted"][:300]}
            for r in subset.head(limit).to_dict("records")
        ]
    per_variant = {}
    for variant in log["variant"].drop_duplicates().tolist():
        rows = log[log["variant"] == variant]
        per_variant[variant] = {
            "items": int((qa["variant"] == variant).sum()) + sum(d["variant"] == variant for d in dropped),
            "verified": int((verified["variant"] == variant).sum()),
            "fallback": int((fallback["variant"] == variant).sum()),
            "dropped": sum(d["variant"] == variant for d in dropped),
            "candidates": len(rows),
            "candidates_failed": int((rows["status"] == "failed").sum()),
        }
        per_variant[variant]["verified_yield"] = _rate(per_variant[variant]["verified"], per_variant[variant]["items"])
    per_round = {}
    for round_index, rows in log.groupby("round"):
        per_round[str(int(round_index))] = {
            "candidates": len(rows),
            "accepted": int((rows["status"] == "accepted").sum()),
            "failed": int((rows["status"] == "failed").sum()),
            "failed_by_check": rows[rows["status"] == "failed"]["check"].value_counts().to_dict(),
        }
    a_calls, v_calls = augment_usage["llm_calls"], verify_usage["llm_calls"]
    requests = a_calls["requests"] + v_calls["requests"]
    completions = int((training["kind"] == "completion").sum())
    return {
        "summary": {
            "items": items,
            "verified": len(verified),
            "fallback": len(fallback),
            "dropped": len(dropped),
            "item_pass_rate": _rate(len(verified), items),
            "candidates": len(log),
            "candidates_accepted": int((log["status"] == "accepted").sum()),
            "candidate_pass_rate": _rate(int((log["status"] == "accepted").sum()), int(log["status"].isin(["accepted", "failed"]).sum())),
        },
        "checks": checks,
        "failure_reasons": reasons,
        "failure_examples": examples,
        "per_variant": per_variant,
        "per_round": per_round,
        "dropped_items": dropped,
        "question_variants": augment_usage.get("question_variants", {}),
        "training_set": {
            "qa": len(qa), "qa_verified": len(verified), "qa_fallback": len(fallback),
            "completion": completions, "general": int((training["kind"] == "general").sum()), "total": len(training),
        },
        "llm_calls": {
            "augment": a_calls,
            "verify": v_calls,
            "requests": requests,
            "backend_calls_this_run": a_calls["backend_calls"] + v_calls["backend_calls"],
            "cache_hits_this_run": a_calls["cache_hits"] + v_calls["cache_hits"],
            "per_verified_pair": _rate(requests, len(verified)),
            "per_verified_training_record": _rate(requests, len(verified) + completions),
        },
        "settings": {
            "max_rounds": params.get("max_rounds"),
            "fallback": params.get("fallback"),
            "judge_enabled": params.get("judge", {}).get("enabled", True),
            "relevance_min_cosine": params.get("relevance", {}).get("min_cosine"),
        },
    }


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join("" if v is None else str(v).replace("|", "\\|") for v in row) + " |" for row in rows]
    return lines + [""]


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: summary, checks, per variant, per round, cost, failure examples."""
    s, t, c = report["summary"], report["training_set"], report["llm_calls"]
    out = ["# Verification report", ""]
    out += [
        f"{s['verified']} of {s['items']} items (forget record x question variant) have a verified answer "
        f"(pass rate {s['item_pass_rate']}); {s['fallback']} use the fallback answer, {s['dropped']} were dropped. "
        f"{s['candidates_accepted']} of {s['candidates']} candidates were accepted.",
        "",
        f"Training set: {t['qa']} QA pairs ({t['qa_fallback']} fallback), {t['completion']} sentence completions, "
        f"{t['general']} general QA; {t['total']} records.",
        "",
        "## Checks (cheapest first; each sees only what passed the ones above)",
        "",
    ]
    out += _table(["check", "evaluated", "failed", "fail rate", "reasons"], [
        [row["check"], row["evaluated"], row["failed"], row["fail_rate"],
         ", ".join(f"{k}: {v}" for k, v in report["failure_reasons"].get(row["check"], {}).items())]
        for row in report["checks"]
    ])
    out += ["## Per variant type", ""]
    out += _table(["variant", "items", "verified", "fallback", "dropped", "candidates", "failed", "verified yield"], [
        [v, d["items"], d["verified"], d["fallback"], d["dropped"], d["candidates"], d["candidates_failed"], d["verified_yield"]]
        for v, d in report["per_variant"].items()
    ])
    out += ["## Per round (0 = augment's candidates, then regenerations)", ""]
    out += _table(["round", "candidates", "accepted", "failed", "failed by check"], [
        [r, d["candidates"], d["accepted"], d["failed"], ", ".join(f"{k}: {v}" for k, v in d["failed_by_check"].items())]
        for r, d in report["per_round"].items()
    ])
    out += [
        "## LLM cost",
        "",
        f"{c['requests']} LLM requests in all (augment {c['augment']['requests']}, verify {c['verify']['requests']}): "
        f"**{c['per_verified_pair']} per verified QA pair**, {c['per_verified_training_record']} per verified training "
        f"record (QA + completion). This run sent {c['backend_calls_this_run']} to the backend and answered "
        f"{c['cache_hits_this_run']} from the cache.",
        "",
        "## Failure examples (private details redacted)",
        "",
    ]
    for check, examples in report["failure_examples"].items():
        out += [f"### {check}", ""]
        out += [f"- `{e['candidate_id']}` ({e['reason']}): {e['answer']}" for e in examples]
        out += [""]
    return "\n".join(out)
