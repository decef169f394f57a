import math

import pytest
import torch

from lftf_interp.tune.losses import group_loss, hint_loss, kl_to_base, mass_anchor, pronoun_loss

HE, SHE = [0], [1]


def logits_for(probs):
    """Logits whose softmax is exactly ``probs`` (rows sum to 1)."""
    return torch.tensor(probs, dtype=torch.float64).log()


def test_losses_on_a_toy_distribution():
    lg = logits_for([[0.3, 0.1, 0.6]])  # P(he) = 0.3, P(she) = 0.1
    assert pronoun_loss(lg, HE, SHE, "paper").item() == pytest.approx(
        -math.log(0.3) - math.log(0.1), rel=1e-6
    )
    assert pronoun_loss(lg, HE, SHE, "sum").item() == pytest.approx(0.4, rel=1e-6)
    assert pronoun_loss(lg, HE, SHE, "balanced").item() == pytest.approx(
        -math.log(0.75) - math.log(0.25), rel=1e-6
    )


def test_minima_are_where_the_docs_say():
    # paper: minimal at 0.5 / 0.5 (value 2 log 2); balanced: 2 log 2 whenever P(he) = P(she), whatever the mass
    assert pronoun_loss(logits_for([[0.5, 0.5, 1e-12]]), HE, SHE, "paper").item() == pytest.approx(
        2 * math.log(2), rel=1e-6
    )
    for mass in (0.02, 0.4, 0.9):
        lg = logits_for([[mass / 2, mass / 2, 1 - mass]])
        assert pronoun_loss(lg, HE, SHE, "balanced").item() == pytest.approx(2 * math.log(2), rel=1e-6)
    # sum prefers shrinking the mass over balancing it
    assert pronoun_loss(logits_for([[0.01, 0.0, 0.99]]), HE, SHE, "sum") < pronoun_loss(
        logits_for([[0.2, 0.2, 0.6]]), HE, SHE, "sum"
    )
    with pytest.raises(ValueError, match="Unknown loss"):
        pronoun_loss(logits_for([[0.5, 0.5]]), HE, SHE, "l2")


def test_word_lists_are_summed():
    lg = logits_for([[0.2, 0.1, 0.3, 0.4]])
    assert pronoun_loss(lg, [0, 1], [2], "sum").item() == pytest.approx(0.6, rel=1e-6)


def test_hint_loss_and_kl():
    lg = logits_for([[0.6, 0.2, 0.2], [0.1, 0.7, 0.2]])
    assert hint_loss(lg, [HE, SHE], torch.tensor([0, 1])).item()  # labels: the hinted group's index
    assert hint_loss(lg, [HE, SHE], torch.tensor([0, 1])).item() == pytest.approx(
        -(math.log(0.6 / 0.8) + math.log(0.7 / 0.8)) / 2, rel=1e-6
    )
    assert kl_to_base(lg, lg).item() == pytest.approx(0.0, abs=1e-9)
    p, q = [0.5, 0.5], [0.9, 0.1]
    expect = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)  # KL(base=p || tuned=q)
    assert kl_to_base(logits_for([q]), logits_for([p])).item() == pytest.approx(expect, rel=1e-6)


def test_mass_anchor():
    lg = logits_for([[0.3, 0.1, 0.6], [0.05, 0.05, 0.9]])  # masses 0.4 and 0.1
    base = torch.tensor([math.log(0.2), math.log(0.1)])
    assert mass_anchor(lg, [HE, SHE], base).item() == pytest.approx(
        (math.log(0.4 / 0.2) ** 2 + 0.0) / 2, rel=1e-6
    )
    # blind to the he/she split: the same mass, any balance, gives the same value
    assert mass_anchor(
        logits_for([[0.2, 0.2, 0.6]]), [HE, SHE], torch.tensor([math.log(0.4)])
    ).item() == pytest.approx(0, abs=1e-9)


def test_k_groups_hand_computed():
    lg = logits_for([[0.2, 0.1, 0.1, 0.6]])  # three groups: P = (0.2, 0.1, 0.1), Q = (0.5, 0.25, 0.25)
    g = [[0], [1], [2]]
    assert group_loss(lg, g, "paper").item() == pytest.approx(-math.log(0.2) - 2 * math.log(0.1), rel=1e-6)
    assert group_loss(lg, g, "sum").item() == pytest.approx(0.4, rel=1e-6)
    # balanced: −K Σ r_k log Q_k, uniform r: −(log 0.5 + 2 log 0.25); minimal (K log K) where Q = r
    assert group_loss(lg, g, "balanced").item() == pytest.approx(
        -(math.log(0.5) + 2 * math.log(0.25)), rel=1e-6
    )
    assert group_loss(logits_for([[0.1, 0.1, 0.1, 0.7]]), g, "balanced").item() == pytest.approx(
        3 * math.log(3), rel=1e-6
    )
    # a non-uniform reference moves the minimum to Q = r
    r = [0.5, 0.25, 0.25]
    at_r = group_loss(lg, g, "balanced", r).item()
    assert at_r == pytest.approx(-3 * (0.5 * math.log(0.5) + 0.5 * math.log(0.25)), rel=1e-6)
    assert at_r < group_loss(logits_for([[0.1, 0.1, 0.1, 0.7]]), g, "balanced", r).item()
    assert hint_loss(lg, g, torch.tensor([2])).item() == pytest.approx(-math.log(0.25), rel=1e-6)
    assert mass_anchor(lg, g, torch.tensor([math.log(0.4)])).item() == pytest.approx(0.0, abs=1e-9)


def test_two_groups_compute_what_the_pronoun_pair_did():
    lg = torch.randn(16, 50, generator=torch.Generator().manual_seed(0))
    la, lb = lg.float().log_softmax(-1)[:, 3], lg.float().log_softmax(-1)[:, 7]
    lz = torch.logaddexp(la, lb)
    assert torch.equal(group_loss(lg, [[3], [7]], "balanced"), (-(la - lz) - (lb - lz)).mean())
    assert torch.equal(group_loss(lg, [[3], [7]], "paper"), (-(la + lb)).mean())
