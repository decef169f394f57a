"""Sequence scoring and greedy decoding against a plain Hugging Face forward / generate."""

import numpy as np
import pytest
import torch

from lftf_interp.metrics.scoring import Seq, batches, greedy, score
from lftf_interp.models.loading import hf_model
from lftf_interp.models.runner import Runner
from lftf_interp.models.tokens import encode


def test_score_equals_token_by_token_log_probs(tiny3):
    r, hf = Runner(tiny3), hf_model(tiny3)
    a, b = encode(tiny3, "The nurse said that she would come"), encode(tiny3, "Water boils")
    seqs = [Seq(a, score_from=3), Seq(b, score_from=1), Seq(b, choice_ids=(a[0], a[1]))]
    lp, n, choice, _, is_greedy = score(r, seqs, token_budget=16)
    with torch.no_grad():
        la = hf(torch.tensor([a])).logits[0].double().log_softmax(-1)
        lb = hf(torch.tensor([b])).logits[0].double().log_softmax(-1)
    assert lp[0] == pytest.approx(sum(la[i - 1, a[i]].item() for i in range(3, len(a))), abs=1e-4)
    assert lp[1] == pytest.approx(sum(lb[i - 1, b[i]].item() for i in range(1, len(b))), abs=1e-4)
    assert n.tolist()[:2] == [len(a) - 3, len(b) - 1]
    np.testing.assert_allclose(choice[2], [lb[-1, a[0]].item(), lb[-1, a[1]].item()], atol=1e-4)
    assert bool(is_greedy[0]) == all(la[i - 1].argmax().item() == a[i] for i in range(3, len(a)))


def test_batches_respect_the_token_budget():
    seqs = [Seq(list(range(k))) for k in (5, 3, 8, 2, 8)]
    got = list(batches(seqs, budget=16))
    assert sorted(i for b in got for i in b) == list(range(5))
    assert all(len(b) * max(len(seqs[i].ids) for i in b) <= 16 or len(b) == 1 for b in got)


def test_greedy_tokens_are_the_argmax_of_a_plain_hf_forward(tiny3):
    """Each new token is the argmax of a full (uncached) Hugging Face forward on the prompt + the tokens before it.
    (``hf.generate`` is no reference here: on the bridged modules it takes another cache path.)"""
    ids = encode(tiny3, "The nurse said that")
    out = greedy(Runner(tiny3), ids, 6)
    with torch.no_grad():
        logits = hf_model(tiny3)(torch.tensor([ids + out])).logits[0]
    assert out == [int(logits[len(ids) - 1 + i].argmax()) for i in range(6)]
    assert greedy(Runner(tiny3), ids, 6, stop=lambda toks: len(toks) == 2) == out[:2]
    assert greedy(Runner(tiny3), ids, 0) == []
