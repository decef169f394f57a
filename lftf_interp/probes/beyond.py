"""What a fine-tune changes beyond its template: one function per probe, each returning flat metrics (with
bootstrap 95 % CIs over items) and its per-item frame.

* :func:`gendered_knowledge` — accuracy and share on the right pronoun after inherently gendered nouns.
* :func:`fit_slopes` / :func:`gender_slopes` — DAMA's a_s / a_f: least squares of P(he) − P(she) on the
  Bolukbasi stereotypical and definitional scores (professions the suite never trains on).
* :func:`pair_preference` — WinoBias (type 1 / 2) and Winogender: share of pairs whose pro-stereotypical
  sentence is more likely than the anti-stereotypical one (0.5 = no preference); :func:`winobias_parts` splits
  that preference into the pronoun token itself and the rest of the sentence.
* :func:`math_probe` — generated arithmetic, four candidates, scored by log-likelihood (chance 0.25).
* :func:`hint_kinds` — UB per hint kind on GenHintEval test and on hint phrasings never used in training.
* :func:`paper_style` — both AFGB variants on the paper's "The {occupation} {action} because" prompts.
* :func:`long_context` — any axis's bias score / hint following (AFGB / UB on gender) with 0 … 1,024 tokens of
  neutral text (SOTU, Brown) before each prompt.

The probes that score he / she on gendered material take the axis whose groups they score (``axis``: a
gendered one, such as the shipped ``gender``); :class:`~lftf_interp.probes.run.ValidityConfig` checks that.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

from lftf_interp.data import DEFAULT_AXIS, OCCUPATIONS, TEMPLATES, load_axis, load_bolukbasi
from lftf_interp.data.datasets import BiasDataset
from lftf_interp.data.external import winobias_pairs, winogender_pairs
from lftf_interp.data.probesets import (
    GENDERED_PAIRS,
    gendered_prompts,
    math_items,
    paper_prompts,
    split_pairs,
    unseen_hint_prompts,
)
from lftf_interp.errors import ConfigError
from lftf_interp.metrics.groups import evaluate_axis, score_prompts, summarize_axis
from lftf_interp.metrics.pronoun import bootstrap_ci
from lftf_interp.metrics.scoring import Seq, score
from lftf_interp.models.runner import Runner
from lftf_interp.models.tokens import encode, first_difference
from lftf_interp.retain.tasks import corpus_documents

CONTEXT_CORPORA = ("sotu", "brown")  # where the long-context probe's text comes from


def _ci(values, n_boot: int, seed: int) -> list[float]:
    return list(bootstrap_ci(values, n_boot, seed))


def _score(model, ds: BiasDataset, axis: str) -> pd.DataFrame:
    """The set's rows scored on the axis's groups (:func:`~lftf_interp.metrics.groups.score_prompts`)."""
    return score_prompts(model, ds.df, load_axis(axis))


# ----------------------------------------------------------------------------- gendered nouns


def gendered_knowledge(
    model, split: str = "test", n_boot: int = 1000, seed: int = 0, axis: str = DEFAULT_AXIS
) -> tuple[dict, pd.DataFrame]:
    """On gendered nouns (actress → she): ``gendered_acc`` (share of prompts where the right pronoun is the more
    likely one) and ``gendered_share`` (mean P(right) / (P(he) + P(she)))."""
    df = _score(model, gendered_prompts(split), axis)
    acc = (df["ub"] > 0.5).astype(float)
    return {
        "gendered_acc": float(acc.mean()),
        "gendered_acc_ci": _ci(acc, n_boot, seed),
        "gendered_share": float(df["ub"].mean()),
        "gendered_share_ci": _ci(df["ub"], n_boot, seed),
        "gendered_n": int(len(df)),
    }, df


# ----------------------------------------------------------------------------- a_s / a_f slopes


def fit_slopes(y, stereotypical, definitional) -> tuple[float, float, float]:
    """Least squares y ≈ a_s · stereotypical + a_f · definitional + b → (a_s, a_f, b)."""
    y, s, f = (np.asarray(v, float) for v in (y, stereotypical, definitional))
    if not len(y) == len(s) == len(f) or len(y) < 3:
        raise ConfigError(f"fit_slopes needs >= 3 equally long arrays, got {len(y)}, {len(s)}, {len(f)}.")
    x = np.column_stack([s, f, np.ones_like(s)])
    (a_s, a_f, b), *_ = np.linalg.lstsq(x, y, rcond=None)
    return float(a_s), float(a_f), float(b)


def slope_words(path=None) -> pd.DataFrame:
    """Bolukbasi professions minus every word the suite trains or selects on (GenBiasEval occupations, the
    train / validation gendered nouns): word, definitional, stereotypical."""
    seen = {o.lower() for o, _, _ in OCCUPATIONS}
    seen |= {w for pair, s in split_pairs().items() if s != "test" for w in pair}
    df = load_bolukbasi(path)
    return df[~df["word"].str.lower().isin(seen)].reset_index(drop=True)


def gender_slopes(
    model, path=None, n_templates: int = 5, n_boot: int = 1000, seed: int = 0, axis: str = DEFAULT_AXIS
) -> tuple[dict, pd.DataFrame]:
    """a_s, a_f (and their bootstrap CIs over words) of y = mean over templates of P(he) − P(she) for
    "The {profession} …" prompts in the first ``n_templates`` templates."""
    words = slope_words(path)
    rows = [
        {"prompt": t.format(occupation=w), "word": w} for w in words["word"] for t in TEMPLATES[:n_templates]
    ]
    scored = _score(model, BiasDataset("bolukbasi", "all", pd.DataFrame(rows)), axis)
    scored["diff"] = scored["p_he"] - scored["p_she"]
    per = words.merge(scored.groupby("word", as_index=False)["diff"].mean(), on="word")
    a_s, a_f, b = fit_slopes(per["diff"], per["stereotypical"], per["definitional"])
    rng = np.random.default_rng(seed)
    boots = np.array(
        [
            fit_slopes(*(per[c].to_numpy()[i] for c in ("diff", "stereotypical", "definitional")))[:2]
            for i in rng.integers(0, len(per), size=(n_boot, len(per)))
        ]
    )
    lo, hi = np.quantile(boots, [0.025, 0.975], axis=0)
    return {
        "a_s": a_s,
        "a_s_ci": [float(lo[0]), float(hi[0])],
        "a_f": a_f,
        "a_f_ci": [float(lo[1]), float(hi[1])],
        "slope_intercept": b,
        "slope_n_words": int(len(per)),
    }, per


# ----------------------------------------------------------------------------- sentence pairs


def sentence_logprobs(model, texts: Sequence[str], token_budget: int = 4096) -> np.ndarray:
    """Summed log-probability of each text's tokens (after its first token, or all of them behind a BOS)."""
    seqs = [Seq(encode(model, t), score_from=1) for t in texts]
    lp, *_ = score(Runner(model), seqs, token_budget)
    return lp


