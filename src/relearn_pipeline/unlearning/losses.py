"""Unlearning losses by method name: one small function each, found through a registry.

Every loss receives the model's logits (and, when the method asks for them, the reference's) for a
forget batch and a retain batch, and returns the total loss plus its terms. The contract is

    total = weights.forget * terms["forget"] + weights.retain * terms["retain"] + weights.kl * terms["kl"]

over the terms present; ``terms["forget_ce"]`` (token-mean cross-entropy on the forget answers) is
always there too, as a diagnostic that falls for ReLearn and rises for GA/NPO.

Conventions (the ones the paper's official code gets wrong, DESIGN.md section 10):
- labels are ``prompting.encode_qa`` labels: ``IGNORE_INDEX`` on the question and on padding, so
  cross-entropy and KL only ever see real answer tokens (and the EOS that ends them);
- the reference model is the target; KL is KL(reference || model), per real answer position,
  summed over the vocabulary and averaged over positions;
- NPO (Zhang et al. 2024): L = -(2/beta) * E[log sigmoid(-beta * log(pi_theta / pi_ref))].
  With per-sequence NLL summed over answer tokens, log pi = -NLL, so
  L = -(2/beta) * E[log sigmoid(beta * (NLL_theta - NLL_ref))]: it falls as the model's NLL on the
  forget answer rises above the reference's, and equals (2/beta)*ln 2 where the two agree.

Adding a method: write one function below and decorate it with ``@register(...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from relearn_pipeline.prompting import IGNORE_INDEX

FORGET_DATA = ("augmented", "original")


class UnknownMethodError(ValueError):
    """A method name that is not in the registry; the message lists the known ones."""


@dataclass(frozen=True)
class LossWeights:
    """Weights of the forget, retain and KL terms, and NPO's inverse temperature."""

    forget: float = 1.0
    retain: float = 1.0
    kl: float = 1.0
    npo_beta: float = 0.1


@dataclass
class LossInputs:
    """Logits [batch, seq, vocab] and labels [batch, seq] of one training step, by part."""

    forget_logits: torch.Tensor
    forget_labels: torch.Tensor
    retain_logits: torch.Tensor | None = None
    retain_labels: torch.Tensor | None = None
    reference_forget_logits: torch.Tensor | None = None
    reference_retain_logits: torch.Tensor | None = None


@dataclass
class LossOutput:
    total: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)


LossFn = Callable[[LossInputs, LossWeights], LossOutput]


@dataclass(frozen=True)
class Method:
    """A registered unlearning method: its loss and what the loss needs from the trainer."""

    name: str
    loss: LossFn
    forget_data: str  # "augmented" (ReLearn's verified variants) or "original" (the forget set)
    uses_retain: bool  # draw a retain batch alongside every forget batch
    reference_on: frozenset[str]  # parts the reference (adapter disabled) must see: forget, retain


METHODS: dict[str, Method] = {}


def register(
    name: str, *, forget_data: str, uses_retain: bool, reference_on: tuple[str, ...] = ()
) -> Callable[[LossFn], LossFn]:
    """Register ``fn`` as the loss of method ``name``."""
    if forget_data not in FORGET_DATA:
        raise ValueError(f"method {name!r}: forget_data must be one of {FORGET_DATA}, got {forget_data!r}")
    unknown_parts = set(reference_on) - {"forget", "retain"}
    if unknown_parts:
        raise ValueError(f"method {name!r}: reference_on may name 'forget'/'retain', got {sorted(unknown_parts)}")

    def decorate(fn: LossFn) -> LossFn:
        if name in METHODS:
            raise ValueError(f"method {name!r} is registered twice ({METHODS[name].loss.__name__}, {fn.__name__})")
        METHODS[name] = Method(name, fn, forget_data, uses_retain, frozenset(reference_on))
        return fn

    return decorate


def get_method(name: str) -> Method:
    """The registered method ``name``, or an error listing the known names."""
    if name not in METHODS:
        raise UnknownMethodError(
            f"finetune.method: unknown unlearning method {name!r}. Known methods: {', '.join(sorted(METHODS))}. "
            "Set finetune.method in conf/base/parameters_finetune.yml or pass --params finetune.method=<name>."
        )
    return METHODS[name]


# ---------------------------------------------------------------- helpers on (logits, labels)


