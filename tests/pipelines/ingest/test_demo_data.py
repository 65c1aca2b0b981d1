"""The shipped demo set: enough people, disjoint forget/retain, held-out eval, findable private facts."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from relearn_pipeline.text.spans import find_sensitive_spans

DEMO = Path(__file__).resolve().parents[3] / "data/01_raw/demo"
FILES = ("full", "forget", "retain", "forget_eval", "retain_eval")
# Record ids are `<person>-<fact>` (`<person>-eval-<fact>` for held-out questions).
PRIVATE_FACTS = {"birthdate", "father", "mother", "spouse", "email", "address", "phone"}
PUBLIC_FACTS = {"profession", "birthplace", "work", "award"}


def _load(name: str) -> list[dict]:
    return json.loads((DEMO / f"{name}.json").read_text(encoding="utf-8"))


def _fact(record: dict) -> str:
    return record["id"].rsplit("-", 1)[1]


@pytest.fixture(scope="module")
def demo() -> dict[str, list[dict]]:
    return {name: _load(name) for name in FILES}


def test_records_have_the_contract_fields_and_unique_ids(demo):
    for name, records in demo.items():
        assert records, name
        for record in records:
            assert set(record) == {"id", "subject", "question", "answer"}, name
            assert all(isinstance(v, str) and v.strip() for v in record.values()), record
        assert len({r["id"] for r in records}) == len(records), name


def test_at_least_eight_people_with_public_and_private_facts(demo):
    per_person = Counter(r["subject"] for r in demo["full"])
    assert len(per_person) >= 8
    assert min(per_person.values()) >= 12
    for person in per_person:
        facts = {_fact(r) for r in demo["full"] if r["subject"] == person}
        assert PUBLIC_FACTS <= facts and {"father", "mother", "email", "address", "phone"} <= facts


def test_answers_are_short_enough_to_memorize(demo):
    assert 130 <= len(demo["full"]) <= 170
    assert max(len(r["answer"].split()) for r in demo["full"]) <= 40


def test_two_people_to_forget_disjoint_from_retain(demo):
    forget = {r["subject"] for r in demo["forget"]}
    retain = {r["subject"] for r in demo["retain"]}
    assert len(forget) == 2 and forget.isdisjoint(retain)
    # full = every split, eval questions included (as KnowUnDo's full.json holds its val splits)
    splits = demo["forget"] + demo["retain"] + demo["forget_eval"] + demo["retain_eval"]
    assert sorted(r["id"] for r in splits) == sorted(r["id"] for r in demo["full"])
    assert all(r in demo["full"] for r in splits)


def test_eval_questions_are_held_out_from_unlearning_but_ask_the_same_facts(demo):
    full = {r["id"]: r for r in demo["full"]}
    questions = {r["question"] for r in demo["forget"] + demo["retain"]}  # what augment/finetune see
    forget_people = {r["subject"] for r in demo["forget"]}
    for name, people in (("forget_eval", forget_people), ("retain_eval", None)):
        per_person = Counter(r["subject"] for r in demo[name])
        assert per_person and min(per_person.values()) >= 5
        for record in demo[name]:
            assert record["question"] not in questions
            person, fact = record["id"].split("-eval-")
            source = full[f"{person}-{fact}"]
            assert source["answer"] == record["answer"] and source["subject"] == record["subject"]
            in_forget = record["subject"] in forget_people
            assert in_forget if name == "forget_eval" else not in_forget


def test_every_private_forget_answer_has_a_sensitive_span(demo):
    for record in demo["forget"]:
        if _fact(record) in PRIVATE_FACTS:
            spans = [s for s in find_sensitive_spans(record["answer"]) if s.text != record["subject"]]
            assert spans, record["id"]


def test_contact_details_are_found_with_their_label(demo):
    expected = {"email": "EMAIL", "phone": "PHONE", "address": "ADDRESS", "birthdate": "DATE"}
    for record in demo["full"]:
        label = expected.get(_fact(record))
        if label:
            assert label in {s.label for s in find_sensitive_spans(record["answer"])}, record["id"]