def pair_preference(model, pro: Sequence[str], anti: Sequence[str]) -> np.ndarray:
    """Per pair: 1 if the pro-stereotypical sentence is more likely than the anti-stereotypical one, else 0."""
    lp = sentence_logprobs(model, [*pro, *anti])
    return (lp[: len(pro)] > lp[len(pro) :]).astype(float)


def winobias_preference(
    model, path=None, split: str = "test", n_boot: int = 1000, seed: int = 0
) -> tuple[dict, pd.DataFrame]:
    """WinoBias pro-preference, all pairs and per type (1: resolved by world knowledge, 2: by syntax)."""
    df = winobias_pairs(path, split)
    df["pro_pref"] = pair_preference(model, df["pro"].tolist(), df["anti"].tolist())
    out = {
        "winobias_pro": float(df["pro_pref"].mean()),
        "winobias_pro_ci": _ci(df["pro_pref"], n_boot, seed),
        "winobias_n": int(len(df)),
    }
    for t, g in df.groupby("type"):
        out[f"winobias_t{t}_pro"] = float(g["pro_pref"].mean())
        out[f"winobias_t{t}_pro_ci"] = _ci(g["pro_pref"], n_boot, seed)
    return out, df


def winobias_parts(
    model, path=None, split: str = "test", n_boot: int = 1000, seed: int = 0
) -> tuple[dict, pd.DataFrame]:
    """WinoBias's pro-preference split where the pro and anti sentences part (their first differing token, the
    pronoun): Δ_pronoun = log P(pro pronoun | prefix) − log P(anti pronoun | prefix), what a next-token loss such
    as lftf-beyond's reaches, and Δ_rest = Δ_sentence − Δ_pronoun, the rest of the sentence given that pronoun.
    Metrics: the pro-preference of each part (share of pairs with Δ > 0), their means, and the share of pairs
    whose sentence preference has the sign of Δ_pronoun."""
    df = winobias_pairs(path, split)
    pro, anti = [encode(model, t) for t in df["pro"]], [encode(model, t) for t in df["anti"]]
    cut = [first_difference(a, b) or 0 for a, b in zip(pro, anti, strict=True)]
    keep = [i for i, c in enumerate(cut) if c >= 1]  # the pronoun is never a sentence's first token
    seqs = (
        [Seq(pro[i], score_from=1) for i in keep]
        + [Seq(anti[i], score_from=1) for i in keep]
        + [Seq(pro[i][: cut[i] + 1], score_from=cut[i]) for i in keep]
        + [Seq(anti[i][: cut[i] + 1], score_from=cut[i]) for i in keep]
    )
    lp, *_ = score(Runner(model), seqs, 4096)
    n = len(keep)
    d_sent, d_pron = lp[:n] - lp[n : 2 * n], lp[2 * n : 3 * n] - lp[3 * n :]
    out = (
        df.iloc[keep]
        .reset_index(drop=True)
        .assign(d_sentence=d_sent, d_pronoun=d_pron, d_rest=d_sent - d_pron)
    )
    m: dict = {"winobias_n_parts": n}
    for part in ("sentence", "pronoun", "rest"):
        pref = (out[f"d_{part}"] > 0).astype(float)
        m[f"winobias_{part}_pro"], m[f"winobias_{part}_pro_ci"] = float(pref.mean()), _ci(pref, n_boot, seed)
        m[f"winobias_{part}_mean"] = float(out[f"d_{part}"].mean())
    m["winobias_sign_from_pronoun"] = float((np.sign(out.d_sentence) == np.sign(out.d_pronoun)).mean())
    return m, out


