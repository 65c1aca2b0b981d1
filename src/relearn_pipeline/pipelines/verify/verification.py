"""The verify loop: check candidates cheapest first, judge the survivors, regenerate what failed.

Round 0 is augment's candidates; rounds 1..max_rounds regenerate answers for items (one source
record x one question variant) that have no accepted answer yet. Items still without one get the
fallback answer (or are dropped). Every candidate is logged with the check that decided it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from relearn_pipeline.llm import CachedBackend, GenerationRequest, PromptTemplate, sampling_from_params
from relearn_pipeline.pipelines.augment.variants import (
    ANSWER_PROMPT,
    FALLBACK_PROMPT,
    JUDGE_PROMPT,
    answer_request,
    display_subject,
    round_seed,
)
from relearn_pipeline.pipelines.verify.checks import (
    Leak,
    find_leaks,
    fold,
    mentions_subject,
    protected_spans,
    redact,
    relevance_scores,
    well_formed_problem,
)
from relearn_pipeline.pipelines.verify.judge import parse_judge_verdict

LOG_COLUMNS = [
    "candidate_id", "source_id", "variant", "round", "status", "check", "reason",
    "relevance", "answer_redacted",
]


@dataclass
class Item:
    """One (source record, question variant) that needs one verified answer."""

    source_id: str
    subject: str
    variant: str
    question: str
    record: dict[str, Any]
    spans: list[dict[str, Any]]
    seen: set[str] = field(default_factory=set)
    accepted: dict[str, Any] | None = None
    dropped: str | None = None


@dataclass
class Candidate:
    """One generated answer for an item and what the checks said about it."""

    item: Item
    id: str
    answer: str
    round: int
    backend: str
    model: str
    status: str = "pending"  # pending -> checked -> accepted | failed | not_needed
    check: str = ""
    reason: str = ""
    relevance: float = float("nan")
    leaks: list[Leak] = field(default_factory=list)

    def fail(self, check: str, reason: str) -> None:
        self.status, self.check, self.reason = "failed", check, reason


def build_items(
    augmented_raw: pd.DataFrame,
    forget_set: pd.DataFrame,
    spans: dict[str, list[dict[str, Any]]],
    leak_params: dict[str, Any],
) -> tuple[list[Item], list[Candidate]]:
    """Items and their round-0 candidates from augmented_raw, joined to their forget records."""
    records = {str(r["id"]): r for r in forget_set.astype({"id": str}).to_dict("records")}
    items: dict[tuple[str, str], Item] = {}
    candidates = []
    for row in augmented_raw.to_dict("records"):
        source_id = str(row["source_id"])
        record = records.get(source_id)
        if record is None:
            raise ValueError(
                f"augmented_raw row {row['id']!r}: source_id {source_id!r} is not in forget_set; "
                "rerun augment on the current forget_set"
            )
        key = (source_id, row["variant"])
        if key not in items:
            items[key] = Item(
                source_id, str(record["subject"]), row["variant"], str(row["question"]), record,
                protected_spans(spans.get(source_id, []), str(record["subject"]), str(record["question"]),
                                bool(leak_params.get("allow_question_spans", True))),
            )
            question_leaks = find_leaks(row["question"], items[key].spans, str(record["subject"]), **_leak_options(leak_params))
            if question_leaks:
                items[key].dropped = f"the question itself contains a {question_leaks[0].describe()}"
        candidates.append(
            Candidate(items[key], str(row["id"]), str(row["answer"] or ""), int(row["round"]), str(row["backend"]), str(row["model"]))
        )
    return list(items.values()), candidates


def _leak_options(params: dict[str, Any]) -> dict[str, Any]:
    return {k: params[k] for k in ("fuzzy_threshold", "fuzzy_min_chars", "min_digits") if k in params}


def run_cheap_checks(
    candidates: list[Candidate],
    accepted_by_record: dict[str, set[str]],
    params: dict[str, Any],
    instructions: Callable[[Item], str],
    encoder: Any = None,
) -> None:
    """Well-formed, no sensitive span, subject named, then relevance (MiniLM) on the survivors."""
    survivors = []
    for c in candidates:
        item = c.item
        if item.dropped:
            c.fail("sensitive_span", item.dropped)
            continue
        problem = well_formed_problem(
            c.answer, item.question, str(item.record["answer"]), instructions(item), **params.get("well_formed", {})
        )
        folded = fold(c.answer)
        if problem is None and (folded in item.seen or folded in accepted_by_record.get(item.source_id, set())):
            problem = "duplicate"
        item.seen.add(folded)
        if problem:
            c.fail("well_formed", problem)
            continue
        c.leaks = find_leaks(c.answer, item.spans, item.subject, **_leak_options(params.get("leak", {})))
        if c.leaks:
            c.fail("sensitive_span", "; ".join(sorted({l.describe() for l in c.leaks})))
            continue
        if params.get("relevance", {}).get("require_subject", True) and not mentions_subject(c.answer, item.subject):
            c.fail("subject", f"does not name {item.subject!r}")
            continue
        survivors.append(c)
    threshold = float(params.get("relevance", {}).get("min_cosine", 0.0))
    scores = relevance_scores([(c.item.question, c.answer) for c in survivors], encoder) if threshold > 0 else []
    for i, c in enumerate(survivors):
        if scores:
            c.relevance = scores[i]
            if scores[i] < threshold:
                c.fail("relevance", f"cosine {scores[i]:.2f} < {threshold:.2f}")
                continue
        c.status = "checked"


def judge_and_accept(
    candidates: list[Candidate],
    accepted_by_record: dict[str, set[str]],
    judge: PromptTemplate,
    backend_for_judge: Callable[[], CachedBackend] | None,
    judge_sampling: dict[str, Any],
) -> None:
    """Judge, per unresolved item, its next checked candidate (one batch per pass) until each item
    has an accepted answer or runs out of candidates. ``backend_for_judge=None`` skips the judge."""
    while True:
        batch: list[Candidate] = []
        for c in candidates:
            if c.status == "checked" and c.item.accepted is None and all(b.item is not c.item for b in batch):
                if fold(c.answer) in accepted_by_record.get(c.item.source_id, set()):
                    c.fail("well_formed", "duplicate")
                    continue
                batch.append(c)
        if not batch:
            break
        if backend_for_judge is None:
            verdicts = [("no_leak", "")] * len(batch)
        else:
            sampling = sampling_from_params(judge_sampling, seed=0)
            requests = [
                GenerationRequest.chat(judge.render(subject=display_subject(c.item.subject), question=c.item.question, answer=c.answer), sampling, 1)
                for c in batch
            ]
            replies = backend_for_judge().generate(requests, purpose="privacy_judge")
            verdicts = [(parse_judge_verdict(r[0]), r[0]) for r in replies]
        for c, (verdict, reply) in zip(batch, verdicts):
            record_accepted = accepted_by_record.setdefault(c.item.source_id, set())
            if verdict != "no_leak":
                shown = " ".join(reply.split())[:80]
                c.fail("privacy_judge", f"verdict {verdict}: {shown!r}")
            elif fold(c.answer) in record_accepted:
                c.fail("well_formed", "duplicate")
            else:
                c.status = "accepted"
                c.check = "privacy_judge" if backend_for_judge else "relevance"
                record_accepted.add(fold(c.answer))
                c.item.accepted = _row(c.item, c.id, c.answer, c.round, c.backend, c.model, False)
    for c in candidates:
        if c.status == "checked":
            c.status, c.check = "not_needed", "relevance"


def _row(item: Item, row_id: str, answer: str, round_index: int, backend: str, model: str, fallback: bool) -> dict[str, Any]:
    return {
        "id": row_id, "source_id": item.source_id, "subject": item.subject, "kind": "qa",
        "variant": item.variant, "question": item.question, "answer": answer, "round": round_index,
        "backend": backend, "model": model, "fallback": fallback,
    }


def verify_all(
    items: list[Item],
    candidates: list[Candidate],
    templates: dict[str, PromptTemplate],
    augment_params: dict[str, Any],
    verify_params: dict[str, Any],
    make_backend: Callable[[], CachedBackend],
    encoder: Any = None,
) -> tuple[list[dict[str, Any]], list[Candidate], list[Item], dict[str, Any] | None]:
    """Accepted (or fallback) rows, every candidate with its verdict, the dropped items, and the
    LLM calls made here (None when no backend was needed)."""
    backend: CachedBackend | None = None

    def get_backend() -> CachedBackend:
        nonlocal backend
        backend = backend or make_backend()
        return backend

    judge_on = bool(verify_params.get("judge", {}).get("enabled", True))
    judge_sampling = verify_params.get("judge", {}).get("sampling", {"temperature": 0.0, "max_new_tokens": 16})
    accepted_by_record: dict[str, set[str]] = {}
    instruction_cache: dict[tuple[str, str], str] = {}
    spans_note: dict = {}

    def instructions(item: Item) -> str:
        key = (item.source_id, item.variant)
        if key not in instruction_cache:
            request = _answer_request(templates, item, spans_note, augment_params, 0)
            instruction_cache[key] = request.messages[-1][1]
        return instruction_cache[key]

    max_rounds = int(verify_params.get("max_rounds", 3))
    current = candidates
    all_candidates = list(candidates)
    for round_index in range(max_rounds + 1):
        if round_index > 0:
            pending = [i for i in items if i.accepted is None and not i.dropped]
            if not pending:
                break
            requests = [_answer_request(templates, i, spans_note, augment_params, round_index) for i in pending]
            replies = get_backend().generate(requests, purpose=f"regenerate_round_{round_index}")
            current = [
                Candidate(item, f"{item.source_id}/{item.variant}/r{round_index}/c{k}", text, round_index, get_backend().name, get_backend().model)
                for item, texts in zip(pending, replies)
                for k, text in enumerate(texts)
            ]
            all_candidates.extend(current)
        unresolved = [c for c in current if c.item.accepted is None]
        run_cheap_checks(unresolved, accepted_by_record, verify_params, instructions, encoder)
        judge_and_accept(unresolved, accepted_by_record, templates[JUDGE_PROMPT], get_backend if judge_on else None, judge_sampling)
    rows, dropped = [], []
    last_round = max([c.round for c in all_candidates], default=0)
    for item in items:
        if item.accepted is not None:
            rows.append(item.accepted)
        elif item.dropped or verify_params.get("fallback", "template") == "drop":
            dropped.append(item)
        else:
            answer = templates[FALLBACK_PROMPT].render_text(subject=display_subject(item.subject), question=item.question)
            rows.append(_row(item, f"{item.source_id}/{item.variant}/fallback", answer, last_round, "template", FALLBACK_PROMPT, True))
    return rows, all_candidates, dropped, (backend.counts.as_dict() if backend else None)


def _answer_request(templates, item: Item, cache: dict, augment_params: dict[str, Any], round_index: int) -> GenerationRequest:
    options = augment_params["answer"]
    sampling = sampling_from_params(options["sampling"], round_seed(augment_params["seed"], round_index, "answer"))
    details = [s["text"] for s in item.spans]
    return answer_request(templates[ANSWER_PROMPT], item.record, item.question, details, sampling, int(options["candidates"]))


def candidate_log(candidates: list[Candidate]) -> pd.DataFrame:
    """One row per candidate: its verdict, the deciding check and reason, the answer redacted."""
    rows = [
        {
            "candidate_id": c.id, "source_id": c.item.source_id, "variant": c.item.variant, "round": c.round,
            "status": c.status, "check": c.check, "reason": c.reason, "relevance": c.relevance,
            "answer_redacted": redact(c.answer, c.leaks or find_leaks(c.answer, c.item.spans, c.item.subject)),
        }
        for c in candidates
    ]
    return pd.DataFrame(rows, columns=LOG_COLUMNS)
