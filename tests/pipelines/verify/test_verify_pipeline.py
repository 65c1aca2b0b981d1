"""augment + verify with a scripted backend: pairing, rounds, fallback, judge, completions, mixing, cache."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from relearn_pipeline.llm import LLMCredentials, factory
from relearn_pipeline.pipelines.augment import create_pipeline as augment_pipeline
from relearn_pipeline.pipelines.verify import create_pipeline as verify_pipeline
from relearn_pipeline.pipelines.verify.assemble import completion_records

PROJECT = Path(__file__).resolve().parents[3]
CONTRACT = ["id", "source_id", "subject", "kind", "variant", "question", "answer", "round", "backend", "model", "fallback"]
RETAIN = pd.DataFrame([
    {"id": f"r{i}", "subject": "Cy Doe", "question": f"What is Cy Doe's hobby {i}?", "answer": f"Cy Doe enjoys hobby number {i}."} for i in range(5)
])
OUTPUTS = ["augmented_raw", "augmented_forget_set", "verification_report", "verification_report_md", "verification_log"]


def load_params(name: str) -> dict:
    return yaml.safe_load((PROJECT / f"conf/base/parameters_{name}.yml").read_text())[name]


class Kept(MemoryDataset):
    def _release(self) -> None:
        pass


def answer_about(request, k, extra=""):
    """A vague answer that names the subject and echoes the first word of its own question."""
    question = request.messages[-1][1].split("Question:")[1].splitlines()[0].strip()
    subject = "Ann Lee" if "Ann Lee" in question else "Bo Kim"
    return f"{subject} keeps private details to themselves when asked {question.split()[0]} ({k}){extra}."


@pytest.fixture
def run(monkeypatch, tmp_path, forget_set, sensitive_spans, augment_prompts):
    """``run(backend, verify_overrides=None, cache=False)``: augment + verify on the two forget
    records (tests/pipelines/conftest.py) with ``backend`` as the LLM; the OUTPUTS by name."""

    def run_pipelines(backend, verify_overrides=None, cache=False) -> dict:
        monkeypatch.setitem(factory.BACKEND_BUILDERS, "scripted", lambda options, credentials: backend)
        augment = load_params("augment")
        augment["llm"] = {"backend": "scripted", "cache_path": str(tmp_path / "cache.jsonl") if cache else None}
        verify = load_params("verify") | {"relevance": {"min_cosine": 0.0, "require_subject": True}} | (verify_overrides or {})
        catalog = DataCatalog(datasets={
            "forget_set": MemoryDataset(forget_set), "sensitive_spans": MemoryDataset(sensitive_spans),
            "retain_set": MemoryDataset(RETAIN),
            "augment_prompts": MemoryDataset(augment_prompts, copy_mode="assign"),
            "llm_credentials": MemoryDataset(LLMCredentials(), copy_mode="assign"),
            "params:augment": MemoryDataset(augment, copy_mode="deepcopy"),
            "params:verify": MemoryDataset(verify, copy_mode="deepcopy"),
            **{name: Kept() for name in OUTPUTS},
        })
        SequentialRunner().run(augment_pipeline() + verify_pipeline(), catalog)
        return {name: catalog.load(name) for name in OUTPUTS}

    return run_pipelines


def backend_for(scripted, answer, judge=lambda request: "LEAK: no"):
    def reply(request, k):
        kind = scripted.prompt_kind(request)
        if kind == "answer":
            return answer(request, k)
        if kind == "judge":
            return judge(request)
        return scripted.default_reply(request, k)

    return scripted.ScriptedBackend(reply)


def test_each_question_variant_gets_its_own_verified_answer_never_the_original(scripted, run, forget_set):
    out = run(backend_for(scripted, answer_about))
    data = out["augmented_forget_set"]
    assert list(data.columns) == CONTRACT
    qa = data[data["kind"] == "qa"]
    assert len(qa) == 10 and not qa["fallback"].any() and set(qa["round"]) == {0}
    for row in qa.itertuples():  # the answer was generated for THIS question (no i-1 shift)
        assert f"asked {row.question.split()[0]} (" in row.answer
    assert not data["answer"].isin(forget_set["answer"]).any()
    report = out["verification_report"]
    assert report["summary"]["item_pass_rate"] == 1.0 and report["summary"]["verified"] == 10
    assert "# Verification report" in out["verification_report_md"]


def test_leaking_candidates_are_regenerated_in_later_rounds(scripted, run):
    def answer(request, k):
        round_index = (request.sampling.seed - 500 - 42) // 1000
        leak = " and writes from ann.lee@exampel.com, or call 555.010.2233" if round_index < 2 else ""
        return answer_about(request, k, leak)

    out = run(backend_for(scripted, answer))
    qa = out["augmented_forget_set"].query("kind == 'qa'")
    assert set(qa["round"]) == {2} and not qa["fallback"].any()
    rounds = out["verification_report"]["per_round"]
    assert rounds["0"]["failed_by_check"] == {"sensitive_span": 30} and rounds["2"]["accepted"] == 10
    log = out["verification_log"]
    assert "exampel.com" not in " ".join(log[log["source_id"] == "ann-email"]["answer_redacted"])  # redacted
    assert "010.2233" not in " ".join(log[log["source_id"] == "bo-phone"]["answer_redacted"])


def test_fallback_after_max_rounds_is_marked(scripted, run):
    out = run(backend_for(scripted, lambda r, k: "Ann Lee's email is ann.lee@example.com."), {"max_rounds": 2})
    qa = out["augmented_forget_set"].query("kind == 'qa'")
    assert qa["fallback"].all() and set(qa["round"]) == {2} and set(qa["backend"]) == {"template"}
    assert all(row.answer.startswith(row.subject) and "private" in row.answer for row in qa.itertuples())
    assert out["verification_report"]["summary"]["fallback"] == 10
    assert out["augmented_forget_set"].query("kind == 'completion'").empty  # no completions from fallbacks
    dropped = run(backend_for(scripted, lambda r, k: "x"), {"max_rounds": 0, "fallback": "drop"})
    assert dropped["augmented_forget_set"].query("kind == 'qa'").empty


def test_judge_sees_only_survivors_and_ambiguous_fails(scripted, run):
    def answer(request, k):
        # candidates 0 and 1 are not well-formed; 2 differs per round (a repeat would be a duplicate)
        return answer_about(request, k, f" in round seed {request.sampling.seed}") if k == 2 else "nope"
    verdicts = iter(["I do not know"] * 10 + ["LEAK: no"] * 100)
    backend = backend_for(scripted, answer, judge=lambda request: next(verdicts))
    out = run(backend)
    judged = [k for k in backend.kinds() if k == "judge"]
    assert len(judged) == 20  # 10 survivors in round 0 (all ambiguous -> fail), 10 in round 1
    qa = out["augmented_forget_set"].query("kind == 'qa'")
    assert set(qa["round"]) == {1}
    checks = {c["check"]: c for c in out["verification_report"]["checks"]}
    assert checks["privacy_judge"]["failed"] == 10 and checks["well_formed"]["failed"] == 40


def test_plain_prose_verdicts_are_read_and_counted_by_label(scripted, run):
    def answer(request, k):
        return answer_about(request, k, f" in round seed {request.sampling.seed}") if k == 2 else "nope"
    verdicts = iter(
        ["The answer reveals her email address."] * 4 + ["I'm not sure whether it reveals anything."] * 6
        + ["No, the answer doesn't reveal any private information."] * 100
    )
    out = run(backend_for(scripted, answer, judge=lambda request: next(verdicts)))
    report = out["verification_report"]
    assert report["failure_reasons"]["privacy_judge"] == {"verdict leak": 4, "verdict ambiguous": 6}
    assert report["summary"]["verified"] == 10
    assert set(out["augmented_forget_set"].query("kind == 'qa'")["round"]) == {1}


def test_completions_and_general_mixing_ratio(scripted, run):
    out = run(backend_for(scripted, answer_about),
              {"completion": {"ratio": 0.5, "prompt_fraction": 0.25, "min_words": 6}, "general": {"source": "retain", "ratio": 2.0}})
    data = out["augmented_forget_set"]
    qa, completion, general = (data[data["kind"] == k] for k in ("qa", "completion", "general"))
    assert len(completion) == 5 and len(general) == 2 * (10 + 5)
    for row in completion.itertuples():
        source = qa[qa["id"] == row.id.removesuffix("/completion")].iloc[0]
        words = source.answer.split()
        assert row.question == " ".join(words[: round(0.25 * len(words))]) and f"{row.question} {row.answer}" == source.answer
    assert set(general["source_id"]) == set(RETAIN["id"]) and general["id"].is_unique


def test_completion_split_is_25_percent_of_words():
    qa = pd.DataFrame([{c: "" for c in CONTRACT} | {"id": "a", "kind": "qa", "fallback": False, "round": 0,
                                                   "answer": "one two three four five six seven eight"}])
    row = completion_records(qa, {"ratio": 1.0}, seed=0).iloc[0]
    assert (row["question"], row["answer"]) == ("one two", "three four five six seven eight")


def test_rerun_with_cache_makes_zero_backend_calls(scripted, run):
    first = backend_for(scripted, answer_about)
    out1 = run(first, cache=True)
    assert out1["verification_report"]["llm_calls"]["backend_calls_this_run"] == len(first.calls) > 0
    second = backend_for(scripted, lambda r, k: "CHANGED")
    out2 = run(second, cache=True)
    assert second.calls == []
    pd.testing.assert_frame_equal(out1["augmented_forget_set"], out2["augmented_forget_set"])
    calls = out2["verification_report"]["llm_calls"]
    assert calls["backend_calls_this_run"] == 0 and calls["per_verified_pair"] == calls["requests"] / 10
