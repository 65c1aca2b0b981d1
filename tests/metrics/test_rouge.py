"""ROUGE recall against gold answers."""

import pytest

from relearn_pipeline.metrics.rouge import rouge_recall


def test_rouge_recall_hand_worked():
    result = rouge_recall(["the cat sat on the mat", "alpha beta"], ["the cat sat", "gamma"])
    # 3 of 6 gold unigrams recovered, LCS 3 of 6; nothing for the second pair.
    assert result["rouge1_recall"].per_sample == pytest.approx([0.5, 0.0])
    assert result["rougeL_recall"].per_sample == pytest.approx([0.5, 0.0])
    assert result["rougeL_recall"].value == pytest.approx(0.25)
    # Recall, not precision: extra words in the prediction cost nothing.
    assert rouge_recall(["cat"], ["a cat and a dog and more"])["rouge1_recall"].value == 1.0
