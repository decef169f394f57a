"""Capability retention: does the tuned model still do what the base model did?

``compute_reference(base, cfg)`` scores the base model once and keeps what a paired comparison needs
(per-window NLL, per-item choice log-likelihoods, base next-token log-probs at the KL positions).
``compute_retention(tuned, ref)`` scores a tuned model on the same items; ``compare_retention`` turns the
pair into one row per metric with a paired bootstrap 95 % CI of the change.

Speed: for a model whose first ``start`` blocks are untouched (a block fine-tune), the reference can cache
the residual stream entering block ``start`` (``cache_at=``); a tuned model is then scored from that
block on, ~10–30x cheaper than a full forward on SmolLM2. Scoring is exact either way (tested).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lftf_interp.configs import Config
from lftf_interp.errors import ConfigError, LftfError
from lftf_interp.metrics.scoring import Seq, batches, greedy, hidden, score
from lftf_interp.models.runner import Runner
from lftf_interp.models.tokens import encode
from lftf_interp.retain.tasks import CORPORA, MC_TASKS, corpus_documents, first_number, load_asdiv, load_mc

DEFAULT_TASKS = {"piqa": 300, "siqa": 200, "boolq": 100, "obqa": 200, "csqa": 200, "mmlu": 200}


@dataclass
class RetainConfig(Config):
    corpora: tuple[str, ...] = CORPORA
    n_windows: int = 8  # per corpus: one window from each of n documents (seeded)
    window: int = 256  # tokens per perplexity window
    kl_stride: int = 8  # KL(base ‖ tuned) at every k-th position of the windows
    tasks: dict[str, int] = field(
        default_factory=lambda: dict(DEFAULT_TASKS)
    )  # task -> items (seeded subset)
    asdiv: int = 100  # arithmetic items (greedy answer, exact match); 0 to skip
    asdiv_tokens: int = 6
    max_len: int = 384  # longer multiple-choice contexts keep their last tokens
    token_budget: int = 4096  # tokens per forward batch
    n_boot: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        self.corpora = tuple(self.corpora)
        for c in self.corpora:
            if c not in CORPORA:
                raise ConfigError(f"Unknown corpus {c!r}; choose from {CORPORA}.")
        for t in self.tasks:
            if t not in MC_TASKS:
                raise ConfigError(f"Unknown task {t!r}; choose from {MC_TASKS}.")
        if self.window < 8 or self.kl_stride < 1 or self.n_windows < 0:
            raise ConfigError("window must be >= 8, kl_stride >= 1, n_windows >= 0.")

    @classmethod
    def small(cls, **kw) -> RetainConfig:
        """A few-second probe for tests and notebooks (too small to detect a 2-point MC drop)."""
        base = dict(n_windows=2, window=64, tasks={"piqa": 20, "boolq": 10, "mmlu": 10}, asdiv=5, n_boot=200)
        return cls(**{**base, **kw})


@dataclass
class RetentionReference:
    config: RetainConfig
    windows: list[Seq]
    window_corpus: list[str]
    mc: list[Seq]
    mc_items: pd.DataFrame  # one row per (item, choice): task, item, choice, label, n_chars, seq
    asdiv_ids: list[list[int]]
    asdiv_answers: np.ndarray
    base: dict  # what compute_retention returns for the base model
    base_kl_logp: list[torch.Tensor]  # per window: [n_kl_positions, d_vocab] float16
    cached: dict[int, dict[str, list[torch.Tensor]]] = field(
        default_factory=dict
    )  # block -> residual entering it


def window_documents(model, cfg: RetainConfig) -> list[tuple[str, int, list[int]]]:
    """The documents the perplexity / KL windows come from: (corpus, document index, the window's ids), the
    first ``cfg.n_windows`` of a seeded order per corpus that hold a whole window."""
    out: list[tuple[str, int, list[int]]] = []
    rng = np.random.default_rng(cfg.seed)
    for c in cfg.corpora:
        docs = corpus_documents(c)
        found = 0
        for d in rng.permutation(len(docs)):
            if found >= cfg.n_windows:
                break
            ids = encode(model, docs[d])
            if len(ids) >= cfg.window:
                out.append((c, int(d), ids[: cfg.window]))
                found += 1
    return out


def _windows(model, cfg: RetainConfig) -> tuple[list[Seq], list[str]]:
    found = window_documents(model, cfg)
    return [Seq(ids, score_from=1, kl=True) for _, _, ids in found], [c for c, _, _ in found]


def _mc_seqs(model, cfg: RetainConfig) -> tuple[list[Seq], pd.DataFrame]:
    seqs, rows = [], []
    for task, n in cfg.tasks.items():
        for i, item in enumerate(load_mc(task, n, cfg.seed)):
            ctx = encode(model, item.context)
            conts = [encode(model, c, start=False) for c in item.choices]
            if all(len(c) == 1 for c in conts):  # one forward scores every choice (BoolQ, MMLU)
                seqs.append(Seq(ctx[-(cfg.max_len - 1) :], choice_ids=tuple(c[0] for c in conts)))
                for j, ch in enumerate(item.choices):
                    rows.append((task, i, j, item.label, len(ch), len(seqs) - 1, j))
                continue
            for j, (ch, c) in enumerate(zip(item.choices, conts, strict=True)):
                ids = (ctx + c)[-cfg.max_len :]
                seqs.append(Seq(ids, score_from=len(ids) - len(c)))
                rows.append((task, i, j, item.label, len(ch), len(seqs) - 1, -1))
    cols = ["task", "item", "choice", "label", "n_chars", "seq", "slot"]
    return seqs, pd.DataFrame(rows, columns=cols)


def _asdiv(runner, model, ref_ids: list[list[int]], answers: np.ndarray, n_new: int) -> np.ndarray:
    correct = np.zeros(len(ref_ids), dtype=bool)
    for i, ids in enumerate(ref_ids):
        text = model.tokenizer.decode(greedy(runner, ids, n_new))
        got = first_number(text.split("\n")[0])
        correct[i] = got is not None and abs(got - answers[i]) < 1e-6
    return correct


def _mc_choices(mc_items: pd.DataFrame, lp_sum, choice_lp) -> pd.DataFrame:
    ll = np.array(
        [
            choice_lp[s][slot] if slot >= 0 else lp_sum[s]
            for s, slot in zip(mc_items.seq, mc_items.slot, strict=True)
        ]
    )
    df = mc_items.assign(ll=ll, ll_norm=ll / mc_items.n_chars.clip(lower=1))
    per_item = []
    for (task, item), g in df.groupby(["task", "item"], sort=False):
        label = int(g.label.iloc[0])
        per_item.append(
            {
                "task": task,
                "item": item,
                "acc": float(g.ll.to_numpy().argmax() == label),
                "acc_norm": float(g.ll_norm.to_numpy().argmax() == label),
            }
        )
    return pd.DataFrame(per_item)


def _run_all(model, ref: RetentionReference, start: int, kl: bool) -> tuple[dict, list]:
    runner = Runner(model)
    cw, cm = (ref.cached[start]["windows"], ref.cached[start]["mc"]) if start else (None, None)
    s = start
    w_lp, w_n, _, w_kl, _ = score(
        runner, ref.windows, ref.config.token_budget, s, cw, ref.config.kl_stride if kl else 0
    )
    m_lp, _, m_choice, _, _ = score(runner, ref.mc, ref.config.token_budget, s, cm)
    res = {
        "windows": pd.DataFrame({"corpus": ref.window_corpus, "nll": -w_lp, "n": w_n}),
        "mc": _mc_choices(ref.mc_items, m_lp, m_choice),
        "asdiv": _asdiv(runner, model, ref.asdiv_ids, ref.asdiv_answers, ref.config.asdiv_tokens),
    }
    return res, w_kl


def compute_reference(
    base, cfg: RetainConfig = RetainConfig(), cache_at: Sequence[int] = ()
) -> RetentionReference:
    """Score the base model once (see module doc); for each block in ``cache_at`` keep the residual stream
    entering it, so models that differ from the base only from that block on are scored from there."""
    windows, names = _windows(base, cfg)
    mc, mc_items = _mc_seqs(base, cfg)
    ad = load_asdiv(cfg.asdiv, cfg.seed) if cfg.asdiv else []
    ref = RetentionReference(
        config=cfg,
        windows=windows,
        window_corpus=names,
        mc=mc,
        mc_items=mc_items,
        asdiv_ids=[encode(base, a.context) for a in ad],
        asdiv_answers=np.array([a.answer for a in ad]),
        base={},
        base_kl_logp=[],
    )
    runner = Runner(base)
    blocks = sorted({int(b) for b in cache_at if b > 0})
    for key, seqs in (("windows", windows), ("mc", mc)):
        for b in blocks:
            ref.cached.setdefault(b, {})[key] = [None] * len(seqs)  # type: ignore[list-item]  # filled below
        for idx in batches(
            seqs, cfg.token_budget
        ):  # one forward per batch, keeping each requested block's input
            x, done = hidden(runner, seqs, idx)
            with torch.no_grad():
                for b in blocks:
                    x = runner.run(x, start=done, stop=b)
                    done = b
                    for r, i in enumerate(idx):
                        ref.cached[b][key][i] = x[r, : len(seqs[i].ids)].clone()
    ref.base, kl = _run_all(base, ref, max(ref.cached, default=0), kl=True)
    ref.base_kl_logp = kl
    return ref


def compute_retention(tuned, ref: RetentionReference, start: int | None = None) -> dict:
    """Score ``tuned`` on the reference's items. ``start``: the first block that differs from the base (a block
    fine-tune); the nearest cached block at or before it is used, else a full forward."""
    s = max((b for b in ref.cached if start is not None and b <= start), default=0)
    res, kl = _run_all(tuned, ref, s, kl=True)
    per_window = []
    for b, t in zip(ref.base_kl_logp, kl, strict=True):
        b, t = b.float(), t.float()
        per_window.append(float((b.exp() * (b - t)).sum(-1).mean()))
    res["kl"] = np.array(per_window)
    return res


def _boot(stat, n: int, n_boot: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    vals = [stat(rng.integers(0, n, n)) for _ in range(n_boot)]
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return float(lo), float(hi)


def compare_retention(ref: RetentionReference, tuned: dict) -> pd.DataFrame:
    """One row per metric: base, tuned, change (tuned − base; ppl as % change) and its paired 95 % CI."""
    cfg, base, rows = ref.config, ref.base, []
    bw, tw = base["windows"], tuned["windows"]
    for corpus in [*cfg.corpora, "all"]:
        m = np.ones(len(bw), bool) if corpus == "all" else (bw.corpus == corpus).to_numpy()
        if not m.any():
            continue
        bn, tn, nn = bw.nll.to_numpy()[m], tw.nll.to_numpy()[m], bw.n.to_numpy()[m]

        def pct(i, bn=bn, tn=tn, nn=nn):
            return 100 * (np.exp((tn[i].sum() - bn[i].sum()) / nn[i].sum()) - 1)

        ppl_b, ppl_t = np.exp(bn.sum() / nn.sum()), np.exp(tn.sum() / nn.sum())
        lo, hi = _boot(pct, len(bn), cfg.n_boot, cfg.seed)
        rows.append(
            {
                "metric": f"ppl_{corpus}",
                "base": ppl_b,
                "tuned": ppl_t,
                "change": pct(np.arange(len(bn))),
                "ci_lo": lo,
                "ci_hi": hi,
                "unit": "%",
                "n": int(nn.sum()),
            }
        )
    kl = tuned["kl"]
    lo, hi = _boot(lambda i: kl[i].mean(), len(kl), cfg.n_boot, cfg.seed)
    rows.append(
        {
            "metric": "kl",
            "base": 0.0,
            "tuned": float(kl.mean()),
            "change": float(kl.mean()),
            "ci_lo": lo,
            "ci_hi": hi,
            "unit": "nats/token",
            "n": len(kl),
        }
    )
    bm, tm = base["mc"], tuned["mc"]
    for task in [*cfg.tasks, "mc_all"] if cfg.tasks else []:
        m = np.ones(len(bm), bool) if task == "mc_all" else (bm.task == task).to_numpy()
        for col in ("acc", "acc_norm"):
            b, t = bm[col].to_numpy()[m], tm[col].to_numpy()[m]
            d = t - b
            lo, hi = _boot(lambda i, d=d: 100 * d[i].mean(), len(d), cfg.n_boot, cfg.seed)
            rows.append(
                {
                    "metric": f"{task}_{col}",
                    "base": 100 * b.mean(),
                    "tuned": 100 * t.mean(),
                    "change": 100 * d.mean(),
                    "ci_lo": lo,
                    "ci_hi": hi,
                    "unit": "points",
                    "n": int(m.sum()),
                }
            )
    if len(ref.asdiv_answers):
        b, t = base["asdiv"].astype(float), tuned["asdiv"].astype(float)
        d = t - b
        lo, hi = _boot(lambda i: 100 * d[i].mean(), len(d), cfg.n_boot, cfg.seed)
        rows.append(
            {
                "metric": "asdiv_acc",
                "base": 100 * b.mean(),
                "tuned": 100 * t.mean(),
                "change": 100 * d.mean(),
                "ci_lo": lo,
                "ci_hi": hi,
                "unit": "points",
                "n": len(d),
            }
        )
    return pd.DataFrame(rows)


def retention_summary(table: pd.DataFrame) -> dict:
    """The headline numbers of a comparison: KL, perplexity % change, MC accuracy change (with CIs)."""
    t = table.set_index("metric")
    out: dict = {}
    for key, metric in (
        ("kl", "kl"),
        ("ppl_change_pct", "ppl_all"),
        ("mc_acc_change", "mc_all_acc"),
        ("mc_acc_norm_change", "mc_all_acc_norm"),
        ("asdiv_change", "asdiv_acc"),
    ):
        if metric in t.index:
            out[key] = float(t.loc[metric, "change"])
            out[key + "_ci"] = [float(t.loc[metric, "ci_lo"]), float(t.loc[metric, "ci_hi"])]
    if "mc_all_acc" in t.index:
        out["mc_acc"] = float(t.loc["mc_all_acc", "tuned"])
    if "ppl_all" in t.index:
        out["ppl"] = float(t.loc["ppl_all", "tuned"])
    return out


def save_reference(ref: RetentionReference, path) -> Path:
    """Write a reference (without its residual caches) as JSON + safetensors, so later runs skip the base pass."""
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    seqs = {k: [asdict(s) for s in getattr(ref, k)] for k in ("windows", "mc")}
    doc = {
        "format": "lftf-retention-reference/1",
        "config": ref.config.to_dict(),
        **seqs,
        "window_corpus": ref.window_corpus,
        "mc_items": ref.mc_items.to_dict(orient="list"),
        "asdiv_ids": ref.asdiv_ids,
        "asdiv_answers": ref.asdiv_answers.tolist(),
        "base": {
            "windows": ref.base["windows"].to_dict(orient="list"),
            "mc": ref.base["mc"].to_dict(orient="list"),
            "asdiv": ref.base["asdiv"].tolist(),
        },
    }
    (path / "reference.json").write_text(json.dumps(doc))
    save_file(
        {f"kl.{i}": t.contiguous() for i, t in enumerate(ref.base_kl_logp) if t is not None},
        path / "base_kl.safetensors",
    )
    return path


def load_reference(path, cfg: RetainConfig | None = None) -> RetentionReference:
    """Read :func:`save_reference`'s output; refuses it if ``cfg`` differs from the config it was made with."""
    from safetensors.torch import load_file

    path = Path(path)
    doc = json.loads((path / "reference.json").read_text())
    saved = RetainConfig.from_dict(doc["config"])
    if cfg is not None and saved != cfg:
        raise LftfError(
            f"The retention reference in {path} was made with {saved}, not {cfg}; delete it or pass that config."
        )
    kl = load_file(path / "base_kl.safetensors")

    def seqs(key: str) -> list[Seq]:
        return [Seq(**{**s, "choice_ids": tuple(s["choice_ids"])}) for s in doc[key]]

    return RetentionReference(
        config=saved,
        windows=seqs("windows"),
        window_corpus=doc["window_corpus"],
        mc=seqs("mc"),
        mc_items=pd.DataFrame(doc["mc_items"]),
        asdiv_ids=doc["asdiv_ids"],
        asdiv_answers=np.array(doc["asdiv_answers"], dtype=float),
        base={
            "windows": pd.DataFrame(doc["base"]["windows"]),
            "mc": pd.DataFrame(doc["base"]["mc"]),
            "asdiv": np.array(doc["base"]["asdiv"], dtype=bool),
        },
        base_kl_logp=[kl.get(f"kl.{i}") for i in range(len(doc["windows"]))],  # type: ignore[misc]  # None: a window without KL positions
    )


__all__ = [
    "DEFAULT_TASKS",
    "RetainConfig",
    "RetentionReference",
    "compare_retention",
    "compute_reference",
    "compute_retention",
    "load_reference",
    "retention_summary",
    "save_reference",
    "window_documents",
]
