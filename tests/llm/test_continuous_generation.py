"""Continuous batching on the tiny model: same text as `model.generate`, rows leave and join, seeded per prompt."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from relearn_pipeline import continuous_generation
from relearn_pipeline.continuous_generation import UnsupportedModel, choose_tokens, sample_continuous
from relearn_pipeline.generation import generate_texts
from relearn_pipeline.llm import GenerationRequest, SamplingParams
from relearn_pipeline.llm.transformers_backend import TransformersBackend
from relearn_pipeline.prompting import chat_prompt

# Prompts from 1 to 90 characters, so joining left-pads the running batch and the newcomers both ways.
LENGTHS = (3, 40, 7, 90, 12, 25, 60, 5, 1, 33)


@pytest.fixture()
def prompts(tiny_bundle):
    return [chat_prompt(tiny_bundle.tokenizer, [{"role": "user", "content": "q" * k}]) for k in LENGTHS]


@pytest.fixture()
def ragged_eos(tiny_bundle):
    """Make a third of the vocabulary end a sequence, so rows end at different steps."""
    config = tiny_bundle.model.generation_config
    saved = config.eos_token_id
    config.eos_token_id = list(range(0, tiny_bundle.model.config.vocab_size, 3))
    yield
    config.eos_token_id = saved


def _forwards(model):
    """(rows, new positions, real prompt tokens among them) of every forward call."""
    calls = []

    def hook(_module, _args, kwargs, _out):
        rows, width = kwargs["input_ids"].shape
        calls.append((rows, width, int(kwargs["attention_mask"][:, -width:].sum())))

    return calls, model.register_forward_hook(hook, with_kwargs=True)


@pytest.mark.parametrize("batch_size", [1, 3, 10])
def test_greedy_matches_model_generate_one_prompt_at_a_time(tiny_bundle, prompts, batch_size):
    expected = generate_texts(tiny_bundle, prompts, max_new_tokens=20, batch_size=1, progress=False)
    got = sample_continuous(tiny_bundle, prompts, SamplingParams(max_new_tokens=20, temperature=0), batch_size=batch_size)
    assert got == expected


def test_candidates_do_not_depend_on_batch_or_neighbours(tiny_bundle, prompts, ragged_eos):
    sampling = SamplingParams(max_new_tokens=16, temperature=1.0, top_p=0.9, top_k=50, seed=7)
    alone = sample_continuous(tiny_bundle, prompts, sampling, n=3, batch_size=1)
    together = sample_continuous(tiny_bundle, prompts, sampling, n=3, batch_size=4)
    reversed_order = sample_continuous(tiny_bundle, prompts[::-1], sampling, n=3, batch_size=4)[::-1]
    assert alone == together == reversed_order
    assert all(len(candidates) == 3 for candidates in alone)
    assert any(len(set(candidates)) > 1 for candidates in alone)  # the candidates are draws, not copies
    other_seed = sample_continuous(tiny_bundle, prompts, dataclasses.replace(sampling, seed=8), n=3, batch_size=4)
    assert other_seed != alone


def test_ended_rows_leave_and_waiting_prompts_join(tiny_bundle, prompts, ragged_eos):
    sampling = SamplingParams(max_new_tokens=12, temperature=1.0, seed=1)
    calls, handle = _forwards(tiny_bundle.model)
    done = []
    try:
        out = sample_continuous(tiny_bundle, prompts, sampling, n=2, batch_size=3, on_done=lambda i, t: done.append(i))
    finally:
        handle.remove()
    prefill_tokens = sum(real for _, width, real in calls if width > 1)
    steps = [rows for rows, width, _ in calls if width == 1]
    assert sorted(done) == list(range(len(prompts)))  # each prompt delivered once
    assert max(steps) <= 3 * 2  # never more rows than batch_size x n
    assert len(set(steps)) > 2  # the batch shrank as rows ended and grew as prompts joined
    prompt_tokens = [len(tiny_bundle.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    # Each prompt's tokens run once for both its candidates, and common prefixes once per refill.
    assert prefill_tokens < sum(prompt_tokens)
    lengths = [len(tiny_bundle.tokenizer(t, add_special_tokens=False)["input_ids"]) for c in out for t in c]
    assert max(lengths) <= 12 and min(lengths) < 12


def test_shared_runs_split_prompts_by_common_prefix():
    ids = [[1, 2, 3, 4, 5], [1, 2, 3, 4, 6, 7], [1, 2, 3, 9], [1, 2, 8], [5, 5, 5, 5]]
    assert continuous_generation.shared_runs(ids, minimum=3) == [(0, 3, 3), (3, 4, 0), (4, 5, 0)]
    assert continuous_generation.shared_runs(ids, minimum=4) == [(0, 2, 4), (2, 3, 0), (3, 4, 0), (4, 5, 0)]
    # A prompt that is all prefix keeps its last token to run itself (its logits start the answer).
    assert continuous_generation.shared_runs([[1, 2, 3], [1, 2, 3, 4]], minimum=2) == [(0, 2, 2)]


def test_top_k_one_and_tiny_top_p_are_greedy(tiny_bundle, prompts):
    greedy = sample_continuous(tiny_bundle, prompts[:4], SamplingParams(max_new_tokens=8, temperature=0), batch_size=2)
    for narrow in (SamplingParams(max_new_tokens=8, temperature=1.5, top_k=1), SamplingParams(max_new_tokens=8, temperature=1.5, top_p=1e-9)):
        assert sample_continuous(tiny_bundle, prompts[:4], narrow, n=2, batch_size=2) == [[g[0]] * 2 for g in greedy]


def test_choose_tokens_keeps_only_the_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    generators = [torch.Generator().manual_seed(s) for s in range(1)]
    drawn = {choose_tokens(logits, SamplingParams(temperature=1.0, top_p=0.75), generators)[0] for _ in range(200)}
    assert drawn == {0, 1}  # 0.5 + 0.3 reaches 0.75; 0.15 and 0.05 never drawn
    drawn = {choose_tokens(logits, SamplingParams(temperature=1.0, top_k=3), generators)[0] for _ in range(300)}
    assert drawn == {0, 1, 2}


def test_refuses_greedy_with_several_candidates(tiny_bundle, prompts):
    with pytest.raises(ValueError, match="temperature > 0"):
        sample_continuous(tiny_bundle, prompts, SamplingParams(temperature=0), n=2)


def test_backend_falls_back_to_fixed_batches_for_unsupported_models(tiny_bundle, monkeypatch, caplog):
    def unsupported(*_args):
        raise UnsupportedModel("TinyModel: its cache is not a plain key/value cache")

    monkeypatch.setattr(continuous_generation, "_prefill", unsupported)
    sampling = SamplingParams(temperature=0.0, max_new_tokens=5)
    requests = [GenerationRequest.chat([{"role": "user", "content": f"q{i}"}], sampling) for i in range(3)]
    backend = TransformersBackend(tiny_bundle, batch_size=2)
    out = backend.generate(requests)
    assert not backend.continuous and "fixed batches" in caplog.text
    assert out == TransformersBackend(tiny_bundle, batch_size=2, continuous=False).generate(requests)
    monkeypatch.undo()
    assert out == TransformersBackend(tiny_bundle, batch_size=2).generate(requests)  # greedy: same text either way


def test_a_nucleus_wider_than_the_window_draws_from_the_whole_vocabulary():
    flat = torch.zeros(1, 1000)  # uniform: a 0.9 nucleus holds 900 tokens, far more than the window
    generator = torch.Generator().manual_seed(0)
    drawn = {choose_tokens(flat, SamplingParams(temperature=1.0, top_p=0.9), [generator])[0] for _ in range(400)}
    assert len(drawn) > continuous_generation.NUCLEUS_WINDOW
