"""The transformers backend on the tiny model, and the prompt templates in conf/base/prompts/."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from relearn_pipeline.llm import CachedBackend, GenerationRequest, ResponseCache, SamplingParams, load_prompt_templates
from relearn_pipeline.llm.transformers_backend import TransformersBackend
from relearn_pipeline.pipelines.augment.variants import QUESTION_VARIANTS, required_prompts

PROMPTS = Path(__file__).resolve().parents[2] / "conf/base/prompts"


def _prompt_files() -> dict:
    return {p.stem: yaml.safe_load(p.read_text()) for p in PROMPTS.glob("*.yml")}


def test_batched_seeded_candidates_and_callback(tiny_bundle):
    backend = TransformersBackend(tiny_bundle, batch_size=2)
    sampling = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=6, seed=3)
    requests = [GenerationRequest.chat([{"role": "user", "content": "hi " * (i + 1)}], sampling, n=3) for i in range(3)]
    seen = []
    out = backend.generate(requests, on_result=lambda i, texts: seen.append(i))
    assert [len(c) for c in out] == [3, 3, 3] and sorted(seen) == [0, 1, 2]
    assert out == TransformersBackend(tiny_bundle, batch_size=2).generate(requests)  # seeded
    greedy = SamplingParams(temperature=0.0, max_new_tokens=4)
    with pytest.raises(ValueError, match="temperature > 0"):
        backend.generate([GenerationRequest.chat([{"role": "user", "content": "x"}], greedy, n=2)])


def test_cached_transformers_rerun_is_free(tiny_bundle, tmp_path):
    sampling = SamplingParams(temperature=0.0, max_new_tokens=4)
    requests = [GenerationRequest.chat([{"role": "user", "content": f"q{i}"}], sampling) for i in range(3)]
    first = CachedBackend(TransformersBackend(tiny_bundle), ResponseCache(tmp_path / "c.jsonl"))
    out = first.generate(requests)
    second = CachedBackend(TransformersBackend(tiny_bundle), ResponseCache(tmp_path / "c.jsonl"))
    assert second.generate(requests) == out and second.counts.backend_calls == 0


def test_every_prompt_file_exists_and_renders_its_fields():
    templates = load_prompt_templates(_prompt_files(), required_prompts(QUESTION_VARIANTS))
    for variant in QUESTION_VARIANTS:
        messages = templates[f"question_{variant}"].render(subject="Ann Lee", question="Where does Ann Lee live?")
        assert "Where does Ann Lee live?" in messages[-1]["content"] and "Ann Lee" in messages[-1]["content"]
        assert "$" not in messages[-1]["content"]
    judge = templates["privacy_judge"].render(subject="Ann Lee", question="Q?", answer="A.")
    assert "LEAK: yes" in judge[-1]["content"] and "GDPR" in judge[0]["content"]
    assert "parents" in judge[0]["content"] and "email" in judge[0]["content"]
    assert templates["fallback_answer"].render_text(subject="Ann Lee", question="Q?").startswith("Ann Lee")
    with pytest.raises(ValueError, match="answer_vague.yml uses \\$question"):
        templates["answer_vague"].render(subject="Ann Lee")
    with pytest.raises(ValueError, match="lacks question_noisy.yml"):
        load_prompt_templates({k: v for k, v in _prompt_files().items() if k != "question_noisy"}, required_prompts(QUESTION_VARIANTS))
