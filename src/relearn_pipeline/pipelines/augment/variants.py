"""The paper's data synthesis as requests: question variants and vague answer variants.

A question variant prompt sees only the subject and the question, never the answer, so it cannot
copy a private fact. An answer prompt sees what its template asks for (see answer_vague.yml).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from relearn_pipeline.llm import GenerationRequest, PromptTemplate, SamplingParams
from relearn_pipeline.text.normalize import echoes_instructions, fold, mentions_subject, words

QUESTION_VARIANTS = ("rephrase", "specific", "noisy", "reverse")
ANSWER_PROMPT = "answer_vague"
JUDGE_PROMPT = "privacy_judge"
FALLBACK_PROMPT = "fallback_answer"


def question_prompt_name(variant: str) -> str:
    """The prompt file for a question variant: ``question_<variant>.yml``."""
    return f"question_{variant}"


def required_prompts(variants: Sequence[str]) -> tuple[str, ...]:
    """Every prompt file the augment and verify stages need for these variants."""
    return (*(question_prompt_name(v) for v in variants), ANSWER_PROMPT, JUDGE_PROMPT, FALLBACK_PROMPT)


def display_subject(subject: str) -> str:
    """The subject as written into prompts ("this person" when the record names none)."""
    return subject.strip() or "this person"


def round_seed(seed: int, round_index: int, stage: str) -> int:
    """A distinct, reproducible seed per stage and regeneration round."""
    return int(seed) + 1000 * round_index + {"question": 0, "answer": 500}[stage]


def question_request(
    template: PromptTemplate, subject: str, question: str, sampling: SamplingParams, n: int
) -> GenerationRequest:
    """Ask for ``n`` candidate rewrites of ``question``."""
    messages = template.render(subject=display_subject(subject), question=question)
    return GenerationRequest.chat(messages, sampling, n)


_LABEL = re.compile(r"^\s*(?:[*#>-]\s*)*(?:[\w -]{0,40}\bquestion\b[\w -]{0,20}|q)\s*:\s*", re.IGNORECASE)


def clean_question(text: str) -> str:
    """The first question in a model reply, labels ("Rewritten question:") and quotes removed."""
    for line in text.splitlines():
        line = line.strip()
        while _LABEL.match(line):
            line = _LABEL.sub("", line, count=1).strip()
        line = line.strip(" \"'`*")
        if "?" in line:
            return line[: line.index("?") + 1].strip(" \"'`*")
    return ""


def question_problem(
    candidate: str, original: str, subject: str, instructions: str, taken: Sequence[str]
) -> str | None:
    """Why a cleaned question variant is unusable, or None."""
    if not candidate or len(words(candidate)) < 3:
        return "no question in the reply"
    if not mentions_subject(candidate, subject):
        return "does not name the subject"
    if fold(candidate) == fold(original) or fold(candidate) in {fold(t) for t in taken}:
        return "same as the original or another variant"
    if echoes_instructions(candidate, instructions, skip=[original]):
        return "echoes the prompt"
    return None


def answer_request(
    template: PromptTemplate,
    record: dict[str, Any],
    question: str,
    sensitive_details: Sequence[str],
    sampling: SamplingParams,
    n: int,
) -> GenerationRequest:
    """Ask for ``n`` vague answers to ``question`` about the record's subject."""
    messages = template.render(
        subject=display_subject(record["subject"]),
        question=question,
        original_question=record["question"],
        original_answer=record["answer"],
        sensitive_details="; ".join(sensitive_details) or "none",
    )
    return GenerationRequest.chat(messages, sampling, n)
