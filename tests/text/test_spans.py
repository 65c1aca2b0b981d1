"""Sensitive-span detection: the regex detectors, spaCy NER, overlap rules and entity extraction."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relearn_pipeline.text.spans import Span, extract_entities, find_sensitive_spans


def _labelled(text: str) -> dict[str, str]:
    """Span text -> label, for compact assertions."""
    return {span.text: span.label for span in find_sensitive_spans(text)}


@pytest.mark.parametrize(
    "email",
    ["elena.marsh@example.com", "j_o+news@mail.co.uk", "Tom.Kerr-88@uni-bonn.de"],
)
def test_emails_are_found_whole(email):
    spans = _labelled(f"You can reach her at {email}. She answers quickly.")
    assert spans[email] == "EMAIL"


@pytest.mark.parametrize(
    "phone",
    [
        "+1 (555) 010-2233",
        "555.010.2233",
        "555-010-2233",
        "(555) 010 2233",
        "+44 20 7946 0958",
        "+33 1 23 45 67 89",
        "+49-30-1234567",
    ],
)
def test_phone_numbers_with_any_separators_are_found(phone):
    spans = _labelled(f"His phone number is {phone}, call after six.")
    assert spans[phone] == "PHONE"


@pytest.mark.parametrize(
    "address",
    [
        "42 Willow Lane",
        "1187 Harbor View Road, Apt 3",
        "221B Baker Street",
        "9 Elm Ct.",
        "88 Wisdom Path",
        "59 Rue de l'Artiste",
        "12 Via della Spiga",
        "Hauptstraße 12",
    ],
)
def test_street_addresses_are_found(address):
    spans = _labelled(f"She lives at {address} in a quiet town.")
    assert spans[address] == "ADDRESS"


@pytest.mark.parametrize(
    "date", ["March 3, 1978", "3 March 1978", "3rd of March 1978", "1978-03-03", "03/03/1978"]
)
def test_dates_in_common_formats_are_found_by_regex(date):
    spans = find_sensitive_spans(f"He was born on {date} in a small village.")
    found = [s for s in spans if s.text == date]
    assert found and found[0].label == "DATE" and found[0].source == "regex"


def test_names_and_places_come_from_ner():
    text = "Her parents are Tomas Marsh and Ruth Ann Marsh, who met in Lisbon."
    spans = {s.text: s for s in find_sensitive_spans(text)}
    assert spans["Tomas Marsh"].label == "PERSON" and spans["Tomas Marsh"].source == "ner"
    assert spans["Ruth Ann Marsh"].label == "PERSON"
    assert spans["Lisbon"].label == "GPE"


def test_offsets_point_into_the_text():
    text = "Write to ana@example.org or call 555-010-2233 before March 3, 1978."
    for span in find_sensitive_spans(text):
        assert text[span.start : span.end] == span.text


def test_overlaps_keep_the_regex_span():
    # spaCy labels the house number "42" (a DATE) and "555" (CARDINAL); the regex spans win.
    text = "She lives at 42 Willow Lane and her phone is 555 010 2233."
    spans = find_sensitive_spans(text)
    assert not any(
        a.start < b.end and b.start < a.end for i, a in enumerate(spans) for b in spans[i + 1 :]
    )
    by_text = {s.text: s for s in spans}
    assert by_text["42 Willow Lane"].source == "regex"
    assert by_text["555 010 2233"].label == "PHONE"


def test_years_and_counts_are_not_phone_numbers():
    spans = _labelled("She published in 1998 2001 and sold 1,200 copies.")
    assert "PHONE" not in spans.values()
    assert spans.get("1,200") == "NUMBER"


def test_plain_numbers_are_found():
    spans = _labelled("The trilogy has 3 volumes and 1,250 pages.")
    assert spans.get("1,250") == "NUMBER"


@pytest.mark.parametrize("text", ["", "   \n\t", "@@@ 1.2.3 ++++1 ((((", "\x00\ufffd"])
def test_degenerate_text_does_not_crash(text):
    assert isinstance(find_sensitive_spans(text), list)


def test_span_is_frozen():
    span = Span("x", "PERSON", 0, 1, "ner")
    with pytest.raises(AttributeError):
        span.text = "y"  # type: ignore[misc]


def test_extract_entities_drops_entities_named_in_the_question():
    answer = "Elena Marsh won the Golden Quill Award in 2004 for Salt and Ember."
    entities = extract_entities(answer, question="Which award did Elena Marsh win?")
    assert "Elena Marsh" not in entities
    assert "2004" in entities


def test_extract_entities_deduplicates_and_keeps_order():
    entities = extract_entities("Call 555-010-2233. Again: 555-010-2233. Ask for Tomas Marsh.")
    assert entities == ["555-010-2233", "Tomas Marsh"]


# ---------------------------------------------------------------- property tests

_settings = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

_emails = st.builds(
    lambda local, domain, tld: f"{local}@{domain}.{tld}",
    st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,15}", fullmatch=True),
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-z0-9]{1,8}){0,2}", fullmatch=True),
    st.from_regex(r"[a-z]{2,6}", fullmatch=True),
)


@st.composite
def _phones(draw) -> str:
    """A US- or international-style phone number with random separators."""
    sep = draw(st.sampled_from([" ", "-", ".", ""]))
    digits = st.integers(0, 9).map(str)

    def group(n: int) -> str:
        return "".join(draw(st.lists(digits, min_size=n, max_size=n)))

    if draw(st.booleans()):  # US: [+1 ](555) 010-2233 or 555.010.2233
        area = f"({group(3)}) " if draw(st.booleans()) else group(3) + (sep or "-")
        prefix = "+1 " if draw(st.booleans()) else ""
        return f"{prefix}{area}{group(3)}{sep or '-'}{group(4)}"
    country = draw(st.integers(1, 999))
    remaining = draw(st.integers(6, 12))  # E.164: at most 15 digits with the country code
    groups = []
    while remaining:
        size = draw(st.integers(1, min(4, remaining)))
        groups.append(group(size))
        remaining -= size
    body = (sep or " ").join(groups)
    return f"+{country} {body}"


_noise = st.text(max_size=80)


@_settings
@given(text=st.text(max_size=300))
def test_arbitrary_text_never_crashes_and_spans_are_consistent(text):
    spans = find_sensitive_spans(text)
    for span in spans:
        assert text[span.start : span.end] == span.text
    ordered = sorted(spans, key=lambda s: s.start)
    assert all(a.end <= b.start for a, b in zip(ordered, ordered[1:]))
    assert isinstance(extract_entities(text, question=text[:20]), list)


def _covered(spans: list[Span], start: int, end: int, label: str) -> bool:
    """Whether a span of `label` covers text[start:end]."""
    return any(s.label == label and s.start <= start and s.end >= end for s in spans)


@_settings
@given(prefix=_noise, email=_emails, suffix=_noise)
def test_planted_email_is_always_found(prefix, email, suffix):
    text = f"{prefix} Write to {email} today. {suffix}"
    start = text.index(f" Write to {email}") + len(" Write to ")
    assert _covered(find_sensitive_spans(text), start, start + len(email), "EMAIL")


@_settings
@given(prefix=_noise, phone=_phones(), suffix=_noise)
def test_planted_phone_is_always_found(prefix, phone, suffix):
    text = f"{prefix} Call {phone} now. {suffix}"
    start = text.index(f" Call {phone}") + len(" Call ")
    assert _covered(find_sensitive_spans(text), start, start + len(phone), "PHONE")