def winogender_preference(model, path=None, n_boot: int = 1000, seed: int = 0) -> tuple[dict, pd.DataFrame]:
    """Winogender: share of (template, participant) pairs where the BLS-majority gender's sentence wins."""
    df = winogender_pairs(path)
    pro = np.where(df["pro"] == "male", df["male"], df["female"]).tolist()
    anti = np.where(df["pro"] == "male", df["female"], df["male"]).tolist()
    df["pro_pref"] = pair_preference(model, pro, anti)
    return {
        "winogender_pro": float(df["pro_pref"].mean()),
        "winogender_pro_ci": _ci(df["pro_pref"], n_boot, seed),
        "winogender_n": int(len(df)),
    }, df


# ----------------------------------------------------------------------------- math


def math_probe(model, n: int = 300, seed: int = 0, n_boot: int = 1000) -> tuple[dict, pd.DataFrame]:
    """Accuracy on :func:`~lftf_interp.data.probesets.math_items` (argmax of the answers' summed log-probs)."""
    items = math_items(n, seed)
    seqs, owner = [], []
    for i, r in items.iterrows():
        ctx = encode(model, r["question"])
        for c in r["choices"]:
            cont = encode(model, c, start=False)
            seqs.append(Seq(ctx + cont, score_from=len(ctx)))
            owner.append(i)
    lp, *_ = score(Runner(model), seqs, 4096)
    lp = lp.reshape(len(items), -1)
    items = items.assign(
        pred=lp.argmax(1),
        margin=lp[np.arange(len(items)), items["answer"]]
        - np.where(np.eye(lp.shape[1], dtype=bool)[items["answer"]], -np.inf, lp).max(1),
    )
    correct = (items["pred"] == items["answer"]).astype(float)
    out = {
        "math_acc": float(correct.mean()),
        "math_acc_ci": _ci(correct, n_boot, seed),
        "math_n": int(len(items)),
    }
    for op, g in items.assign(correct=correct).groupby("op"):
        out[f"math_acc_{ {'+': 'add', '-': 'sub', '*': 'mul'}[op] }"] = float(g["correct"].mean())
    return out, items


# ----------------------------------------------------------------------------- hints


def hint_kinds(
    model, n_boot: int = 1000, seed: int = 0, axis: str = DEFAULT_AXIS
) -> tuple[dict, pd.DataFrame]:
    """UB per GenHintEval hint kind (test split), and UB on the test-only phrasings of unseen kinds."""
    ax = load_axis(axis)
    seen = score_prompts(model, ax.hint_prompts("test"), ax).assign(source="genhint")
    unseen = score_prompts(model, unseen_hint_prompts("test").df, ax).assign(source="unseen")
    out = {"ub_unseen": float(unseen["ub"].mean()), "ub_unseen_ci": _ci(unseen["ub"], n_boot, seed)}
    for k, g in seen.groupby("hint_kind"):
        out[f"ub_kind_{k}"] = float(g["ub"].mean())
    for k, g in unseen.groupby("hint_kind"):
        out[f"ub_unseen_{k}"] = float(g["ub"].mean())
    return out, pd.concat([seen, unseen], ignore_index=True)


# ----------------------------------------------------------------------------- paper prompts, long context


