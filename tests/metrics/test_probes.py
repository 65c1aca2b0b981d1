"""Probes: exact memorization, extraction strength, each MIA score and the AUC, by hand."""

import math
import zlib

import pytest
import torch
from sklearn.metrics import roc_auc_score

from relearn_pipeline.metrics import probes
from relearn_pipeline.metrics.token_scores import TokenScores, score_answers
from relearn_pipeline.prompting import encode_qa


def _scores(predictions, labels, log_probs=None, standardized=None):
    n = len(labels)
    return TokenScores(log_probs or [-1.0] * n, predictions, labels, standardized or [0.0] * n)


def test_exact_memorization():
    assert probes.exact_memorization(_scores([1, 2, 3, 4], [1, 9, 3, 4])) == 0.75
    assert probes.exact_memorization(_scores([5], [6])) == 0.0
    assert math.isnan(probes.exact_memorization(_scores([], [])))


def test_extraction_strength():
    # Suffix from position 2 matches, from 1 it does not: k = 2 of 4 -> 1 - 2/4.
    assert probes.extraction_strength(_scores([1, 2, 3, 4], [1, 9, 3, 4])) == 0.5
    assert probes.extraction_strength(_scores([1, 2, 3], [1, 2, 3])) == 1.0  # k = 0
    assert probes.extraction_strength(_scores([1, 2, 3], [1, 2, 9])) == 0.0  # k = n
    assert probes.extraction_strength(_scores([9, 2, 3, 4, 5], [1, 2, 3, 4, 5])) == pytest.approx(0.8)


def test_loss_and_zlib():
    scores = _scores([0, 0, 0], [0, 0, 0], log_probs=[-1.0, -2.0, -3.0])
    assert probes.loss_score(scores) == 2.0
    assert len(zlib.compress(b"Paris, France")) == 21
    assert probes.zlib_score(scores, "Paris, France") == pytest.approx(2.0 / 21)


def test_min_k_and_min_k_plus_plus():
    log_probs = [-1.0, -2.0, -3.0, -4.0, -5.0]
    standardized = [0.5, -1.0, 2.0, -3.0, 0.0]
    scores = _scores([0] * 5, [0] * 5, log_probs=log_probs, standardized=standardized)
    # k = 0.4 of 5 tokens = 2 lowest: (-5, -4) -> mean -4.5 -> score 4.5
    assert probes.min_k_score(scores, 0.4) == 4.5
    # lowest two standardised: (-3, -1) -> mean -2 -> score 2
    assert probes.min_k_plus_plus_score(scores, 0.4) == 2.0
    # At least one token is kept.
    assert probes.min_k_score(_scores([0, 0], [0, 0], log_probs=[-1.0, -7.0]), 0.4) == 7.0


def test_standardized_log_probs_match_a_manual_vocabulary_computation(tiny_bundle):
    [scores] = score_answers(tiny_bundle, ["Who?"], ["Ada"])
    feature = encode_qa(tiny_bundle.tokenizer, "Who?", "Ada")
    ids = torch.tensor([feature["input_ids"]])
    with torch.no_grad():
        log_probs = torch.log_softmax(tiny_bundle.model(ids).logits[0], -1)
    first = len(feature["input_ids"]) - len(scores)  # first answer token position
    position = first - 1  # the position predicting it
    dist = log_probs[position]
    p = dist.exp()
    mu = float((p * dist).sum())
    sigma = math.sqrt(float((p * dist**2).sum()) - mu**2)
    gold = feature["input_ids"][first]
    assert scores.log_probs[0] == pytest.approx(float(dist[gold]), abs=1e-5)
    assert scores.standardized[0] == pytest.approx((float(dist[gold]) - mu) / sigma, abs=1e-4)
    assert scores.predictions[0] == int(dist.argmax())


def test_membership_auc_hand_worked_and_matches_sklearn():
    members, nonmembers = [1.0, 2.0], [3.0, 2.0]
    # (1<3) (1<2) (2<3) win, (2=2) tie: 3.5 / 4
    assert probes.membership_auc(members, nonmembers) == 0.875
    labels = [1, 1, 0, 0]
    assert probes.membership_auc(members, nonmembers) == pytest.approx(
        roc_auc_score(labels, [-s for s in members + nonmembers])
    )
    assert probes.membership_auc([1.0], [1.0]) == 0.5
    assert probes.membership_auc([5.0, 6.0], [1.0]) == 0.0
    assert math.isnan(probes.membership_auc([], [1.0]))


def test_memorization_probes_aggregate_and_per_sample():
    result = probes.memorization_probes([_scores([1, 2], [1, 2]), _scores([1, 2], [3, 4])])
    assert result["exact_memorization"].per_sample == [1.0, 0.0]
    assert result["exact_memorization"].value == 0.5
    assert result["extraction_strength"].per_sample == [1.0, 0.0]
