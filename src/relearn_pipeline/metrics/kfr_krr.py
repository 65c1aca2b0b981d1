"""Knowledge Forgetting Rate and Knowledge Retention Rate (ReLearn §4, DESIGN.md §7).

KFR: share of forget answers judged *forgotten*: the judge says contradiction, OR the entity
similarity to the gold answer is ≤ θ1, where θ1 = ``small_gold`` (0.5) when the gold answer has at
most ``small_gold_max_entities`` (3) entities, else ``large_gold`` (0.3).
KRR: share of retain answers judged *retained*: the judge does NOT say contradiction AND the
entity similarity is ≥ θ2 (0.3).
Each record keeps its evidence: judge label and score, gold and predicted entities, similarity,
the threshold applied and the decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from relearn_pipeline.metrics.entities import EntityMatch
from relearn_pipeline.metrics.judges import Verdict
from relearn_pipeline.metrics.result import MetricResult, mean


@dataclass(frozen=True)
class ForgetThresholds:
    """θ1 and the gold-entity count that switches it."""

    small_gold: float = 0.5
    large_gold: float = 0.3
    small_gold_max_entities: int = 3

    def theta(self, gold_entities: int) -> float:
        """θ1 for a gold answer with ``gold_entities`` entities."""
        return self.small_gold if gold_entities <= self.small_gold_max_entities else self.large_gold


def is_forgotten(label: str, similarity: float, gold_entities: int, thresholds: ForgetThresholds) -> bool:
    """Contradiction, or entity similarity ≤ θ1."""
    return label == "contradiction" or similarity <= thresholds.theta(gold_entities)


def is_retained(label: str, similarity: float, theta2: float) -> bool:
    """No contradiction, and entity similarity ≥ θ2."""
    return label != "contradiction" and similarity >= theta2


def _evidence(verdict: Verdict, match: EntityMatch, threshold: float, decision: bool, key: str) -> dict[str, Any]:
    return {
        key: decision,
        "judge_label": verdict.label,
        "judge_score": verdict.score,
        "gold_entities": match.gold,
        "predicted_entities": match.predicted,
        "matched_gold_entities": match.matched,
        "entity_similarity": match.similarity,
        "entity_source": match.source,
        "entity_threshold": threshold,
    }


def knowledge_forgetting_rate(
    verdicts: Sequence[Verdict], matches: Sequence[EntityMatch], thresholds: ForgetThresholds
) -> tuple[MetricResult, list[dict[str, Any]]]:
    """KFR over forget answers, with one evidence record per answer."""
    if len(verdicts) != len(matches):
        raise ValueError(f"KFR: {len(verdicts)} verdicts but {len(matches)} entity matches")
    records = []
    for verdict, match in zip(verdicts, matches):
        theta = thresholds.theta(len(match.gold))
        decision = is_forgotten(verdict.label, match.similarity, len(match.gold), thresholds)
        records.append(_evidence(verdict, match, theta, decision, "forgotten"))
    flags = [1.0 if r["forgotten"] else 0.0 for r in records]
    return MetricResult(mean(flags), flags), records


def knowledge_retention_rate(
    verdicts: Sequence[Verdict], matches: Sequence[EntityMatch], theta2: float
) -> tuple[MetricResult, list[dict[str, Any]]]:
    """KRR over retain answers, with one evidence record per answer."""
    if len(verdicts) != len(matches):
        raise ValueError(f"KRR: {len(verdicts)} verdicts but {len(matches)} entity matches")
    records = []
    for verdict, match in zip(verdicts, matches):
        decision = is_retained(verdict.label, match.similarity, theta2)
        records.append(_evidence(verdict, match, theta2, decision, "retained"))
    flags = [1.0 if r["retained"] else 0.0 for r in records]
    return MetricResult(mean(flags), flags), records
