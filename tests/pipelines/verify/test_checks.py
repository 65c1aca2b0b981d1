"""Each verification check failing and passing, including fuzzy leaks (the judge's parsing: test_judge.py)."""

from __future__ import annotations

import pytest

from relearn_pipeline.pipelines.verify.checks import (
    find_leaks,
    mentions_subject,
    protected_spans,
    relevance_scores,
    well_formed_problem,
)

EMAIL = {"text": "elena.marsh@example.com", "label": "EMAIL"}
PHONE = {"text": "+1 (555) 010-2233", "label": "PHONE"}
FATHER = {"text": "Tomas Marsh", "label": "PERSON"}
ADDRESS = {"text": "42 Willow Lane", "label": "ADDRESS"}


@pytest.mark.parametrize("answer, problem", [
    ("", "empty"),
    ("Elena Marsh.", "too short"),
    ("What is Elena Marsh's email address?", "echoes the question"),
    ("Elena Marsh's email address is elena.marsh@example.com.", "copies the original answer"),
    ("Elena Marsh escribe novelas sobre pueblos costeros y vive junto al mar.", "not English"),
    ("Elena Marsh prefers to keep her contact details private, as many writers do.", None),
])
def test_well_formed(answer, problem):
    found = well_formed_problem(answer, "What is Elena Marsh's email address?", "Elena Marsh's email address is elena.marsh@example.com.")
    assert (found or None) == problem if problem is None else found.startswith(problem)


def test_prompt_echo_is_not_well_formed():
    instructions = "Answer in one or two short sentences about Elena Marsh. Start with the name."
    assert well_formed_problem("Answer in one or two short sentences about Elena Marsh.", "Q?", "", instructions) == "echoes the prompt"


@pytest.mark.parametrize("text, how", [
    ("Write to ELENA.MARSH@EXAMPLE.COM any time.", "exact"),
    ("Write to elena.marsh@exampel.com any time.", "fuzzy"),  # one character changed
    ("Call 555.010.2233 after six.", "digits"),  # other separators, no country code
    ("Call +1 555 010 2233 after six.", "digits"),
    ("Her father Tomas is a carpenter.", "name_part"),
    ("She lives at 42 Wilow Lane in town.", "fuzzy"),  # a typo in the address
])
def test_leaks_are_found_exact_and_fuzzy(text, how):
    leaks = find_leaks(text, [EMAIL, PHONE, FATHER, ADDRESS], subject="Elena Marsh")
    assert [leak.how for leak in leaks] == [how]


@pytest.mark.parametrize("span, text", [
    ("+44 20 7946 0958", "Call him on 020 7946 0958 in office hours."),  # national form: trunk 0 for +44
    ("020 7946 0958", "Call him on +44 20 7946 0958 in office hours."),  # and the other way round
])
def test_a_phone_number_in_its_other_national_or_international_form_is_a_leak(span, text):
    leaks = find_leaks(text, [{"text": span, "label": "PHONE"}], subject="Tobias Okafor")
    assert [leak.how for leak in leaks] == ["digits"]


def test_clean_text_and_the_subject_name_are_not_leaks():
    spans = protected_spans([EMAIL, FATHER, {"text": "Elena Marsh", "label": "PERSON"}], "Elena Marsh", "Who is Elena Marsh's father?")
    assert {s["text"] for s in spans} == {EMAIL["text"], FATHER["text"]}
    clean = "Elena Marsh keeps her family and contact details private; she writes about the sea."
    assert find_leaks(clean, spans, subject="Elena Marsh") == []
    assert find_leaks("Call 555-0199 later.", [PHONE], subject="Elena Marsh") == []


def test_subject_must_be_named():
    assert mentions_subject("elena marsh likes boats", "Elena Marsh")
    assert mentions_subject("Tomasz Wojcik writes.", "Tomasz Wójcik")  # accents folded
    assert not mentions_subject("The individual prefers privacy.", "Tomasz Wójcik")


def test_relevance_separates_on_and_off_topic():
    on, off = relevance_scores([
        ("Where was Elena Marsh born?", "Elena Marsh was born in a coastal city in southern Europe."),
        ("Where was Elena Marsh born?", "The weather today is sunny and warm."),
    ])
    assert on > 0.45 > off
