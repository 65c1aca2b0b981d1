"""Judges: does a generated answer contradict, entail, or say nothing about the gold answer?

One interface, ``judge(gold, prediction, question) -> Verdict``, two implementations:

- ``nli``: any local NLI model directory through a transformers text-classification pipeline.
  Premise/hypothesis order follows the paper's code (``evals/evaluate.py``,
  ``get_entailment_results``): for *forget* answers the generated answer is the premise and the
  gold answer the hypothesis; for *retain* answers the gold answer is the premise and the generated
  answer the hypothesis. Both are configurable (``premise: gold | prediction`` per split family).
  The model's labels must name contradiction, entailment and neutral (any case, e.g. MNLI heads).
- ``semantic`` (default, no extra model): MiniLM cosine between gold and prediction plus entity
  evidence (``entities.EntityMatcher``). With gold entities: entailment when the share of matched
  gold entities is ≥ ``entail_entity`` and the answer is on topic (cosine ≥ ``topic_cosine``);
  contradiction when it is below ``entail_entity`` while the on-topic answer asserts entities of
  its own that match no gold entity (it gives *other* specifics); neutral otherwise (vague,
  refusing, or off topic). Without gold entities: entailment when cosine ≥ ``entail_cosine``,
  else neutral (there is nothing specific to contradict). ``score`` is the cosine.

Every verdict carries its evidence, and every report names the judge (``Judge.description``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from relearn_pipeline.metrics.entities import EntityMatcher
from relearn_pipeline.metrics.similarity import Encoder

LABELS = ("contradiction", "entailment", "neutral")


@dataclass(frozen=True)
class Verdict:
    """A judge's label for one (gold, prediction) pair, its score in [0, 1] and why."""

    label: str
    score: float
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise ValueError(f"Verdict label must be one of {LABELS}, got {self.label!r}")


class Judge(Protocol):
    """What KFR/KRR need from a judge."""

    name: str
    description: str

    def judge(self, gold: str, prediction: str, question: str) -> Verdict: ...

    def judge_many(
        self, golds: Sequence[str], predictions: Sequence[str], questions: Sequence[str]
    ) -> list[Verdict]: ...


class SemanticJudge:
    """The embedded default: MiniLM cosine + entity evidence, thresholds from config."""

    name = "semantic"

    def __init__(
        self,
        matcher: EntityMatcher,
        entail_cosine: float,
        entail_entity: float,
        topic_cosine: float,
        encoder: Encoder | None = None,
    ):
        self.matcher = matcher
        self.encoder = encoder or matcher.encoder
        self.entail_cosine = entail_cosine
        self.entail_entity = entail_entity
        self.topic_cosine = topic_cosine
        self.description = (
            f"semantic (embedded MiniLM all-MiniLM-L6-v2 cosine + entity evidence; entailment at "
            f"cosine ≥ {entail_cosine} without gold entities or matched-entity share ≥ "
            f"{entail_entity} on topic (cosine ≥ {topic_cosine}), contradiction when an on-topic "
            f"answer asserts other entities)"
        )

    def judge(self, gold: str, prediction: str, question: str) -> Verdict:
        """Label one pair."""
        return self.judge_many([gold], [prediction], [question])[0]

    def judge_many(
        self, golds: Sequence[str], predictions: Sequence[str], questions: Sequence[str]
    ) -> list[Verdict]:
        """Label many pairs (the embeddings are computed in one batch)."""
        texts = list(golds) + [p if p.strip() else " " for p in predictions]
        vectors = self.encoder.embed(texts) if texts else np.zeros((0, 0))
        verdicts = []
        for i, (gold, prediction, question) in enumerate(zip(golds, predictions, questions)):
            cosine = 0.0 if not prediction.strip() else float(vectors[i] @ vectors[len(golds) + i])
            verdicts.append(self._decide(gold, prediction, question, cosine))
        return verdicts

    def _decide(self, gold: str, prediction: str, question: str, cosine: float) -> Verdict:
        match = self.matcher.match(gold, prediction, question)
        on_topic = cosine >= self.topic_cosine
        if match.gold:
            if on_topic and match.similarity >= self.entail_entity:
                label = "entailment"
            elif on_topic and match.unmatched_predicted:
                label = "contradiction"
            else:
                label = "neutral"
        else:
            label = "entailment" if cosine >= self.entail_cosine else "neutral"
        evidence = {
            "cosine": round(cosine, 6),
            "entity_similarity": match.similarity,
            "entity_source": match.source,
            "gold_entities": match.gold,
            "predicted_entities": match.predicted,
            "unmatched_predicted_entities": match.unmatched_predicted,
        }
        return Verdict(label=label, score=max(0.0, min(1.0, cosine)), evidence=evidence)


