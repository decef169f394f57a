import numpy as np
import pandas as pd
import pytest
import torch

from lftf_interp.data.probesets import math_items
from lftf_interp.errors import ConfigError
from lftf_interp.models.runner import hf_of
from lftf_interp.models.tokens import encode
from lftf_interp.probes import beyond as probes


def test_fit_slopes_recovers_known_slopes():
    rng = np.random.default_rng(0)
    s, f = rng.uniform(-1, 1, 200), rng.uniform(-1, 1, 200)
    y = 0.3 * s + 0.7 * f - 0.05
    assert probes.fit_slopes(y, s, f) == pytest.approx((0.3, 0.7, -0.05))
    a_s, a_f, _ = probes.fit_slopes(y + rng.normal(0, 0.01, 200), s, f)
    assert abs(a_s - 0.3) < 0.01 and abs(a_f - 0.7) < 0.01
    with pytest.raises(ConfigError, match="equally long"):
        probes.fit_slopes([1, 2], [1, 2], [1, 2])


def _hf_logprob(model, text):
    ids = torch.tensor([encode(model, text)])
    with torch.no_grad():
        logp = hf_of(model)(ids).logits[0].double().log_softmax(-1)
    return float(logp[torch.arange(ids.shape[1] - 1), ids[0, 1:]].sum())


def test_sentence_logprobs_and_pair_preference_match_hugging_face(tiny_bridge):
    texts = ["The nurse said that he was late.", "The nurse said that she was late.", "A cat sat."]
    got = probes.sentence_logprobs(tiny_bridge, texts)
    assert got == pytest.approx([_hf_logprob(tiny_bridge, t) for t in texts], abs=1e-3)
    pref = probes.pair_preference(tiny_bridge, texts[:1], texts[1:2])
    assert pref.tolist() == [float(got[0] > got[1])]


def test_math_probe_scores_the_answers_by_log_likelihood(tiny_bridge):
    out, items = probes.math_probe(tiny_bridge, n=12, seed=1, n_boot=20)
    r = items.iloc[0]
    lps = [_hf_logprob(tiny_bridge, r.question + c) - _hf_logprob(tiny_bridge, r.question) for c in r.choices]
    assert r.pred == int(np.argmax(lps))
    assert out["math_acc"] == pytest.approx((items.pred == items.answer).mean()) and out["math_n"] == 12
    assert list(items.question) == list(math_items(12, 1).question)


@pytest.mark.downloads
def test_context_prefixes_are_nested_and_of_the_asked_length(tiny_bridge):
    long = probes.context_prefixes(tiny_bridge, 3, 64, seed=2, max_length=64)
    short = probes.context_prefixes(tiny_bridge, 3, 16, seed=2, max_length=64)
    assert all(lp.strip().endswith(sp.strip()) for lp, sp in zip(long, short, strict=True))
    for p in long:
        assert p.endswith("\n\n") and abs(len(encode(tiny_bridge, p.strip(), start=False)) - 64) <= 4
    assert probes.context_prefixes(tiny_bridge, 2, 0) == ["", ""]


def test_gendered_knowledge_counts_the_right_pronoun(tiny_bridge):
    out, df = probes.gendered_knowledge(tiny_bridge, n_boot=20)
    right = np.where(df.label == "he", df.p_he, df.p_she)
    assert out["gendered_acc"] == pytest.approx(
        (right > np.where(df.label == "he", df.p_she, df.p_he)).mean()
    )
    assert out["gendered_share"] == pytest.approx((right / df.mass).mean())


def test_gender_slopes_on_the_bolukbasi_words(tiny_bridge, external_dir):
    out, per = probes.gender_slopes(
        tiny_bridge, external_dir / "professions_bolukbasi", n_templates=1, n_boot=20
    )
    assert (out["a_s"], out["a_f"]) == pytest.approx(
        probes.fit_slopes(per["diff"], per.stereotypical, per.definitional)[:2]
    )
    words = set(probes.slope_words(external_dir / "professions_bolukbasi").word)
    assert "nurse" not in words and len(words) == out["slope_n_words"]  # GenBiasEval occupations are left out


def test_winobias_preference_per_type(tiny_bridge, external_dir):
    out, df = probes.winobias_preference(tiny_bridge, external_dir / "winobias", "test", n_boot=20)
    assert out["winobias_pro"] == pytest.approx(df.pro_pref.mean())
    assert out["winobias_t1_pro"] == pytest.approx(df[df.type == 1].pro_pref.mean())
    assert isinstance(df, pd.DataFrame) and out["winobias_n"] == len(df)


