"""Each loss against values computed by hand (plain Python math) on one fixed small batch."""

import math

import pytest
import torch

from relearn_pipeline.prompting import IGNORE_INDEX as X
from relearn_pipeline.unlearning.losses import (
    METHODS,
    LossInputs,
    LossWeights,
    UnknownMethodError,
    answer_cross_entropy,
    get_method,
    masked_kl,
    npo_loss,
    sequence_nll,
)

# Two sequences of length 4 over a vocabulary of 3. Row 0: question token, then 3 answer tokens.
# Row 1: question token, 1 answer token, 2 padding positions. Labels at position t are predicted
# by the logits at position t-1.
LABELS = torch.tensor([[X, 2, 0, 1], [X, 1, X, X]])
MODEL = [
    [[1.0, 0.0, 2.0], [0.5, 0.5, 0.0], [0.0, 3.0, 1.0], [9.0, -9.0, 0.0]],
    [[0.0, 2.0, 0.0], [7.0, 0.0, -7.0], [-5.0, 5.0, 0.0], [3.0, 3.0, -3.0]],
]
REFERENCE = [
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [-9.0, 9.0, 0.0]],
    [[1.0, 1.0, 0.0], [-7.0, 0.0, 7.0], [5.0, -5.0, 0.0], [-3.0, 3.0, 3.0]],
]
# (row, position of the logits, target token) of every real answer token: 4 of them.
ANSWER_POSITIONS = [(0, 0, 2), (0, 1, 0), (0, 2, 1), (1, 0, 1)]


def log_softmax(row):
    top = max(row)
    log_total = top + math.log(sum(math.exp(v - top) for v in row))
    return [v - log_total for v in row]


def nll(logits, b, t, token):
    return -log_softmax(logits[b][t])[token]


def kl(p_logits, q_logits):
    p, q = log_softmax(p_logits), log_softmax(q_logits)
    return sum(math.exp(a) * (a - c) for a, c in zip(p, q))


@pytest.fixture
def model_logits():
    return torch.tensor(MODEL)


@pytest.fixture
def reference_logits():
    return torch.tensor(REFERENCE)


def test_cross_entropy_is_mean_over_answer_tokens_only(model_logits):
    expected = sum(nll(MODEL, b, t, k) for b, t, k in ANSWER_POSITIONS) / 4
    assert answer_cross_entropy(model_logits, LABELS).item() == pytest.approx(expected, rel=1e-6)
    # Uniform logits: every answer token costs ln 3, whatever the padding/question positions hold.
    uniform = torch.zeros(2, 4, 3)
    uniform[1, 2:] = 100.0
    assert answer_cross_entropy(uniform, LABELS).item() == pytest.approx(math.log(3), rel=1e-6)


def test_sequence_nll_sums_answer_tokens_per_row(model_logits):
    row0 = sum(nll(MODEL, b, t, k) for b, t, k in ANSWER_POSITIONS if b == 0)
    row1 = nll(MODEL, 1, 0, 1)
    assert sequence_nll(model_logits, LABELS).tolist() == pytest.approx([row0, row1], rel=1e-6)


def test_kl_is_reference_to_model_over_real_answer_positions_only(model_logits, reference_logits):
    expected = sum(kl(REFERENCE[b][t], MODEL[b][t]) for b, t, _ in ANSWER_POSITIONS) / 4
    assert masked_kl(reference_logits, model_logits, LABELS).item() == pytest.approx(expected, rel=1e-6)
    # The direction matters: KL(model || reference) is a different number here.
    reverse = sum(kl(MODEL[b][t], REFERENCE[b][t]) for b, t, _ in ANSWER_POSITIONS) / 4
    assert abs(reverse - expected) > 1e-3


def test_kl_ignores_padding_and_question_positions(model_logits, reference_logits):
    base = masked_kl(reference_logits, model_logits, LABELS).item()
    # Positions whose next label is IGNORE: row 0 pos 3 (last), row 1 pos 1..3 (padding follows).
    scrambled = reference_logits.clone()
    scrambled[0, 3] = torch.tensor([50.0, -50.0, 0.0])
    scrambled[1, 1:] = torch.tensor([-40.0, 40.0, 0.0])
    assert masked_kl(scrambled, model_logits, LABELS).item() == pytest.approx(base, rel=1e-6)
    # Making the reference equal to the model on the answer positions gives exactly zero.
    same = model_logits.clone()
    same[1, 1:] = 30.0
    assert masked_kl(same, model_logits, LABELS).item() == pytest.approx(0.0, abs=1e-7)


