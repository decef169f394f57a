"""Prefix reuse: a forward that starts at block s from stored residuals equals the whole forward, stores are
keyed by the weights before s, and a persisted store is checked on every read."""

import pytest
import torch
from helpers import flip

from lftf_interp.errors import LftfError
from lftf_interp.metrics.groups import prompt_probs
from lftf_interp.metrics.scoring import Seq, score
from lftf_interp.models.loading import tiny_model
from lftf_interp.models.prefix import clear_prefixes, persist_prefixes, store_for
from lftf_interp.models.runner import Runner, canonical_state_dict, reuse_prefix

PROMPTS = [
    "The nurse said that",
    "A farmer from the village said that",
    "The chef said",
    "Yesterday the clerk",
]


def perturb(model, block: int) -> None:
    with torch.no_grad():
        for n, p in canonical_state_dict(model).items():
            if f"layers.{block}." in n:
                p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(len(n))))


def count_blocks(monkeypatch) -> list[int]:
    seen: list[int] = []
    orig = Runner.block

    def block(self, layer, *a, **k):
        seen.append(layer)
        return orig(self, layer, *a, **k)

    monkeypatch.setattr(Runner, "block", block)
    return seen


def test_reuse_equals_the_whole_forward_and_skips_earlier_blocks(monkeypatch):
    clear_prefixes()
    base = tiny_model(3, seed=1)
    with reuse_prefix(base, 2):  # the base model fills the store
        prompt_probs(base, PROMPTS)
    tuned = tiny_model(3, seed=1)
    perturb(tuned, 2)
    plain = prompt_probs(tuned, PROMPTS)
    seqs = [Seq([1, 5, 9, 4, 7], score_from=1)]
    lp_plain = score(Runner(tuned), seqs, 64)[0]
    seen = count_blocks(monkeypatch)
    with reuse_prefix(tuned, 2):
        reused = prompt_probs(tuned, PROMPTS)
        lp_reused = score(Runner(tuned), seqs, 64)[0]
    torch.testing.assert_close(
        torch.tensor(reused[["p_he", "p_she"]].to_numpy()),
        torch.tensor(plain[["p_he", "p_she"]].to_numpy()),
        atol=1e-6,
        rtol=1e-5,
    )
    assert lp_reused == pytest.approx(lp_plain, abs=1e-5)
    # the prompts were stored by the base model: only block 2 ran; the new sequence ran blocks 0-1 once
    assert seen.count(0) == 1 and seen.count(2) == 2


def test_store_is_keyed_by_the_weights_before_its_block():
    clear_prefixes()
    a, b = tiny_model(3, seed=1), tiny_model(3, seed=1)
    perturb(b, 2)
    assert store_for(Runner(a), 2) is store_for(Runner(b), 2)  # block 2 differs: same residual entering it
    perturb(b, 1)
    assert store_for(Runner(a), 2) is not store_for(Runner(b), 2)


def test_training_inside_the_block_is_refused():
    m = tiny_model(3, seed=1)
    with pytest.raises(LftfError, match="changed inside reuse_prefix"):
        with reuse_prefix(m, 2):
            perturb(m, 0)


def test_persisted_store_is_read_back_and_a_flipped_byte_recomputes(tmp_path, monkeypatch, caplog):
    clear_prefixes()
    m = tiny_model(3, seed=1)
    with persist_prefixes(tmp_path), reuse_prefix(m, 2):
        first = prompt_probs(m, PROMPTS)
    (path,) = tmp_path.glob("*.safetensors")
    clear_prefixes()
    seen = count_blocks(monkeypatch)
    with persist_prefixes(tmp_path), reuse_prefix(m, 2):
        again = prompt_probs(m, PROMPTS)
    assert 0 not in seen and again.equals(first)
    clear_prefixes()
    flip(path)
    seen.clear()
    with persist_prefixes(tmp_path), reuse_prefix(m, 2):
        third = prompt_probs(m, PROMPTS)
    assert 0 in seen and "unreadable" in caplog.text
    torch.testing.assert_close(torch.tensor(third["p_he"].to_numpy()), torch.tensor(first["p_he"].to_numpy()))
