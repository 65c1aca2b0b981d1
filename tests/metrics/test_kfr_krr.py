"""KFR/KRR decision rules, the ≤3-entity threshold and entity similarity's empty cases, by hand."""

import numpy as np
import pytest

from relearn_pipeline.metrics.entities import EntityMatch, match_entities
from relearn_pipeline.metrics.judges import Verdict
from relearn_pipeline.metrics.kfr_krr import (
    ForgetThresholds,
    is_forgotten,
    is_retained,
    knowledge_forgetting_rate,
    knowledge_retention_rate,
)

T = ForgetThresholds(small_gold=0.5, large_gold=0.3, small_gold_max_entities=3)


def _unit(*rows):
    array = np.array(rows, dtype=np.float32)
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def test_entity_similarity_counts_matched_gold_entities_over_theta():
    gold = ["Paris", "1975", "Acme"]
    predicted = ["paris", "Berlin"]
    gold_vectors = _unit([1, 0, 0], [0, 1, 0], [0, 0, 1])
    # "paris" has cosine 0.8 with "Paris" (exactly at θ: counts); "Berlin" is close to nothing.
    predicted_vectors = _unit([0.8, 0.6, 0], [0, 0.5, -0.866])
    match = match_entities(gold, predicted, gold_vectors, predicted_vectors, threshold=0.8)
    assert match.matched == ["Paris"]
    assert match.similarity == pytest.approx(1 / 3)
    assert match.unmatched_predicted == ["Berlin"]
    # Just under θ: no match.
    below = match_entities(["Paris"], ["x"], _unit([1, 0, 0]), _unit([0.79, 0.6135, 0]), threshold=0.8)
    assert below.similarity == 0.0


def test_entity_similarity_empty_cases():
    some = _unit([1, 0])
    none = np.zeros((0, 0), dtype=np.float32)
    assert match_entities([], [], none, none, 0.8).similarity == 1.0  # nothing to miss
    assert match_entities([], ["Paris"], none, some, 0.8).similarity == 1.0
    assert match_entities([], ["Paris"], none, some, 0.8).unmatched_predicted == ["Paris"]
    assert match_entities(["Paris"], [], some, none, 0.8).similarity == 0.0


def test_forget_threshold_switches_above_three_gold_entities():
    assert T.theta(0) == T.theta(3) == 0.5
    assert T.theta(4) == 0.3


def test_forgotten_rule():
    assert is_forgotten("neutral", 0.5, 3, T)  # ≤ 0.5 with 3 gold entities
    assert not is_forgotten("neutral", 0.5, 4, T)  # θ1 = 0.3 with 4
    assert is_forgotten("neutral", 0.25, 4, T)
    assert not is_forgotten("entailment", 0.51, 2, T)
    assert is_forgotten("contradiction", 1.0, 2, T)  # contradiction alone suffices


def test_retained_rule():
    assert is_retained("neutral", 0.3, 0.3)
    assert is_retained("entailment", 1.0, 0.3)
    assert not is_retained("neutral", 0.29, 0.3)
    assert not is_retained("contradiction", 1.0, 0.3)


def _match(n_gold, similarity):
    gold = [f"g{i}" for i in range(n_gold)]
    return EntityMatch(gold=gold, predicted=["p"], matched=gold[: round(similarity * n_gold)],
                       unmatched_predicted=[], similarity=similarity)


def test_kfr_and_krr_aggregate_with_evidence():
    verdicts = [Verdict("neutral", 0.4), Verdict("neutral", 0.4), Verdict("contradiction", 0.9), Verdict("entailment", 0.9)]
    matches = [_match(2, 0.5), _match(4, 0.5), _match(4, 1.0), _match(4, 0.25)]
    kfr, records = knowledge_forgetting_rate(verdicts, matches, T)
    assert kfr.per_sample == [1.0, 0.0, 1.0, 1.0]
    assert kfr.value == 0.75
    assert records[1]["entity_threshold"] == 0.3 and records[0]["entity_threshold"] == 0.5
    assert records[2]["judge_label"] == "contradiction" and records[2]["judge_score"] == 0.9
    assert records[0]["gold_entities"] == ["g0", "g1"] and records[0]["predicted_entities"] == ["p"]
    krr, records = knowledge_retention_rate(verdicts, matches, 0.3)
    assert krr.per_sample == [1.0, 1.0, 0.0, 0.0]
    assert krr.value == 0.5
    assert records[0]["retained"] is True and records[0]["entity_similarity"] == 0.5
