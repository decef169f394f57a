"""Multi-token word scoring against a plain Hugging Face forward on prompt + word, token by token."""

import numpy as np
import pytest
import torch

from lftf_interp.errors import TokenizationError
from lftf_interp.metrics.wordprobs import word_ids, word_logprobs
from lftf_interp.models.loading import hf_model
from lftf_interp.models.tokens import encode

PROMPTS = [
    "The nurse said that",
    "The farmer went home because",
    "The pilot said that",
    "Alex uses xe/xem pronouns. Later,",
]
WORDS = [" he", " she", " they", " xe", " Buddhist", " ze"]


def hf_reference(model, prompt: str, word: str) -> float:
    p, w = encode(model, prompt), model.tokenizer.encode(word, add_special_tokens=False)
    with torch.no_grad():
        logp = hf_model(model)(torch.tensor([p + w])).logits[0].double().log_softmax(-1)
    return sum(logp[len(p) - 1 + j, t].item() for j, t in enumerate(w))


def test_multi_token_words_equal_the_token_by_token_sum(tiny3):
    assert max(len(w) for w in word_ids(tiny3, WORDS)) > 1  # the set really has multi-token words
    got = word_logprobs(tiny3, PROMPTS, WORDS, batch_size=2)
    ref = np.array([[hf_reference(tiny3, p, w) for w in WORDS] for p in PROMPTS])
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_single_token_path_equals_the_multi_token_path(tiny3):
    single = word_logprobs(tiny3, PROMPTS, [" he", " she"])
    mixed = word_logprobs(tiny3, PROMPTS, [" he", " she", " Buddhist"])[:, :2]
    np.testing.assert_allclose(single, mixed, atol=1e-5)
    with pytest.raises(TokenizationError, match="tokenises to nothing"):
        word_ids(tiny3, [" he", ""])
