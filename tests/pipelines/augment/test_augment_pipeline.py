"""augment with a scripted backend: every variant through its own prompt, candidates with provenance."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from relearn_pipeline.llm import LLMCredentials
from relearn_pipeline.llm import factory
from relearn_pipeline.pipelines.augment import create_pipeline

PROJECT = Path(__file__).resolve().parents[3]
CONTRACT = ["id", "source_id", "subject", "kind", "variant", "question", "answer", "round", "backend", "model", "fallback"]


def params(**overrides) -> dict:
    conf = yaml.safe_load((PROJECT / "conf/base/parameters_augment.yml").read_text())["augment"]
    conf["llm"] = {"backend": "scripted", "cache_path": None}
    return conf | overrides


class Kept(MemoryDataset):
    def _release(self) -> None:
        pass


@pytest.fixture
def run_augment(monkeypatch, forget_set, sensitive_spans, augment_prompts):
    """``run_augment(backend, augment_params=None)``: the augment outputs for the two forget records
    (tests/pipelines/conftest.py), with ``backend`` as the LLM."""

    def run(backend, augment_params=None) -> dict:
        monkeypatch.setitem(factory.BACKEND_BUILDERS, "scripted", lambda options, credentials: backend)
        outputs = ["question_variants", "augmented_raw", "augment_llm_usage"]
        catalog = DataCatalog(datasets={
            "forget_set": MemoryDataset(forget_set), "sensitive_spans": MemoryDataset(sensitive_spans),
            "augment_prompts": MemoryDataset(augment_prompts, copy_mode="assign"),
            "llm_credentials": MemoryDataset(LLMCredentials(), copy_mode="assign"),
            "params:augment": MemoryDataset(augment_params or params(), copy_mode="deepcopy"),
            **{name: Kept() for name in outputs},
        })
        SequentialRunner().run(create_pipeline(), catalog)
        return {name: catalog.load(name) for name in outputs}

    return run


def test_four_question_variants_each_from_its_own_prompt(scripted, run_augment, forget_set):
    backend = scripted.ScriptedBackend()
    out = run_augment(backend)
    variants = out["question_variants"]
    for record in forget_set.itertuples():
        rows = variants[variants["source_id"] == record.id]
        assert rows["variant"].tolist() == ["original", "rephrase", "specific", "noisy", "reverse"]
        assert rows["question"].iloc[0] == record.question
        for row in rows.iloc[1:].itertuples():
            assert row.question.startswith(row.variant.upper() + " 0:")  # the reply to ITS prompt
            assert row.question.endswith("?")
    question_calls = [k for k in backend.kinds() if k != "answer"]
    assert sorted(question_calls) == sorted(["rephrase", "specific", "noisy", "reverse"] * 2)


def test_answer_candidates_keep_provenance_and_their_own_question(scripted, run_augment):
    backend = scripted.ScriptedBackend()
    raw = run_augment(backend)["augmented_raw"]
    assert list(raw.columns) == CONTRACT
    assert len(raw) == 2 * 5 * 3  # records x (original + 4 variants) x candidates
    assert set(raw["kind"]) == {"qa"} and not raw["fallback"].any() and set(raw["round"]) == {0}
    assert set(raw["backend"]) == {"scripted"} and set(raw["model"]) == {"script-v1"}
    answer_prompts = [r for r in backend.calls if "Answer in one or two" in r.messages[-1][1]]
    assert len(answer_prompts) == 10 and all(r.n == 3 for r in answer_prompts)
    asked = {scripted.field(r, "Question:") for r in answer_prompts}
    assert asked == set(raw["question"])  # each answer was written for the question it is paired with
    assert not any("example.com" in r.messages[-1][1] for r in answer_prompts)  # default prompt hides it


def test_unusable_question_candidates_are_retried_then_reported_missing(scripted, run_augment):
    def reply(request, k):
        kind = scripted.prompt_kind(request)
        if kind == "noisy":
            return "I can't help with that."  # never a question
        if kind == "specific" and request.sampling.seed < 1000:
            return "Which city is it?"  # round 0: does not name the subject
        return scripted.default_reply(request, k)

    out = run_augment(scripted.ScriptedBackend(reply))
    usage = out["augment_llm_usage"]["question_variants"]
    assert usage["accepted"] == {"rephrase": 2, "specific": 2, "noisy": 0, "reverse": 2}
    assert {m["variant"] for m in usage["missing"]} == {"noisy"}
    specific = out["question_variants"].query("variant == 'specific'")
    assert set(specific["round"]) == {1}
    assert out["augment_llm_usage"]["llm_calls"]["requests"] == 8 + 4 + 8  # round 0, round 1, answers (noisy missing)


def test_unknown_variant_is_a_clear_error(scripted, run_augment):
    with pytest.raises(Exception, match="augment.variants: unknown"):
        run_augment(scripted.ScriptedBackend(), params(variants=["rephrase", "shouty"]))
