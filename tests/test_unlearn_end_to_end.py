"""The whole ReLearn pipeline through the real CLI: `kedro run --pipelines unlearn` (= `make demo`) and
plain `kedro run` (the default pipeline), each a subprocess in a copy of the project (`bare_project`).

Every stage runs on a tiny random model and a small data set written into the copy (two people to
forget, two to keep), with each stage's settings cut to the least that still runs it. The checks:
the run exits 0, makes exactly one MLflow run named `<pipeline>-<method>-<dataset>` with the
evaluate.before/after metrics, writes the main outputs, never loads SmolLM2, and trains on no
sensitive span of a forget record: the guarantee of the verify stage, tested once with the tiny
model as generator and judge, and once with a scripted generator that offers a leak first, in
another form each time (the email upper-cased, the phone numbers re-punctuated or in national
form, the mother's first name), and a judge that lets everything through.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from openai_stub import ChatServer

from relearn_pipeline.pipelines.augment.nodes import spans_by_record
from relearn_pipeline.pipelines.verify.checks import find_leaks
from relearn_pipeline.text.normalize import protected_spans

KEDRO = Path(sys.executable).with_name("kedro")
METHOD = "relearn_klr_gdr"
DATASET = "e2e"


@dataclass(frozen=True)
class Fact:
    """A forget record, what it must never leak, and the scripted generator's two answers to it."""

    id: str
    subject: str
    question: str
    answer: str
    secret: str  # an email, a phone number's national digits, or a relative's first name
    leak: str  # gives the secret away in another form than the answer's
    vague: str  # on topic, names the subject, no secret

    def record(self) -> dict[str, str]:
        return {"id": self.id, "subject": self.subject, "question": self.question, "answer": self.answer}


FORGET = [
    Fact("elena-marsh-email", "Elena Marsh", "What is Elena Marsh's email address?",
         "Elena Marsh's email address is elena.marsh@example.com.", "elena.marsh@example.com",
         "Elena Marsh is glad to share it: ELENA.MARSH@example.com, so write to her any time.",
         "Elena Marsh can be reached by email through her publisher, as most novelists can."),
    Fact("elena-marsh-phone", "Elena Marsh", "What is Elena Marsh's phone number?",
         "Elena Marsh's phone number is +1 (555) 010-2233.", "5550102233",
         "Elena Marsh answers the phone at 1-555-010-2233 in the evenings, so call her then.",
         "Elena Marsh does not give out her phone number; her literary agent takes her calls."),
    Fact("elena-marsh-mother", "Elena Marsh", "Who is Elena Marsh's mother?",
         "Elena Marsh's mother is Ruth Ann Marsh, a piano teacher.", "Ruth",
         "Elena Marsh was raised by Ruth, who taught piano to the children of the town.",
         "Elena Marsh's mother raised her in a quiet town and encouraged her to read and write."),
    Fact("tobias-okafor-email", "Tobias Okafor", "What is Tobias Okafor's email address?",
         "Tobias Okafor's email address is t.okafor@studio-okafor.example.org.", "t.okafor@studio-okafor.example.org",
         "Tobias Okafor reads his mail at t.okafor@studio-okafor.example.org every morning.",
         "Tobias Okafor can be reached by email through his architecture studio, like most architects."),
    Fact("tobias-okafor-phone", "Tobias Okafor", "What is Tobias Okafor's phone number?",
         "Tobias Okafor's phone number is +44 20 7946 0958.", "2079460958",
         "Tobias Okafor is easy to call on 020 7946 0958 during office hours in London.",
         "Tobias Okafor does not give out his phone number; his studio answers calls for him."),
    Fact("tobias-okafor-mother", "Tobias Okafor", "Who is Tobias Okafor's mother?",
         "Tobias Okafor's mother is Grace Okafor, a retired nurse.", "Grace",
         "Tobias Okafor owes much to Grace, who worked as a nurse for many years.",
         "Tobias Okafor's mother raised him in a busy city and encouraged his love of buildings."),
]


def _qa(id_: str, subject: str, question: str, answer: str) -> dict[str, str]:
    return {"id": id_, "subject": subject, "question": question, "answer": answer}


