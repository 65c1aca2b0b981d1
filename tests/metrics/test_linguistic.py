"""Linguistic Score: each formula on hand-worked examples, and perplexity with the question masked."""

import math

import pytest
import torch

from relearn_pipeline.metrics import linguistic as ls
from relearn_pipeline.metrics.token_scores import TokenScores, score_answers
from relearn_pipeline.prompting import IGNORE_INDEX, encode_qa


def test_words_lowercases_and_drops_punctuation():
    assert ls.words("The cat, the DOG's well-known toy.") == ["the", "cat", "the", "dog's", "well-known", "toy"]


def test_brunet_hand_worked():
    # N = 4, V = 3: W = 4 ** (3 ** -0.165) = 4 ** 0.834207 = 3.178659
    assert ls.brunet_index("the cat the dog") == pytest.approx(3.178659, abs=1e-6)
    # One word: 1 ** 1 = 1.
    assert ls.brunet_index("hello") == pytest.approx(1.0)


def test_brunet_empty_text_is_capped_not_infinite():
    assert ls.brunet_index("") == ls.EMPTY_BRUNET == 1000.0
    assert ls.brunet_index(" ... !") == 1000.0  # punctuation only: no words


def test_honore_hand_worked():
    # N = 4, V = 3, V1 = 2 (cat, dog): 100 ln 4 / (1 - 2/3 + 0.1) = 319.914083
    assert ls.honore_statistic("the cat the dog") == pytest.approx(319.914083, abs=1e-5)


def test_honore_edge_cases():
    assert ls.honore_statistic("") == 0.0  # N = 0
    assert ls.honore_statistic("hello") == 0.0  # N = 1
    assert ls.honore_statistic("hello hello") == pytest.approx(100 * math.log(2) / 1.1)  # V1 = 0
    # All unique (V1 = V): denominator 0.1, H = 1000 ln N.
    assert ls.honore_statistic("a b c") == pytest.approx(1098.612289, abs=1e-5)


def test_transforms_and_means_hand_worked():
    assert ls.perplexity_transform(3.0) == 0.25
    assert ls.brunet_transform(1.0) == 0.5
    assert ls.honore_transform(1.0) == 0.5
    assert ls.honore_transform(0.0) == 0.0
    # 3 / (1/0.25 + 1/0.5 + 1/0.5) = 3 / 8
    assert ls.harmonic_mean([0.25, 0.5, 0.5]) == pytest.approx(0.375)
    assert ls.harmonic_mean([0.25, 0.0, 0.5]) == 0.0
    assert ls.combine(3.0, 1.0, 1.0) == pytest.approx((0.375, 1.25 / 3))
    # Transforms are the sigmoids of -ln PPL, -ln W and ln H.
    sigmoid = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    assert ls.perplexity_transform(7.0) == pytest.approx(sigmoid(-math.log(7.0)))
    assert ls.honore_transform(9.0) == pytest.approx(sigmoid(math.log(9.0)))


def test_perplexity_from_token_scores():
    scores = TokenScores(log_probs=[-1.0, -3.0], predictions=[0, 0], labels=[0, 0], standardized=[0, 0])
    assert ls.perplexity(scores) == pytest.approx(math.exp(2.0))


def test_aggregate_ls_transforms_the_means():
    answers = ["the cat the dog", "a b c"]
    scores = [
        TokenScores([-math.log(3.0)] * 2, [0, 0], [0, 0], [0, 0]),
        TokenScores([-math.log(5.0)] * 3, [0, 0, 0], [0, 0, 0], [0, 0, 0]),
    ]
    result = ls.linguistic_scores(answers, scores)
    assert result.perplexity.per_sample == pytest.approx([3.0, 5.0])
    w = [4 ** (3**-0.165), 3 ** (3**-0.165)]
    h = [319.914083, 1098.612289]
    assert result.brunet.per_sample == pytest.approx(w)
    assert result.honore.per_sample == pytest.approx(h)
    expected = ls.harmonic_mean([1 / 5, 1 / (1 + sum(w) / 2), (sum(h) / 2) / (1 + sum(h) / 2)])
    assert result.ls.value == pytest.approx(expected)
    assert result.ls.per_sample[0] == pytest.approx(ls.combine(3.0, w[0], h[0])[0])
    assert math.isnan(ls.linguistic_scores([], []).ls.value)


def test_perplexity_masks_the_question_manual_computation(tiny_bundle):
    question, answer = "Where was Ada born?", "In Paris."
    [scores] = score_answers(tiny_bundle, [question], [answer])
    # Manual: run the whole prompt + answer + EOS, take log p(token_t | <t) only at answer positions.
    feature = encode_qa(tiny_bundle.tokenizer, question, answer)
    ids = torch.tensor([feature["input_ids"]])
    labels = torch.tensor(feature["labels"])
    answer_length = len(tiny_bundle.tokenizer(answer, add_special_tokens=False)["input_ids"]) + 1
    assert int((labels != IGNORE_INDEX).sum()) == answer_length == len(scores)
    with torch.no_grad():
        logits = tiny_bundle.model(ids).logits[0]
    log_probs = torch.log_softmax(logits, -1)
    total = 0.0
    for t in range(1, len(feature["input_ids"])):
        if labels[t] != IGNORE_INDEX:
            total += float(log_probs[t - 1, ids[0, t]])
    manual_ppl = math.exp(-total / answer_length)
    assert ls.perplexity(scores) == pytest.approx(manual_ppl, rel=1e-5)
    # Same as transformers' own loss with the question's labels masked.
    with torch.no_grad():
        hf_loss = tiny_bundle.model(ids, labels=labels.unsqueeze(0)).loss
    assert ls.perplexity(scores) == pytest.approx(math.exp(float(hf_loss)), rel=1e-5)
    # The question is conditioned on, not scored: another question changes the figure.
    [other] = score_answers(tiny_bundle, ["Who is Ada?"], [answer])
    assert len(other) == len(scores)
    assert ls.perplexity(other) != pytest.approx(ls.perplexity(scores), rel=1e-9)


def test_batched_scores_equal_one_at_a_time(tiny_bundle):
    questions = ["Q one?", "A much longer second question here?", "Q3"]
    answers = ["short", "a somewhat longer answer text", ""]
    batched = score_answers(tiny_bundle, questions, answers, batch_size=3)
    for q, a, b in zip(questions, answers, batched):
        [single] = score_answers(tiny_bundle, [q], [a], batch_size=1)
        assert single.labels == b.labels
        assert single.log_probs == pytest.approx(b.log_probs, abs=1e-4)
    assert len(batched[2]) == 1  # an empty answer still scores its EOS