Classifier = Callable[[list[dict[str, str]]], list[Any]]


def normalise_nli_label(raw: str, model: str) -> str:
    """Map a model's label name (ENTAILMENT, Contradiction, ...) to one of ``LABELS``."""
    lowered = raw.lower()
    for label, stem in (("contradiction", "contradict"), ("entailment", "entail"), ("neutral", "neutral")):
        if stem in lowered:
            return label
    raise ValueError(
        f"NLI model {model}: label {raw!r} is none of contradiction/entailment/neutral; set its "
        "config.json id2label to those names or choose an NLI (MNLI-style) model"
    )


class NLIJudge:
    """A local NLI model: label = the most probable of contradiction/entailment/neutral."""

    name = "nli"

    def __init__(
        self,
        model_dir: str,
        premise: str = "gold",
        batch_size: int = 16,
        classifier: Classifier | None = None,
    ):
        if premise not in ("gold", "prediction"):
            raise ValueError(f"evaluate.judge.nli.premise: expected 'gold' or 'prediction', got {premise!r}")
        self.model_dir = str(model_dir)
        self.premise = premise
        self.batch_size = batch_size
        self._classifier = classifier or self._load(self.model_dir)
        hypothesis = "prediction" if premise == "gold" else "gold"
        self.description = f"nli ({self.model_dir}; premise = {premise} answer, hypothesis = {hypothesis} answer)"

    @staticmethod
    def _load(model_dir: str) -> Classifier:
        if not Path(model_dir).is_dir():
            raise FileNotFoundError(
                f"evaluate.judge.nli.model_dir: {model_dir} is not a directory; point it at a local "
                "NLI model (e.g. a saved MNLI classifier) or use judge.name: semantic"
            )
        from transformers import pipeline

        return pipeline("text-classification", model=model_dir, device="cpu", top_k=None)

    def judge(self, gold: str, prediction: str, question: str) -> Verdict:
        """Label one pair."""
        return self.judge_many([gold], [prediction], [question])[0]

    def judge_many(
        self, golds: Sequence[str], predictions: Sequence[str], questions: Sequence[str]
    ) -> list[Verdict]:
        """Label many pairs, ``batch_size`` at a time."""
        pairs = [
            {"text": g, "text_pair": p} if self.premise == "gold" else {"text": p, "text_pair": g}
            for g, p in zip(golds, predictions)
        ]
        verdicts: list[Verdict] = []
        for start in range(0, len(pairs), self.batch_size):
            outputs = self._classifier(pairs[start : start + self.batch_size])
            for output in outputs:
                scores = output if isinstance(output, list) else [output]
                probabilities: dict[str, float] = {}
                for item in scores:
                    label = normalise_nli_label(item["label"], self.model_dir)
                    probabilities[label] = probabilities.get(label, 0.0) + float(item["score"])
                best = max(probabilities, key=probabilities.__getitem__)
                verdicts.append(
                    Verdict(
                        label=best,
                        score=probabilities[best],
                        evidence={"premise": self.premise, "probabilities": probabilities},
                    )
                )
        return verdicts


def build_judge(config: dict[str, Any], family: str, matcher: EntityMatcher) -> Judge:
    """The judge named by ``config['name']`` for a split family (``forget`` or ``retain``)."""
    name = config.get("name", "semantic")
    if name == "semantic":
        semantic = config["semantic"]
        return SemanticJudge(
            matcher,
            entail_cosine=semantic["entail_cosine"],
            entail_entity=semantic["entail_entity"],
            topic_cosine=semantic["topic_cosine"],
        )
    if name == "nli":
        nli = config["nli"]
        if not nli.get("model_dir"):
            raise ValueError("evaluate.judge.nli.model_dir is empty; set it to a local NLI model directory")
        return NLIJudge(nli["model_dir"], premise=nli["premise"][family], batch_size=nli.get("batch_size", 16))
    raise ValueError(f"evaluate.judge.name: unknown judge {name!r}; use 'semantic' or 'nli'")