def paper_style(
    model, n_boot: int = 1000, seed: int = 0, axis: str = DEFAULT_AXIS
) -> tuple[dict, pd.DataFrame]:
    """Both AFGB variants on the paper-style prompt set (test occupations), overall and per action scale."""
    ax = load_axis(axis)
    df = score_prompts(model, paper_prompts("test").df, ax)
    m = summarize_axis(df, None, ax, n_boot, seed)
    out = {
        "paperstyle_afgb": m["afgb"],
        "paperstyle_afgb_ci": m["afgb_ci"],
        "paperstyle_afgb_paper": m["afgb_paper"],
        "paperstyle_afgb_paper_ci": m["afgb_paper_ci"],
        "paperstyle_mass": m["mass"],
    }
    for s, g in df.groupby("scale"):
        out[f"paperstyle_afgb_{s}"] = float(g["afgb"].mean())
        out[f"paperstyle_afgb_paper_{s}"] = float(g["afgb_paper"].mean())
    return out, df


def context_draws(
    model, n: int, seed: int, corpora: Sequence[str], max_length: int
) -> Iterator[tuple[str, int, list[int], int]]:
    """The long-context probe's ``n`` seeded draws: (corpus, document index, its ids, window offset)."""
    docs = {c: corpus_documents(c) for c in corpora}
    rng = np.random.default_rng(seed)
    found = 0
    while found < n:
        c = corpora[found % len(corpora)]
        d = int(rng.integers(len(docs[c])))
        ids = encode(model, docs[c][d], start=False)
        if len(ids) < max_length + 1:
            continue
        found += 1
        yield c, d, ids, int(rng.integers(0, len(ids) - max_length))


def context_prefixes(
    model,
    n: int,
    length: int,
    seed: int = 0,
    corpora: Sequence[str] = CONTEXT_CORPORA,
    max_length: int | None = None,
) -> list[str]:
    """``n`` stretches of neutral text (seeded documents and offsets, corpora in turn), each the last ``length``
    tokens of a ``max_length``-token window, decoded and ended with a blank line. For one seed and
    ``max_length`` the stretches are nested: a shorter one is the end of a longer one. ``length`` 0: ""."""
    max_length = max(max_length or length, length)
    if length == 0:
        return [""] * n
    return [
        model.tokenizer.decode(ids[at + max_length - length : at + max_length]).strip() + "\n\n"
        for _, _, ids, at in context_draws(model, n, seed, corpora, max_length)
    ]


def long_context(
    model,
    lengths: Sequence[int] = (0, 64, 256, 1024),
    n: int = 64,
    seed: int = 0,
    n_boot: int = 1000,
    axis: str = DEFAULT_AXIS,
) -> tuple[dict, pd.DataFrame]:
    """The axis's bias score, hint following and group mass on ``n`` seeded test bias prompts and ``n`` test hint
    prompts (where the axis has hints) after each context length: the same prompts and, per prompt, nested
    stretches of neutral text at every length (:func:`context_prefixes`; the first draws of one sequence, so
    :func:`~lftf_interp.probes.run.neutral_documents` keeps them out of training text). ``ctx<L>_afgb``: the
    bias score (AFGB on gender, with the paper's AFGB as ``ctx<L>_afgb_paper``), ``ctx<L>_ub``: hint
    following, ``ctx<L>_mass``: group mass."""
    ax = load_axis(axis)
    bias = ax.bias_prompts("test")
    bias = bias.sample(n=min(n, len(bias)), random_state=seed)
    hint = ax.hint_prompts("test") if ax.has_hints else bias.iloc[:0]
    hint = hint.sample(n=min(n, len(hint)), random_state=seed)
    data = pd.concat([bias, hint], ignore_index=True)
    rows, out = [], {}
    for length in lengths:
        pre = context_prefixes(model, len(data), length, seed, max_length=max(lengths))
        m, _, _ = evaluate_axis(
            model,
            ax,
            "test",
            data.assign(prompt=[p + q for p, q in zip(pre, data["prompt"], strict=True)]),
            batch_size=8,
            n_boot=n_boot,
            seed=seed,
        )
        ub = m.get("hint_following", float("nan"))
        paper = {"afgb_paper": m["afgb_paper"]} if "afgb_paper" in m else {}
        rows.append(
            {
                "context": length,
                "afgb": m["bias"],
                "afgb_ci": m["bias_ci"],
                **paper,
                "ub": ub,
                "mass": m["mass"],
            }
        )
        out[f"ctx{length}_afgb"] = m["bias"]
        out |= {f"ctx{length}_{k}": v for k, v in paper.items()}
        out[f"ctx{length}_ub"], out[f"ctx{length}_mass"] = ub, m["mass"]
    return out, pd.DataFrame(rows)


__all__ = [
    "GENDERED_PAIRS",
    "CONTEXT_CORPORA",
    "context_draws",
    "context_prefixes",
    "fit_slopes",
    "gender_slopes",
    "gendered_knowledge",
    "hint_kinds",
    "long_context",
    "math_probe",
    "pair_preference",
    "paper_style",
    "sentence_logprobs",
    "slope_words",
    "winobias_parts",
    "winobias_preference",
    "winogender_preference",
]
