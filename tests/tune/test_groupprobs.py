"""The training reader's group log-probabilities equal the evaluation path's, for words of any length."""

import numpy as np
import torch

from lftf_interp.data.axis import axis_from_dict
from lftf_interp.metrics.groups import group_probs
from lftf_interp.metrics.wordprobs import word_logprobs
from lftf_interp.tune.groupprobs import GroupReader
from lftf_interp.tune.losses import LogMasses, group_loss, log_group_mass
from lftf_interp.tune.scopes import make_scope

AXIS = {
    "name": "p",
    "groups": [
        {"name": "he", "words": [" he"]},
        {"name": "xe", "words": [" xe", " ze"]},
        {"name": "they", "words": [" they", " they all"]},
    ],
    "prompts": {"bias": "genbias"},
}
PROMPTS = ["Alex uses xe/xem pronouns. Later", "The nurse said that", "Sam went home because"]


def test_multi_token_group_log_probs_equal_the_evaluation_path(tiny3):
    axis = axis_from_dict(AXIS)
    scope = make_scope(tiny3, "block", [1])
    reader = GroupReader(scope, tiny3, axis)
    assert not reader.single and reader.prefixes == sorted({(1792,), (502,)})  # " xe" = 1792 85, " they all"
    lm = reader.log_masses(reader.cache(PROMPTS), torch.arange(3))
    assert isinstance(lm, LogMasses) and len(lm) == 3
    want = np.log(group_probs(word_logprobs(tiny3, PROMPTS, axis.words), axis))
    np.testing.assert_allclose(torch.stack(lm, -1).detach().numpy(), want, atol=1e-4)
    loss = group_loss(lm, reader.groups, "balanced")  # differentiable through the tuned block
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in scope.params.values())


def test_single_token_words_give_the_logits_themselves(tiny3):
    axis = axis_from_dict({**AXIS, "groups": AXIS["groups"][:1] + [{"name": "she", "words": [" she"]}]})
    scope = make_scope(tiny3, "block", [2])
    reader = GroupReader(scope, tiny3, axis)
    cached = reader.cache(PROMPTS)
    out = reader.log_masses(cached, torch.arange(3))
    assert reader.single and torch.equal(out, scope.last_logits(cached[0], torch.arange(3)))
    assert torch.equal(
        log_group_mass(out, reader.groups),
        log_group_mass(
            LogMasses([out.float().log_softmax(-1)[:, g[0]] for g in reader.groups]), reader.groups
        ),
    )