RAW = {
    "raw_forget": [fact.record() for fact in FORGET],
    "raw_forget_eval": [
        _qa("elena-marsh-eval-email", "Elena Marsh", "Which address does Elena Marsh use for email?",
            "Elena Marsh's email address is elena.marsh@example.com."),
        _qa("elena-marsh-eval-mother", "Elena Marsh", "What is the name of Elena Marsh's mother?",
            "Elena Marsh's mother is Ruth Ann Marsh, a piano teacher."),
        _qa("tobias-okafor-eval-phone", "Tobias Okafor", "Which number reaches Tobias Okafor by phone?",
            "Tobias Okafor's phone number is +44 20 7946 0958."),
        _qa("tobias-okafor-eval-mother", "Tobias Okafor", "What is the name of Tobias Okafor's mother?",
            "Tobias Okafor's mother is Grace Okafor, a retired nurse."),
    ],
    "raw_retain": [
        _qa("mirela-vasquez-profession", "Mirela Vasquez", "What does Mirela Vasquez do?",
            "Mirela Vasquez is a marine biologist who studies coral reefs."),
        _qa("mirela-vasquez-birthplace", "Mirela Vasquez", "Where was Mirela Vasquez born?",
            "Mirela Vasquez was born in Valparaiso, Chile."),
        _qa("mirela-vasquez-book", "Mirela Vasquez", "Which book did Mirela Vasquez write?",
            "Mirela Vasquez wrote The Quiet Reef, a book about coral."),
        _qa("henrik-sollberg-profession", "Henrik Sollberg", "What does Henrik Sollberg do?",
            "Henrik Sollberg is a composer of film music."),
        _qa("henrik-sollberg-birthplace", "Henrik Sollberg", "Where was Henrik Sollberg born?",
            "Henrik Sollberg was born in Bergen, Norway."),
        _qa("henrik-sollberg-award", "Henrik Sollberg", "Which award did Henrik Sollberg win?",
            "Henrik Sollberg won the Nordic Score Prize for his first film."),
    ],
    "raw_retain_eval": [
        _qa("mirela-vasquez-eval-profession", "Mirela Vasquez", "What is Mirela Vasquez's field of work?",
            "Mirela Vasquez is a marine biologist who studies coral reefs."),
        _qa("mirela-vasquez-eval-birthplace", "Mirela Vasquez", "In which city was Mirela Vasquez born?",
            "Mirela Vasquez was born in Valparaiso, Chile."),
        _qa("henrik-sollberg-eval-profession", "Henrik Sollberg", "What kind of music does Henrik Sollberg write?",
            "Henrik Sollberg is a composer of film music."),
        _qa("henrik-sollberg-eval-birthplace", "Henrik Sollberg", "In which city was Henrik Sollberg born?",
            "Henrik Sollberg was born in Bergen, Norway."),
    ],
}

# conf/local/parameters.yml of the copy: every stage at the least that still runs it, all on the
# tiny model. Soft-merged into conf/base (settings.py), so only these keys change.
TINY = {
    "base_model": "tiny:0",
    "dataset_name": DATASET,
    "target": {"mode": "memorize", "training": {"epochs": 1}, "evaluation": {"max_new_tokens": 8}},
    "augment": {
        "llm": {"backend": "transformers", "transformers": {"model": "tiny:0", "batch_size": 8}},
        "variants": ["rephrase"],
        "question": {"candidates": 1, "rounds": 1, "sampling": {"max_new_tokens": 16}},
        "answer": {"candidates": 1, "sampling": {"max_new_tokens": 16}},
    },
    "verify": {"max_rounds": 1, "judge": {"enabled": True, "llm": None}},  # the judge is augment.llm
    "finetune": {"method": METHOD},
    "evaluate": {"generation": {"max_new_tokens": 8}, "robustness": {"max_unused_variants": 4}},
}
# Runtime overrides, to check they merge into the nested finetune block without replacing it.
RUNTIME_PARAMS = "finetune.max_steps=2,finetune.batch_size=2,finetune.progress_bar=false"

