import pytest

from lftf_interp.errors import TokenizationError
from lftf_interp.models.loading import load_tokenizer
from lftf_interp.models.tokens import encode, encode_batch, single_token_id, target_ids


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer()


def test_pronouns_are_single_tokens(tok):
    ids = target_ids(tok, [" he", " she", " He", " She"])
    assert ids == tok.convert_tokens_to_ids(["Ġhe", "Ġshe", "ĠHe", "ĠShe"]) and len(set(ids)) == 4


def test_multi_token_word_is_refused_with_fix(tok):
    with pytest.raises(TokenizationError, match="exactly one") as e:
        single_token_id(tok, " nonbinaryperson")
    assert "leading space" in str(e.value)
    with pytest.raises(TokenizationError, match="at least one"):
        target_ids(tok, [])


def test_no_bos_is_prepended(tok):
    assert encode(tok, "The nurse said that") == tok.convert_tokens_to_ids(
        ["The", "Ġnurse", "Ġsaid", "Ġthat"]
    )
    assert tok.bos_token_id not in encode(tok, "The nurse said that")


def test_encode_batch_right_pads(tok):
    ids, lengths = encode_batch(tok, ["The nurse said that", "The farmer went home because"])
    assert ids.shape == (2, int(lengths.max()))
    assert ids[0, : lengths[0]].tolist() == encode(tok, "The nurse said that") and lengths.tolist() == [4, 5]
    assert (ids[0, lengths[0] :] == tok.pad_token_id).all()


def test_bos_policy_is_applied_only_at_the_start_of_a_sequence():
    from lftf_interp.models.loading import load_tokenizer
    from lftf_interp.models.tokens import bos_id, encode, encode_batch

    tok = load_tokenizer()
    plain = encode(tok, "The nurse said that")
    assert bos_id(tok) is None  # Llama (SmolLM2): no BOS
    tok.lftf_bos_id = 1  # what set_bos_policy records for a family that starts with BOS (Gemma-3)
    assert encode(tok, "The nurse said that") == [1, *plain]
    assert encode(tok, " she", start=False) == tok.encode(" she", add_special_tokens=False)
    ids, lengths = encode_batch(tok, ["The nurse said that"], suffix=[5])
    assert ids[0].tolist() == [1, *plain, 5] and lengths.tolist() == [len(plain) + 2]


def test_first_difference():
    from lftf_interp.models.tokens import first_difference

    assert first_difference([1, 2, 3], [1, 5, 3]) == 1
    assert first_difference([1, 2], [1, 2, 3]) is None and first_difference([], [1]) is None
