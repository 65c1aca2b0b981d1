"""Teacher-forced probes: how much of an answer the model still holds, and can an attacker tell
which records it was trained on? (The figures OpenUnlearning and TOFU users expect.)

All read ``token_scores.TokenScores`` of the gold answer given its question.

- exact memorization: share of answer tokens whose argmax prediction equals the gold token.
- extraction strength (OpenUnlearning's definition): with n answer tokens and teacher-forced argmax
  predictions, k = the shortest prefix length such that every prediction from position k on equals
  the gold token; ES = 1 − k/n. ES = 1: the whole answer is predicted; ES = 0: not even the last
  token is. (OpenUnlearning's loop never tries the empty suffix, so it reports 1/n instead of 0 when
  the last token is wrong; we allow k = n.)
- membership-inference attack scores (higher = looks *less* like training data, as in
  OpenUnlearning): loss = mean negative log-likelihood; zlib = loss / zlib-compressed byte length of
  the answer text; min-k = −(mean of the lowest k·n token log-probs), k = 0.4; min-k++ = −(mean of
  the lowest k·n standardised log-probs, (log p − μ)/σ with μ, σ the mean and standard deviation of
  log-probs over the vocabulary under the model's own distribution at that position). At least one
  token is always kept: ⌊k·n⌋, minimum 1.
- AUC: probability that a random member scores as more member-like (lower attack score) than a
  random non-member, ties counting half (the Mann-Whitney U statistic; equals sklearn's
  ``roc_auc_score(is_member, -score)``). 1.0: training records are perfectly recognisable; 0.5: not
  at all.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

from relearn_pipeline.metrics.result import MetricResult, mean
from relearn_pipeline.metrics.token_scores import TokenScores

MIA_ATTACKS = ("loss", "zlib", "min_k", "min_k_plus_plus")


def exact_memorization(scores: TokenScores) -> float:
    """Share of answer tokens predicted exactly (teacher-forced argmax)."""
    if len(scores) == 0:
        return math.nan
    return sum(p == g for p, g in zip(scores.predictions, scores.labels)) / len(scores)


def extraction_strength(scores: TokenScores) -> float:
    """1 − k/n for the shortest prefix k after which every token is predicted exactly."""
    n = len(scores)
    if n == 0:
        return math.nan
    k = n
    # Walk back from the end while predictions match: the matching suffix is as long as that run.
    while k > 0 and scores.predictions[k - 1] == scores.labels[k - 1]:
        k -= 1
    return 1.0 - k / n


def loss_score(scores: TokenScores) -> float:
    """Mean negative log-likelihood of the answer tokens."""
    if len(scores) == 0:
        return math.nan
    return -math.fsum(scores.log_probs) / len(scores)


def zlib_score(scores: TokenScores, text: str) -> float:
    """Loss divided by the zlib-compressed length (bytes) of the answer text."""
    return loss_score(scores) / len(zlib.compress(text.encode("utf-8")))


def _lowest_mean(values: Sequence[float], k: float) -> float:
    if not values:
        return math.nan
    count = max(1, int(len(values) * k))
    return math.fsum(sorted(values)[:count]) / count


def min_k_score(scores: TokenScores, k: float = 0.4) -> float:
    """−(mean of the lowest k·n token log-probs)."""
    return -_lowest_mean(scores.log_probs, k)


def min_k_plus_plus_score(scores: TokenScores, k: float = 0.4) -> float:
    """−(mean of the lowest k·n vocabulary-standardised token log-probs)."""
    return -_lowest_mean(scores.standardized, k)


def attack_scores(token_scores: Sequence[TokenScores], texts: Sequence[str], k: float = 0.4) -> dict[str, list[float]]:
    """Every attack's per-record score (higher = less member-like)."""
    return {
        "loss": [loss_score(s) for s in token_scores],
        "zlib": [zlib_score(s, t) for s, t in zip(token_scores, texts)],
        "min_k": [min_k_score(s, k) for s in token_scores],
        "min_k_plus_plus": [min_k_plus_plus_score(s, k) for s in token_scores],
    }


def membership_auc(member_scores: Sequence[float], nonmember_scores: Sequence[float]) -> float:
    """P(member score < non-member score) + ½·P(tie); NaN if either side is empty."""
    members = [s for s in member_scores if not math.isnan(s)]
    nonmembers = [s for s in nonmember_scores if not math.isnan(s)]
    if not members or not nonmembers:
        return math.nan
    wins = 0.0
    for m in members:
        for n in nonmembers:
            wins += 1.0 if m < n else 0.5 if m == n else 0.0
    return wins / (len(members) * len(nonmembers))


def memorization_probes(token_scores: Sequence[TokenScores]) -> dict[str, MetricResult]:
    """Exact memorization and extraction strength of a split."""
    em = [exact_memorization(s) for s in token_scores]
    es = [extraction_strength(s) for s in token_scores]
    return {
        "exact_memorization": MetricResult(mean([v for v in em if not math.isnan(v)]), em),
        "extraction_strength": MetricResult(mean([v for v in es if not math.isnan(v)]), es),
    }
