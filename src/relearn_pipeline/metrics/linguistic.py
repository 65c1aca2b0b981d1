"""Linguistic Score (LS): is the answer fluent, varied and relevant? (ReLearn §4, DESIGN.md §7).

Three ingredients per answer, then their transforms and harmonic mean:

- perplexity PPL of the answer given the question under a reference LM (the question's tokens
  are masked; see ``token_scores``), transformed 1/(1+PPL);
- Brunet's index W = N^(V^−0.165) (lower = richer vocabulary), transformed 1/(1+W);
- Honoré's statistic H = 100·ln N / (1 − V1/V + 0.1) (higher = richer), transformed H/(1+H).

N is the number of words, V the number of distinct words, V1 the number of words used once.
The transforms equal sigmoid(−ln PPL), sigmoid(−ln W), sigmoid(ln H): each maps to (0, 1) with
higher = better. LS = 3 / (1/a + 1/b + 1/c) for the three transformed values (0 if any is 0).

Words: ``WORD_RE`` on the lower-cased text: runs of letters/digits, keeping inner apostrophes and
hyphens ("o'brien", "well-known"); punctuation is not a word, so "Paris." and "paris" are the
same word. The paper's code uses NLTK's tokenizer, which also counts punctuation marks.

Edge cases (defined, not accidental):
- N = 0 (empty answer): W would be +inf (no vocabulary at all); it is capped at ``EMPTY_BRUNET``
  (1000, as the official code does) so one empty answer cannot make a mean infinite; H = 0.
- N ≤ 1: H = 0 (ln 1 = 0; the statistic says nothing about one word).
- every word used once (V1 = V): the denominator is 0.1, so H = 1000·ln N.

The aggregate LS follows the paper's code: the transforms are applied to the *mean* PPL, mean W
and mean H of a split, then combined; the per-sample LS combines each answer's own transforms.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from relearn_pipeline.metrics.result import MetricResult, mean
from relearn_pipeline.metrics.token_scores import TokenScores

WORD_RE = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
BRUNET_EXPONENT = -0.165
HONORE_EPSILON = 0.1
EMPTY_BRUNET = 1000.0


def words(text: str) -> list[str]:
    """The lower-cased words of ``text`` (see the module docstring for the rule)."""
    return WORD_RE.findall(text.lower())


def brunet_index(text: str) -> float:
    """Brunet's W = N^(V^−0.165); ``EMPTY_BRUNET`` for an empty text."""
    tokens = words(text)
    n, v = len(tokens), len(set(tokens))
    if n == 0:
        return EMPTY_BRUNET
    return n ** (v**BRUNET_EXPONENT)


def honore_statistic(text: str) -> float:
    """Honoré's H = 100·ln N / (1 − V1/V + 0.1); 0 when N ≤ 1."""
    tokens = words(text)
    n = len(tokens)
    if n <= 1:
        return 0.0
    counts = Counter(tokens)
    v = len(counts)
    v1 = sum(1 for c in counts.values() if c == 1)
    return 100.0 * math.log(n) / (1.0 - v1 / v + HONORE_EPSILON)


def perplexity(scores: TokenScores) -> float:
    """exp(mean negative log-likelihood) over the answer's tokens (EOS included)."""
    if len(scores) == 0:
        return math.nan
    return math.exp(-math.fsum(scores.log_probs) / len(scores))


def perplexity_transform(ppl: float) -> float:
    """1/(1+PPL) = sigmoid(−ln PPL)."""
    return 1.0 / (1.0 + ppl)


def brunet_transform(w: float) -> float:
    """1/(1+W) = sigmoid(−ln W)."""
    return 1.0 / (1.0 + w)


def honore_transform(h: float) -> float:
    """H/(1+H) = sigmoid(ln H); 0 for H = 0."""
    return h / (1.0 + h)


def harmonic_mean(values: Sequence[float]) -> float:
    """n / Σ 1/x; 0 if any value is 0 (a zero ingredient zeroes the score)."""
    if any(v <= 0 for v in values):
        return 0.0
    return len(values) / math.fsum(1.0 / v for v in values)


@dataclass(frozen=True)
class LinguisticScores:
    """A split's LS: aggregates plus every per-answer ingredient."""

    ls: MetricResult  # harmonic mean of the transforms (the paper's LS)
    ls_arithmetic: MetricResult  # arithmetic mean of the same transforms
    perplexity: MetricResult
    brunet: MetricResult
    honore: MetricResult


def combine(ppl: float, w: float, h: float) -> tuple[float, float]:
    """(harmonic, arithmetic) mean of the three transforms."""
    transformed = [perplexity_transform(ppl), brunet_transform(w), honore_transform(h)]
    return harmonic_mean(transformed), math.fsum(transformed) / 3.0


def linguistic_scores(answers: Sequence[str], token_scores: Sequence[TokenScores]) -> LinguisticScores:
    """LS of ``answers``; ``token_scores[i]`` scores ``answers[i]`` under the reference LM."""
    if len(answers) != len(token_scores):
        raise ValueError(f"linguistic_scores: {len(answers)} answers but {len(token_scores)} token scores")
    ppls = [perplexity(s) for s in token_scores]
    ws = [brunet_index(a) for a in answers]
    hs = [honore_statistic(a) for a in answers]
    per_sample = [combine(p, w, h) for p, w, h in zip(ppls, ws, hs)]
    if answers:
        harmonic, arithmetic = combine(mean(ppls), mean(ws), mean(hs))
    else:
        harmonic = arithmetic = math.nan
    return LinguisticScores(
        ls=MetricResult(harmonic, [s[0] for s in per_sample]),
        ls_arithmetic=MetricResult(arithmetic, [s[1] for s in per_sample]),
        perplexity=MetricResult(mean(ppls), ppls),
        brunet=MetricResult(mean(ws), ws),
        honore=MetricResult(mean(hs), hs),
    )
