"""ROUGE-1 and ROUGE-L recall of generated answers against gold answers (``rouge_score``, stemmed).

Recall, not F1: the question is how much of the gold answer the model still reproduces
(the paper's and TOFU's convention).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from relearn_pipeline.metrics.result import MetricResult, mean


@lru_cache(maxsize=1)
def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True)


def rouge_recall(golds: Sequence[str], predictions: Sequence[str]) -> dict[str, MetricResult]:
    """``{"rouge1_recall": ..., "rougeL_recall": ...}`` over aligned gold/prediction pairs."""
    if len(golds) != len(predictions):
        raise ValueError(f"rouge_recall: {len(golds)} gold answers but {len(predictions)} predictions")
    scores = [_scorer().score(gold, prediction) for gold, prediction in zip(golds, predictions)]
    r1 = [s["rouge1"].recall for s in scores]
    rl = [s["rougeL"].recall for s in scores]
    return {"rouge1_recall": MetricResult(mean(r1), r1), "rougeL_recall": MetricResult(mean(rl), rl)}
