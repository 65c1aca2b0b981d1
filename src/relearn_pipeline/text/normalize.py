"""Text normalisation shared by augmentation and verification: folding, words, subject names,
and which sensitive spans of a record a variant must not contain."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from rapidfuzz import fuzz

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def fold(text: str) -> str:
    """Lower-case, accents removed, whitespace collapsed: 'Wójcik ' -> 'wojcik'."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.lower().replace("\u2019", "'").split())


def words(text: str) -> list[str]:
    """Alphabetic word tokens of ``text``, folded."""
    return _WORD.findall(fold(text))


def subject_tokens(subject: str) -> set[str]:
    """Name parts of a subject worth looking for (3+ letters): 'Tomasz Wójcik' -> {tomasz, wojcik}."""
    return {w for w in words(subject) if len(w) >= 3}


def mentions_subject(text: str, subject: str) -> bool:
    """Whether ``text`` names the subject (any name part, accent- and case-insensitive)."""
    tokens = subject_tokens(subject)
    return not tokens or bool(tokens & set(words(text)))


def echoes_instructions(text: str, instructions: str, skip: Iterable[str] = (), min_chars: int = 25) -> bool:
    """Whether ``text`` repeats a line of the prompt's instructions (lines in ``skip`` excepted)."""
    folded = fold(text)
    skipped = {fold(s) for s in skip}
    for line in instructions.splitlines():
        line_folded = fold(line)
        if len(line_folded) < min_chars or any(s and s in line_folded for s in skipped):
            continue
        if fuzz.partial_ratio(line_folded, folded) >= 90:
            return True
    return False


def protected_spans(
    spans: Sequence[dict[str, Any]], subject: str, question: str, allow_question_spans: bool = True
) -> list[dict[str, Any]]:
    """The spans a variant must not contain: all of the source answer's, minus the subject's name
    (public, and kept on purpose) and, if allowed, spans the original question already states."""
    names = subject_tokens(subject)
    folded_question = fold(question)
    kept = []
    for span in spans:
        text = str(span["text"]).strip()
        span_words = set(words(text))
        if not text or (span_words and names and span_words <= names | {"s"}):
            continue
        if allow_question_spans and fold(text) in folded_question:
            continue
        kept.append(span)
    return kept