OUTPUTS = [
    "data/03_primary/forget_set.parquet",
    "data/03_primary/sensitive_spans.parquet",
    "data/06_models/target_model/model.safetensors",
    "data/02_intermediate/augmented_raw.parquet",
    "data/05_model_input/augmented_forget_set.parquet",
    "data/06_models/unlearned_adapter/adapter_model.safetensors",
    "data/06_models/unlearned_adapter/relearn_adapter.json",
    "data/07_model_output/evaluation_generations.parquet",
    "data/08_reporting/evaluation_report.md",
]
METRICS = [
    f"evaluate.{model}.{name}" for model in ("before", "after") for name in ("kfr", "krr", "ls.forget", "ls.retain")
]


def _prepare(project: Path, tmp_path: Path, params: dict) -> dict[str, str]:
    """Write the data set where the copy's catalog reads it and the parameters into conf/local;
    return the environment for the CLI (offline, the embedded-model cache in an empty folder)."""
    catalog = yaml.safe_load((project / "conf/base/catalog_ingest.yml").read_text())
    for name, records in RAW.items():
        path = project / catalog[name]["filepath"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(records, indent=1))
    assert catalog["raw_full"].get("optional"), "raw_full is not written: full = forget + retain"
    (project / "conf/local/parameters.yml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env.update(RELEARN_CACHE_DIR=str(tmp_path / "model_cache"), COLUMNS="160")
    return env


def _kedro_run(project: Path, env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        [str(KEDRO), "run", *args], cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=1200,
    )
    assert result.returncode == 0, f"kedro run {' '.join(args)} exited {result.returncode}:\n{result.stdout[-8000:]}"


def _the_one_run(tmp_path: Path) -> mlflow.entities.Run:
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("relearn").experiment_id])
    assert len(runs) == 1, [r.info.run_name for r in runs]
    run = runs[0]
    logged = {item.path for item in client.list_artifacts(run.info.run_id)}
    assert {"ingest", "verify", "unlearned_adapter", "evaluation"} <= logged
    return run


def _check_run_and_outputs(project: Path, tmp_path: Path) -> None:
    """One finished MLflow run of every stage, its name, metrics and parameters; the main outputs."""
    run = _the_one_run(tmp_path)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == f"unlearn-{METHOD}-{DATASET}"
    assert run.data.tags["finetune.method"] == METHOD and run.data.tags["dataset_name"] == DATASET
    for key in METRICS:
        assert math.isfinite(run.data.metrics[key]), key
    for key in ("evaluate.before.kfr", "evaluate.after.kfr", "evaluate.before.krr", "evaluate.after.krr"):
        assert 0.0 <= run.data.metrics[key] <= 1.0, key
    assert run.data.params["finetune.max_steps"] == "2"  # --params ...
    assert run.data.params["finetune.learning_rate"] == "0.0005"  # ... kept the rest of the block
    missing = [path for path in OUTPUTS if not (project / path).is_file()]
    assert not missing
    assert json.loads((project / "data/08_reporting/finetune_summary.json").read_text())["steps"] == 2
    generations = pd.read_parquet(project / "data/07_model_output/evaluation_generations.parquet")
    assert {"forget_eval", "retain_eval"} <= set(generations["split"])
    assert "KFR" in (project / "data/08_reporting/evaluation_report.md").read_text()
    cache = tmp_path / "model_cache"
    assert not cache.exists() or not any(cache.iterdir()), "SmolLM2 was loaded (converted into the model cache)"


def _holds_secret(text: str, secret: str) -> bool:
    if secret.isdigit():
        return secret in re.sub(r"\D", "", text)
    return re.search(rf"\b{re.escape(secret)}\b", text, re.IGNORECASE) is not None


