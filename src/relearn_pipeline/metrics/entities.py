"""Entity similarity between a gold and a predicted answer (the evidence behind KFR and KRR).

Entities come from ``text.spans.extract_entities`` (spaCy NER + regex for emails, phones,
addresses, dates, numbers), minus entities whose words all appear in the question (the paper's
rule: echoing the question proves nothing). Each entity is embedded with MiniLM; a gold entity
counts as *matched* when some predicted entity has cosine ≥ θ (0.8).

similarity = matched gold entities / gold entities, with the empty cases defined:
- no gold entities: 1.0 (vacuously every gold entity is matched; the entity evidence is neutral
  and the judge decides). The paper's code returns 0 here, which counts every entity-free forget
  answer as forgotten and every entity-free retain answer as lost.
- gold entities but no predicted ones: 0.0 (nothing matched).

The paper's code counts matched (gold, predicted) *pairs*, which can exceed the number of gold
entities; counting matched gold entities keeps the similarity in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from relearn_pipeline.metrics.similarity import Encoder, cosine_matrix
from relearn_pipeline.text.spans import extract_entities


@dataclass(frozen=True)
class EntityMatch:
    """Gold and predicted entities, which gold ones were matched, which predicted ones match nothing."""

    gold: list[str]
    predicted: list[str]
    matched: list[str]  # gold entities with a predicted entity at cosine ≥ θ
    unmatched_predicted: list[str]  # predicted entities close to no gold entity (other specifics)
    similarity: float


def match_entities(
    gold: Sequence[str],
    predicted: Sequence[str],
    gold_vectors: np.ndarray,
    predicted_vectors: np.ndarray,
    threshold: float,
) -> EntityMatch:
    """Entity similarity from given embeddings (row i of a matrix embeds entity i)."""
    cosines = cosine_matrix(gold_vectors, predicted_vectors)
    gold_hit = cosines.max(axis=1) >= threshold if len(predicted) else np.zeros(len(gold), bool)
    predicted_hit = cosines.max(axis=0) >= threshold if len(gold) else np.zeros(len(predicted), bool)
    matched = [g for g, hit in zip(gold, gold_hit) if hit]
    similarity = 1.0 if not gold else len(matched) / len(gold)
    return EntityMatch(
        gold=list(gold),
        predicted=list(predicted),
        matched=matched,
        unmatched_predicted=[p for p, hit in zip(predicted, predicted_hit) if not hit],
        similarity=float(similarity),
    )


class EntityMatcher:
    """Extracts and embeds entities, then matches them; caches both per text."""

    def __init__(self, threshold: float = 0.8, encoder: Encoder | None = None):
        self.threshold = threshold
        self.encoder = encoder or Encoder()
        self._entities: dict[tuple[str, str], list[str]] = {}

    def entities(self, text: str, question: str | None) -> list[str]:
        """Entities of ``text`` minus those echoing ``question``."""
        key = (text, question or "")
        if key not in self._entities:
            self._entities[key] = extract_entities(text, question=question)
        return self._entities[key]

    def match(self, gold: str, prediction: str, question: str | None) -> EntityMatch:
        """Entity similarity of ``prediction`` to ``gold`` for ``question``."""
        gold_entities = self.entities(gold, question)
        predicted_entities = self.entities(prediction, question)
        return match_entities(
            gold_entities,
            predicted_entities,
            self.encoder.embed(gold_entities),
            self.encoder.embed(predicted_entities),
            self.threshold,
        )