def test_npo_value_and_sign(model_logits, reference_logits):
    beta = 0.1
    margins = [
        sum(nll(MODEL, b, t, k) - nll(REFERENCE, b, t, k) for b, t, k in ANSWER_POSITIONS if b == row)
        for row in (0, 1)
    ]
    expected = sum(-(2 / beta) * math.log(1 / (1 + math.exp(-beta * m))) for m in margins) / 2
    assert npo_loss(model_logits, reference_logits, LABELS, beta).item() == pytest.approx(expected, rel=1e-6)
    # Model equal to the reference: (2/beta) ln 2.
    assert npo_loss(reference_logits, reference_logits, LABELS, beta).item() == pytest.approx(20 * math.log(2))
    # Sign: descending the NPO loss raises the model's NLL on the forget answer.
    logits = model_logits.clone().requires_grad_(True)
    npo_loss(logits, reference_logits, LABELS, beta).backward()
    stepped = (logits - 0.1 * logits.grad).detach()
    assert (sequence_nll(stepped, LABELS) > sequence_nll(model_logits, LABELS)).all()
    # A model less likely than the reference to say the forget answer has a lower NPO loss.
    forgot = reference_logits.clone()
    for b, t, k in ANSWER_POSITIONS:
        forgot[b, t, k] -= 2.0
    assert npo_loss(forgot, reference_logits, LABELS, beta).item() < 20 * math.log(2)


def batch_for(method, model_logits, reference_logits):
    spec = get_method(method)
    return LossInputs(
        forget_logits=model_logits,
        forget_labels=LABELS,
        retain_logits=model_logits.flip(0) if spec.uses_retain else None,
        retain_labels=LABELS if spec.uses_retain else None,
        reference_forget_logits=reference_logits if "forget" in spec.reference_on else None,
        reference_retain_logits=reference_logits if "retain" in spec.reference_on else None,
    )


EXPECTED_TERMS = {
    "relearn": {"forget"},
    "relearn_gdr": {"forget", "retain"},
    "relearn_klr": {"forget", "kl"},
    "relearn_klr_gdr": {"forget", "retain", "kl"},
    "ga": {"forget"},
    "ga_gdr": {"forget", "retain"},
    "ga_klr": {"forget", "kl"},
    "npo": {"forget"},
    "npo_gdr": {"forget", "retain"},
    "npo_klr": {"forget", "kl"},
}


def test_registry_holds_the_paper_methods():
    assert set(METHODS) == set(EXPECTED_TERMS)
    assert get_method("relearn_klr_gdr").forget_data == "augmented"
    assert get_method("npo_klr").forget_data == "original"
    # No reference forward pass unless a KL or NPO term needs it.
    assert not get_method("relearn").reference_on and not get_method("ga_gdr").reference_on
    assert get_method("npo_klr").reference_on == {"forget", "retain"}


@pytest.mark.parametrize("method", sorted(EXPECTED_TERMS))
def test_each_method_total_is_weighted_sum_of_its_terms(method, model_logits, reference_logits):
    weights = LossWeights(forget=0.7, retain=1.3, kl=2.0, npo_beta=0.1)
    batch = batch_for(method, model_logits, reference_logits)
    result = get_method(method).loss(batch, weights)
    assert set(result.terms) == EXPECTED_TERMS[method] | {"forget_ce"}
    forget_ce = answer_cross_entropy(model_logits, LABELS)
    retain_ce = answer_cross_entropy(model_logits.flip(0), LABELS)
    kl_value = masked_kl(reference_logits, model_logits.flip(0), LABELS)
    forget_term = {
        "relearn": forget_ce,
        "ga": -forget_ce,
        "npo": npo_loss(model_logits, reference_logits, LABELS, 0.1),
    }[method.split("_")[0]]
    expected = 0.7 * forget_term
    if "retain" in EXPECTED_TERMS[method]:
        expected = expected + 1.3 * retain_ce
    if "kl" in EXPECTED_TERMS[method]:
        expected = expected + 2.0 * kl_value
    assert result.total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert result.terms["forget_ce"].item() == pytest.approx(forget_ce.item(), rel=1e-6)


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(UnknownMethodError, match=r"'relearn_kl'.*ga, ga_gdr.*relearn_klr_gdr"):
        get_method("relearn_kl")