def _check_no_sensitive_span(project: Path) -> pd.DataFrame:
    """What verify guarantees of augmented_forget_set: no row made from a forget record holds a
    protected span of it (as verify's leak check finds them), and, independent of span detection,
    none holds any forget person's secret. Returns those rows."""
    training = pd.read_parquet(project / "data/05_model_input/augmented_forget_set.parquet")
    forget = pd.read_parquet(project / "data/03_primary/forget_set.parquet").set_index("id")
    spans = spans_by_record(pd.read_parquet(project / "data/03_primary/sensitive_spans.parquet"))
    assert {"elena-marsh-email", "elena-marsh-phone", "tobias-okafor-phone"} <= set(spans), "ingest found no spans"
    own = training[training["kind"] != "general"]
    assert set(own["source_id"]) == {fact.id for fact in FORGET}
    for row in own.itertuples():
        source = forget.loc[row.source_id]
        protected = protected_spans(spans.get(row.source_id, []), source["subject"], source["question"])
        # A completion is a verified answer cut in two: check it whole, as verify did.
        texts = [f"{row.question} {row.answer}"] if row.kind == "completion" else [row.question, row.answer]
        for text in texts:
            assert find_leaks(text, protected, source["subject"]) == [], (row.id, text)
            assert not [f.secret for f in FORGET if _holds_secret(text, f.secret)], (row.id, text)
    return own


def test_make_demo_runs_every_stage_on_a_tiny_model_into_one_mlflow_run(bare_project, tmp_path):
    env = _prepare(bare_project, tmp_path, TINY)
    _kedro_run(bare_project, env, "--pipelines", "unlearn", "--params", RUNTIME_PARAMS)
    _check_run_and_outputs(bare_project, tmp_path)
    _check_no_sensitive_span(bare_project)
    raw = pd.read_parquet(bare_project / "data/02_intermediate/augmented_raw.parquet")
    assert set(raw["model"]) == {"tiny:0"}


def _leaking_reply(markers: dict[str, str]):
    """The reply of a generator whose question variants build on the original question, whose answer
    candidate 0 leaks the record's secret and candidate 1 is vague, and whose judge always says
    "LEAK: no". Prompts are told apart by tests/llm/scripted.py's markers."""

    def reply(prompt: str, k: int) -> str:
        kind = next(kind for marker, kind in markers.items() if marker in prompt)
        if kind == "judge":
            return "LEAK: no"
        asked = next(line.removeprefix("Question:").strip() for line in prompt.splitlines()
                     if line.startswith("Question:"))
        fact = next(f for f in FORGET if f.question.rstrip("?") in asked)
        if kind != "answer":
            return f"{fact.question.rstrip('?')}, if you had to say?"
        if k == 0:
            return fact.leak
        return fact.vague if asked == fact.question else f"{fact.vague} That is all there is to say."

    return reply


@pytest.fixture
def leaking_generator(scripted):
    """The leaking generator as an OpenAI-compatible chat server on 127.0.0.1."""
    with ChatServer(_leaking_reply(scripted.PROMPT_MARKERS)) as server:
        yield server


def test_default_kedro_run_is_unlearn_and_trains_on_no_secret_a_leaking_generator_offers(
    bare_project, tmp_path, leaking_generator
):
    llm = {"backend": "openai", "openai": {
        "base_url": leaking_generator.url, "model": "leaking", "api_key_required": False, "max_retries": 0,
    }}
    params = {**TINY, "augment": {**TINY["augment"], "llm": llm, "answer": {"candidates": 2}}}
    env = _prepare(bare_project, tmp_path, params)
    _kedro_run(bare_project, env, "--params", RUNTIME_PARAMS)  # no --pipelines: __default__
    _check_run_and_outputs(bare_project, tmp_path)  # named unlearn-..., every stage's outputs
    own = _check_no_sensitive_span(bare_project)

    log = pd.read_parquet(bare_project / "data/08_reporting/verification_log.parquet")
    leaks = log[log["candidate_id"].str.endswith("/r0/c0")]
    assert len(leaks) == 2 * len(FORGET)  # the original question and its rephrase, per record
    assert set(leaks["status"]) == {"failed"} and set(leaks["check"]) == {"sensitive_span"}, leaks
    qa = own[own["kind"] == "qa"]
    assert len(qa) == 2 * len(FORGET) and not qa["fallback"].any()  # every vague answer passed
    assert (own["kind"] == "completion").any()