@pytest.mark.integration  # a whole pipeline, over 12 s
def test_winobias_parts_split_the_sentence_preference_at_the_pronoun(tiny_bridge, external_dir):
    m, df = probes.winobias_parts(tiny_bridge, external_dir / "winobias", "test", n_boot=20)
    whole, ref = probes.winobias_preference(tiny_bridge, external_dir / "winobias", "test", n_boot=20)
    assert m["winobias_n_parts"] == len(df) == len(ref)  # every pair parts at a token after the first
    assert m["winobias_sentence_pro"] == pytest.approx(whole["winobias_pro"])
    pd.testing.assert_series_equal(df["d_pronoun"] + df["d_rest"], df["d_sentence"], check_names=False)
    # Δ_pronoun by hand for one pair: log-softmax at the last shared position, pro token minus anti token
    r = df.iloc[3]
    a, b = encode(tiny_bridge, r.pro), encode(tiny_bridge, r.anti)
    cut = next(i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)
    with torch.no_grad():
        logp = hf_of(tiny_bridge)(torch.tensor([a[:cut]])).logits[0, -1].log_softmax(-1)
    assert r.d_pronoun == pytest.approx((logp[a[cut]] - logp[b[cut]]).item(), abs=1e-4)
    assert m["winobias_pronoun_pro"] == pytest.approx((df.d_pronoun > 0).mean())
    assert 0 <= m["winobias_sign_from_pronoun"] <= 1


def test_winobias_select_probe_reads_the_held_out_part_of_dev(tiny_bridge, external_dir):
    from lftf_interp.data.external import winobias_pairs
    from lftf_interp.probes import ValidityConfig, validity_report

    flat, frames = validity_report(
        tiny_bridge, ValidityConfig(probes=("winobias_select",), external=str(external_dir), n_boot=20)
    )
    select = winobias_pairs(external_dir / "winobias", "dev-select")
    assert flat["winobias_select_n"] == len(select) and not any(k.startswith("winobias_pro") for k in flat)
    frame = frames["winobias_select"]
    assert list(frame["pro"]) == list(select["pro"])
    assert flat["winobias_select_pro"] == pytest.approx(frame["pro_pref"].mean())


@pytest.mark.downloads
def test_long_context_scores_the_axis_prompts_after_the_text(tiny_bridge):
    from lftf_interp.data import load_axis
    from lftf_interp.metrics.groups import score_prompts

    out, df = probes.long_context(tiny_bridge, (0, 32), n=6, seed=3, n_boot=20, axis="race-choice")
    ax = load_axis("race-choice")
    bias = ax.bias_prompts("test").sample(n=6, random_state=3)
    hint = ax.hint_prompts("test").sample(n=6, random_state=3)
    pre = probes.context_prefixes(tiny_bridge, 12, 32, seed=3, max_length=32)
    for length, prefixes in ((0, [""] * 12), (32, pre)):
        b = score_prompts(
            tiny_bridge,
            bias.assign(prompt=[p + q for p, q in zip(prefixes[:6], bias.prompt, strict=True)]),
            ax,
        )
        h = score_prompts(
            tiny_bridge,
            hint.assign(prompt=[p + q for p, q in zip(prefixes[6:], hint.prompt, strict=True)]),
            ax,
        )
        assert out[f"ctx{length}_afgb"] == pytest.approx(b["bias"].mean(), abs=1e-6)
        assert out[f"ctx{length}_mass"] == pytest.approx(b["mass"].mean(), abs=1e-6)
        assert out[f"ctx{length}_ub"] == pytest.approx(h["hint_following"].mean(), abs=1e-6)
    assert out["ctx0_afgb"] != pytest.approx(out["ctx32_afgb"])  # the text is read
    assert list(df.context) == [0, 32]
    # one set of keys on every axis; a two-group axis adds the paper's AFGB, |P(he) − P(she)|
    assert out.keys() == {f"ctx{n}_{k}" for n in (0, 32) for k in ("afgb", "ub", "mass")}
    gender, _ = probes.long_context(tiny_bridge, (0,), n=4, seed=3, n_boot=20)
    assert gender.keys() == {"ctx0_afgb", "ctx0_afgb_paper", "ctx0_ub", "ctx0_mass"}