def _shift(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Align position t's logits with token t+1; return (logits, targets, mask of real answer tokens)."""
    logits = logits[:, :-1, :].float()
    targets = labels[:, 1:]
    mask = targets != IGNORE_INDEX
    return logits, targets.masked_fill(~mask, 0), mask


def token_log_probs(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each next label token [batch, seq-1] and the mask of answer positions."""
    logits, targets, mask = _shift(logits, labels)
    picked = torch.gather(logits, -1, targets.unsqueeze(-1)).squeeze(-1)
    log_probs = picked - torch.logsumexp(logits, dim=-1)
    return log_probs * mask, mask


def sequence_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-sequence negative log-likelihood, summed over answer tokens [batch]."""
    log_probs, _ = token_log_probs(logits, labels)
    return -log_probs.sum(dim=-1)


def answer_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over every answer token in the batch (question and padding ignored)."""
    log_probs, mask = token_log_probs(logits, labels)
    return -log_probs.sum() / mask.sum().clamp(min=1)


def masked_kl(reference_logits: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """KL(reference || model) per answer position, averaged over the batch's answer positions."""
    reference_logits, _, mask = _shift(reference_logits, labels)
    logits, _, _ = _shift(logits, labels)
    reference_log_probs = F.log_softmax(reference_logits[mask], dim=-1)
    log_probs = F.log_softmax(logits[mask], dim=-1)
    per_position = (reference_log_probs.exp() * (reference_log_probs - log_probs)).sum(dim=-1)
    return per_position.sum() / mask.sum().clamp(min=1)


def npo_loss(logits: torch.Tensor, reference_logits: torch.Tensor, labels: torch.Tensor, beta: float) -> torch.Tensor:
    """-(2/beta) * mean log sigmoid(beta * (NLL_model - NLL_reference)), per-sequence NLL."""
    margin = sequence_nll(logits, labels) - sequence_nll(reference_logits, labels).detach()
    return -(2.0 / beta) * F.logsigmoid(beta * margin).mean()


# ---------------------------------------------------------------- terms shared by the methods


def _combine(weights: LossWeights, forget_ce: torch.Tensor, **terms: torch.Tensor) -> LossOutput:
    total = sum(getattr(weights, name) * value for name, value in terms.items())
    return LossOutput(total=total, terms={**terms, "forget_ce": forget_ce.detach()})


def _retain_terms(batch: LossInputs, gdr: bool, klr: bool) -> dict[str, torch.Tensor]:
    terms = {}
    if gdr:
        terms["retain"] = answer_cross_entropy(batch.retain_logits, batch.retain_labels)
    if klr:
        terms["kl"] = masked_kl(batch.reference_retain_logits, batch.retain_logits, batch.retain_labels)
    return terms


def _relearn(batch: LossInputs, weights: LossWeights, gdr: bool, klr: bool) -> LossOutput:
    forget = answer_cross_entropy(batch.forget_logits, batch.forget_labels)
    return _combine(weights, forget, forget=forget, **_retain_terms(batch, gdr, klr))


def _gradient_ascent(batch: LossInputs, weights: LossWeights, gdr: bool, klr: bool) -> LossOutput:
    forget_ce = answer_cross_entropy(batch.forget_logits, batch.forget_labels)
    return _combine(weights, forget_ce, forget=-forget_ce, **_retain_terms(batch, gdr, klr))


def _npo(batch: LossInputs, weights: LossWeights, gdr: bool, klr: bool) -> LossOutput:
    forget = npo_loss(batch.forget_logits, batch.reference_forget_logits, batch.forget_labels, weights.npo_beta)
    forget_ce = answer_cross_entropy(batch.forget_logits, batch.forget_labels)
    return _combine(weights, forget_ce, forget=forget, **_retain_terms(batch, gdr, klr))


# ---------------------------------------------------------------- the registry

# ReLearn: learn the verified, non-sensitive variants of the forget set.


@register("relearn", forget_data="augmented", uses_retain=False)
def relearn(batch: LossInputs, weights: LossWeights) -> LossOutput:
    """Cross-entropy on the augmented forget set."""
    return _relearn(batch, weights, gdr=False, klr=False)


@register("relearn_gdr", forget_data="augmented", uses_retain=True)
def relearn_gdr(batch: LossInputs, weights: LossWeights) -> LossOutput:
    """ReLearn + cross-entropy on the retain set (gradient descent on retain)."""
    return _relearn(batch, weights, gdr=True, klr=False)


@register("relearn_klr", forget_data="augmented", uses_retain=True, reference_on=("retain",))
def relearn_klr(batch: LossInputs, weights: LossWeights) -> LossOutput:
    """ReLearn + KL(reference || model) on the retain answers."""
    return _relearn(batch, weights, gdr=False, klr=True)


@register("relearn_klr_gdr", forget_data="augmented", uses_retain=True, reference_on=("retain",))
def relearn_klr_gdr(batch: LossInputs, weights: LossWeights) -> LossOutput:
    """ReLearn + retain cross-entropy + retain KL: the paper's method."""
    return _relearn(batch, weights, gdr=True, klr=True)


# Baselines: push the original forget answers away.


@register("ga", forget_data="original", uses_retain=False)
def ga(batch: LossInputs, weights: LossWeights) -> LossOutput:
    """Gradient ascent: minus the cross-entropy on the original forget set."""
    return _gradient_ascent(batch, weights, gdr=False, klr=False)


@register("ga_gdr", forget_data="original", uses_retain=True)
def ga_gdr(batch: LossInputs, weights: LossWeights) -> LossOutput:
    """Gradient ascent + retain cross-entropy."""
    return _gradient_ascent(batch, weights, gdr=True, klr=False)


@register("ga_klr", forget_data="original", uses_retain=True, reference_on=("retain",))
def ga_klr(batch: LossInputs, weights: LossWeights) -> LossOutput:
    """Gradient ascent + retain KL to the reference."""
    return _gradient_ascent(batch, weights, gdr=False, klr=True)


@register("npo", forget_data="original", uses_retain=False, reference_on=("forget",))
def npo(batch: LossInputs, weights: LossWeights) -> LossOutput:
    """Negative preference optimisation on the original forget set."""
    return _npo(batch, weights, gdr=False, klr=False)


@register("npo_gdr", forget_data="original", uses_retain=True, reference_on=("forget",))
def npo_gdr(batch: LossInputs, weights: LossWeights) -> LossOutput:
    """NPO + retain cross-entropy."""
    return _npo(batch, weights, gdr=True, klr=False)


@register("npo_klr", forget_data="original", uses_retain=True, reference_on=("forget", "retain"))
def npo_klr(batch: LossInputs, weights: LossWeights) -> LossOutput:
    """NPO + retain KL to the reference."""
    return _npo(batch, weights, gdr=False, klr=True)
