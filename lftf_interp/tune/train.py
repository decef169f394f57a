"""Fine-tune only the given block(s): attention + MLP weights, everything else frozen.

The block is an input: choosing it (BMI ranking, embedding-artefact blocks, ``auto``) is the locate stage's
job (:func:`lftf_interp.locate.choose_blocks`).

Efficiency: blocks before the first tuned block never change, so their output (the tuned block's input) is
computed once per prompt and cached; each step runs from that block to the unembedding, last position only.

Robustness: checkpoints every ``checkpoint_every`` steps (:mod:`lftf_interp.tune.checkpoint`: tuned weights, AdamW
state, best weights, history, config); ``resume=True`` continues to the same bytes as an uninterrupted run, because
the batch of step t depends only on (seed, t), and refuses a checkpoint made with another config. Ctrl-C raises
:class:`~lftf_interp.errors.Interrupted` naming the step to resume from. A non-finite loss stops the run with
:class:`TrainingError`; the last good checkpoint is kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from lftf_interp.data import NEUTRAL_PROMPTS, BiasAxis, load_axis
from lftf_interp.data.datasets import sample_rows
from lftf_interp.errors import ConfigError, Interrupted, LftfError
from lftf_interp.metrics.groups import bias_per_prompt, hint_per_prompt
from lftf_interp.metrics.wordprobs import word_ids
from lftf_interp.tune import parallel
from lftf_interp.tune.beyond import BeyondTemplate
from lftf_interp.tune.checkpoint import (
    TrainingError,
    check_resume,
    latest_step,
    load_checkpoint,
    save_checkpoint,
)
from lftf_interp.tune.config import METHODS, TuneConfig
from lftf_interp.tune.context import ContextPrompts, stretch_lengths, stretches
from lftf_interp.tune.delta import block_fingerprint
from lftf_interp.tune.groupprobs import GroupReader
from lftf_interp.tune.losses import group_loss, hint_loss, kl_to_base, log_group_mass, mass_anchor
from lftf_interp.tune.pairs import PairTerms
from lftf_interp.tune.scopes import make_scope


class TrainPrompts(NamedTuple):
    """The prompts a fine-tune trains on, each a frame (``prompt``; hint prompts also ``label``), or None for the
    axis's own train split."""

    bias: pd.DataFrame | None = None
    hint: pd.DataFrame | None = None


@dataclass
class TuneResult:
    blocks: list[int]
    history: pd.DataFrame
    best_step: int
    best_val: dict
    config: TuneConfig
    trainable_params: int
    base_fingerprint: str
    extra: dict = field(default_factory=dict)


def _batch_indices(n: int, size: int, seed: int, step: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    return torch.randperm(n, generator=g)[: min(size, n)]


def _chunked(fn: Callable[[torch.Tensor], torch.Tensor], n: int, chunk: int = 128) -> torch.Tensor:
    return torch.cat([fn(torch.arange(s, min(s + chunk, n))) for s in range(0, n, chunk)])


def _subset(df: pd.DataFrame, n: int | None, seed: int) -> pd.DataFrame:
    return sample_rows(df, n, seed).reset_index(drop=True)


def _kinds(hints: pd.DataFrame, exclude: Sequence[str]) -> pd.DataFrame:
    """Hint prompts without the kinds in ``exclude`` (refuses a kind the prompts do not have)."""
    if not exclude:
        return hints
    known = set(hints.get("hint_kind", pd.Series(dtype=str)))
    if missing := sorted(set(exclude) - known):
        raise ConfigError(
            f"hint_exclude names kind(s) {missing} these hint prompts do not have; kinds: {sorted(known)}."
        )
    return hints[~hints["hint_kind"].isin(exclude)]


def axis_groups(model, axis: BiasAxis) -> list[list[int]]:
    """Token ids of each group's words when every word is one token (else refused: use
    :class:`~lftf_interp.tune.groupprobs.GroupReader`, which :func:`tune` does)."""
    ids = [word_ids(model, g.words) for g in axis.groups]
    if multi := [
        w
        for g, gi in zip(axis.groups, ids, strict=True)
        for w, t in zip(g.words, gi, strict=True)
        if len(t) > 1
    ]:
        raise TrainingError(
            f"Axis {axis.name!r}: words {multi} are several tokens; read them with GroupReader."
        )
    return [[t[0] for t in gi] for gi in ids]


class Objective:
    """The training loss of one step: the LFTF group loss plus the optional retention terms (hint
    cross-entropy, mass anchor, KL on neutral text), each on its own cached prompts. ``__call__(step)``
    returns (loss, {term: value})."""

    def __init__(
        self,
        scope,
        cfg: TuneConfig,
        axis: BiasAxis,
        reader: GroupReader,
        train: pd.DataFrame,
        hint_train: pd.DataFrame | None,
        beyond: BeyondTemplate | None = None,
        context: ContextPrompts | None = None,
        pairs: PairTerms | None = None,
    ):
        self.scope, self.cfg, self.reader, self.groups, self.beyond = (
            scope,
            cfg,
            reader,
            reader.groups,
            beyond,
        )
        self.context, self.pairs = context, pairs
        self.context_cache = context.cache(reader.prefixes) if context is not None else None
        self.reference = [axis.reference[g] for g in axis.group_names]
        self.train = reader.cache(train["prompt"].tolist())
        self.n_train = len(train)
        self.hint = reader.cache(hint_train["prompt"].tolist()) if hint_train is not None else None
        index = {g: k for k, g in enumerate(axis.group_names)}
        self.hint_labels = (
            torch.tensor([index[x] for x in hint_train["label"]]) if hint_train is not None else None
        )
        with torch.no_grad():
            self.base_log_mass = (  # the base model's log group mass per training prompt (before any update)
                _chunked(
                    lambda i: log_group_mass(reader.log_masses(self.train, i), self.groups), self.n_train
                )
                if cfg.mass_weight > 0
                else None
            )
            self.neutral = scope.cache(NEUTRAL_PROMPTS) if cfg.kl_weight > 0 else None
            self.base_neutral = scope.all_logits(self.neutral) if self.neutral is not None else None

    def __call__(self, step: int) -> tuple[torch.Tensor, dict]:
        cfg = self.cfg
        idx = parallel.shard(_batch_indices(self.n_train, cfg.batch_size, cfg.seed, step))
        logits = self.reader.log_masses(
            self.train, idx
        )  # logits, or the groups' log-probabilities (multi-token words)
        lp = group_loss(logits, self.groups, cfg.loss, self.reference)
        loss, parts = cfg.template_weight * lp, {"loss_pronoun": lp.item()}
        if self.base_log_mass is not None:
            lmass = mass_anchor(logits, self.groups, self.base_log_mass[idx])
            loss = loss + cfg.mass_weight * lmass
            parts["loss_mass"] = lmass.item()
        if self.hint is not None:
            assert self.hint_labels is not None
            hidx = parallel.shard(
                _batch_indices(len(self.hint_labels), cfg.batch_size, cfg.seed + 7919, step)
            )
            lh = hint_loss(self.reader.log_masses(self.hint, hidx), self.groups, self.hint_labels[hidx])
            loss = loss + cfg.hint_weight * lh
            parts["loss_hint"] = lh.item()
        if self.neutral is not None:
            assert self.base_neutral is not None
            lk = kl_to_base(self.scope.all_logits(self.neutral), self.base_neutral)
            loss = loss + cfg.kl_weight * lk
            parts["loss_kl"] = lk.item()
        if self.context is not None:
            cidx = self.context.batch(cfg.batch_size, cfg.seed + 180181, step)
            lc = group_loss(
                self.reader.log_masses(self.context_cache, cidx), self.groups, cfg.loss, self.reference
            )
            loss = loss + cfg.context_weight * lc
            parts["loss_context"] = lc.item()
        for extra in (self.beyond, self.pairs):
            if extra is not None:
                lb, more = extra(step)
                loss, parts = loss + lb, {**parts, **more}
        return loss, parts


class Validator:
    """Validation bias score (AFGB for gender), group mass and hint following (UB for gender) from cached
    validation prompts: what early stopping and best-step restore read (history columns val_afgb, val_mass, val_ub)."""

    def __init__(
        self,
        scope,
        axis: BiasAxis,
        reader: GroupReader,
        val: pd.DataFrame,
        val_hint: pd.DataFrame,
        context: ContextPrompts | None = None,
        pairs: PairTerms | None = None,
    ):
        self.scope, self.axis, self.reader, self.groups = scope, axis, reader, reader.groups
        self.val, self.val_hint = (
            reader.cache(val["prompt"].tolist()),
            reader.cache(val_hint["prompt"].tolist()),
        )
        self.labels = val_hint["label"].tolist()
        self.context, self.pairs = context, pairs
        self.context_cache = context.cache(reader.prefixes) if context is not None else None

    @torch.no_grad()
    def _probs(self, cache, batches: Sequence[torch.Tensor] | None = None) -> np.ndarray:
        out, n = [], len(cache[0])
        for idx in batches or [torch.arange(s, min(s + 128, n)) for s in range(0, n, 128)]:
            if not self.reader.single:
                out.append(torch.stack(list(self.reader.log_masses(cache, idx)), -1).double().exp())
                continue
            logp = self.reader.logits(cache, idx).double().log_softmax(-1)
            out.append(torch.stack([logp[:, ids].exp().sum(-1) for ids in self.groups], -1))
        return torch.cat(out).numpy()

    def __call__(self, step: int) -> dict:
        p, h = self._probs(self.val), self._probs(self.val_hint)
        ref = [self.axis.reference[g] for g in self.axis.group_names]
        out = {
            "step": step,
            "val_afgb": float(bias_per_prompt(p, ref).mean()),
            "val_mass": float(p.sum(1).mean()),
            "val_ub": float(hint_per_prompt(h, self.labels, self.axis.group_names).mean()),
        }
        if self.context is not None:
            pc = self._probs(self.context_cache, [r for r in self.context.rows if len(r)])
            out["val_context_afgb"] = float(bias_per_prompt(pc, ref).mean())
        if self.pairs is not None:
            out.update(self.pairs.validate())
        return out


def selection_score(val: dict) -> float:
    """What the best step minimises: the validation bias score, averaged with its value after text when the
    context term is on and with the pair score on StereoSet's select items when the pair terms are."""
    scores = [val[k] for k in ("val_afgb", "val_context_afgb", "val_pair") if k in val]
    return float(sum(scores) / len(scores))


VAL_KEYS = ("val_afgb", "val_mass", "val_ub", "val_context_afgb", "val_pair")


def _contexts(scope, model, reader, cfg: TuneConfig, documents: list[str], frames) -> tuple:
    """The training and validation prompts after stretches of ``documents`` (a seeded fifth of the documents,
    at least one, gives the validation stretches: a quarter as many, at least two)."""
    order = np.random.default_rng(cfg.seed).permutation(len(documents))
    n_val = max(1, len(documents) // 5)
    docs = {"val": [documents[i] for i in order[:n_val]], "train": [documents[i] for i in order[n_val:]]}
    sizes = {"train": cfg.context_n, "val": max(2, cfg.context_n // 4)}
    out = []
    for part, df in zip(("train", "val"), frames, strict=True):
        lengths = stretch_lengths(sizes[part], cfg.context_max)
        texts = stretches(model, docs[part], lengths, cfg.seed + (part == "val"))
        if len(df) < len(texts):
            raise ConfigError(
                f"{len(df)} {part} prompts cannot cover {len(texts)} stretches of text; lower context_n."
            )
        out.append(ContextPrompts(scope, model, texts, df["prompt"].tolist(), reader.prefixes, cfg.seed))
    return tuple(out)


def _snapshot(params: dict) -> dict:
    return {n: p.detach().clone() for n, p in params.items()}


def _materials(
    model, scope, axis, cfg: TuneConfig, train, hint_train, documents, pairs=None
) -> tuple[Validator, Objective]:
    """The training and validation prompts of ``cfg`` (seeded subsets), cached where they can be, as the
    validator and the objective of the loop."""
    reader = GroupReader(scope, model, axis)
    train = _subset(train if train is not None else axis.bias_prompts("train"), cfg.n_train, cfg.seed)
    if cfg.hint_weight > 0:
        hint_train = _subset(
            _kinds(hint_train if hint_train is not None else axis.hint_prompts("train"), cfg.hint_exclude),
            cfg.n_train,
            cfg.seed,
        )
    val = _subset(axis.bias_prompts("validation"), cfg.n_val, cfg.seed)
    pair_terms = PairTerms(scope, model, cfg, pairs) if PairTerms.wanted(cfg) else None
    contexts = (
        _contexts(scope, model, reader, cfg, list(documents or ()), (train, val))
        if cfg.context_weight > 0
        else None
    )
    validate = Validator(
        scope,
        axis,
        reader,
        val,
        _subset(_kinds(axis.hint_prompts("validation"), cfg.hint_exclude), cfg.n_val, cfg.seed),
        contexts[1] if contexts else None,
        pair_terms,
    )
    beyond = BeyondTemplate(scope, reader, model, cfg, documents) if BeyondTemplate.wanted(cfg) else None
    objective = Objective(
        scope,
        cfg,
        axis,
        reader,
        train,
        hint_train if cfg.hint_weight > 0 else None,
        beyond,
        contexts[0] if contexts else None,
        pair_terms,
    )
    return validate, objective


def _loop(cfg: TuneConfig, params, validate, objective, out_dir, resume, progress) -> tuple[list[dict], dict]:
    """The optimisation: AdamW steps from the start (or the checkpoint to resume), validation every
    ``eval_every`` steps keeping the best, a checkpoint every ``checkpoint_every``. Returns the history and the
    best evaluation (its step, metrics and weights)."""
    opt = torch.optim.AdamW(list(params.values()), lr=cfg.lr, weight_decay=0.0)
    ckpt = Path(out_dir) / "checkpoint" if out_dir else None
    history: list[dict] = []
    first_step = 1
    if resume:
        state = check_resume(out_dir, cfg.to_dict())
        best_params = load_checkpoint(Path(state["folder"]), params, opt)
        history, first_step = state["history"], state["step"] + 1
        best = {"step": state["best"]["step"], "val": state["best"]["val"], "params": best_params}
    else:
        history.append({**validate(0), "loss": float("nan")})
        best = {"step": 0, "val": history[-1], "params": _snapshot(params)}
    bad_evals = state.get("bad_evals", 0) if resume else 0
    try:
        for step in range(first_step, cfg.steps + 1):
            loss, parts = objective(step)
            if not torch.isfinite(loss):
                where = (
                    f"the last good checkpoint is in {ckpt}"
                    if latest_step(ckpt)
                    else "no checkpoint was written"
                )
                raise TrainingError(
                    f"Loss became {loss.item()} at step {step} ({parts}); stopping. {where}. Lower the learning rate "
                    f"(now {cfg.lr}) or check the data."
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            parallel.average_grads(params.values())
            opt.step()
            row = {"step": step, "loss": parallel.mean(loss.item()), **parts}
            if step % cfg.eval_every == 0 or step == cfg.steps:
                row.update(validate(step))
                if best["val"] is None or selection_score(row) < selection_score(best["val"]):
                    best = {
                        "step": step,
                        "val": {k: row[k] for k in ("step", *VAL_KEYS) if k in row},
                        "params": _snapshot(params),
                    }
                    bad_evals = 0
                else:
                    bad_evals += 1
            history.append(row)
            if progress:
                progress(step, row)
            if ckpt and cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and parallel.is_main():
                save_checkpoint(ckpt, step, params, opt, history, best, cfg.to_dict(), bad_evals)
            if cfg.patience is not None and bad_evals > cfg.patience:
                break
    except KeyboardInterrupt:
        saved_step = latest_step(ckpt)  # on disk: a signal can land between the rename and the next statement
        how = (
            f"rerun with --resume (resume=True) to continue from the checkpoint of step {saved_step} in {ckpt}"
            if saved_step
            else "no checkpoint was written yet (--checkpoint-every sets how often); rerun it"
        )
        raise Interrupted(f"interrupted during fine-tuning; {how}") from None
    return history, best


def tune(
    model,
    cfg: TuneConfig,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: Callable[[int, dict], None] | None = None,
    prompts: TrainPrompts | None = None,
    documents: Sequence[str] | None = None,
    pairs: pd.DataFrame | None = None,
) -> TuneResult:
    """LFTF fine-tune of ``model`` in place. Returns the training history and the best validation metrics.

    ``prompts``: the training prompts (:class:`TrainPrompts`: frames with ``prompt``, and ``label`` for hint
    prompts; each None: the axis's train split, GenBiasEval / GenHintEval for gender), of which ``cfg.n_train`` are used
    (seeded; default all). The hint prompts are read only if ``cfg.hint_weight > 0``. ``documents``: neutral
    text the context term draws its stretches from (needed when ``cfg.context_weight > 0``; a seeded fifth of
    them gives the validation stretches). ``pairs``: StereoSet items of the fit and select target terms the pair
    terms train and validate on (needed when ``cfg.pair_weight`` or ``cfg.lms_weight`` > 0;
    :func:`lftf_interp.retain.stereoset.pair_material` gives them for an axis)."""
    if PairTerms.wanted(cfg) and pairs is None:
        raise ConfigError(
            "pair_weight > 0 or lms_weight > 0 needs sentence pairs: pass tune(pairs=...), e.g. "
            "lftf_interp.retain.stereoset.pair_material(cfg)."
        )
    if (cfg.context_weight > 0 or cfg.cda_weight > 0) and (documents is None or len(documents) < 2):
        raise ConfigError(
            "context_weight > 0 or cda_weight > 0 needs neutral text: pass tune(documents=[...]) with at least two "
            "documents, e.g. lftf_interp.probes.neutral_documents(model)."
        )
    if cfg.method == "block" and cfg.block is None:
        raise ConfigError(
            "method 'block' needs block=<index> (or a list); lftf_interp.locate.choose_blocks picks one."
        )
    axis = load_axis(cfg.axis)
    parallel.join()
    parallel.check_batch(cfg.batch_size)
    torch.manual_seed(cfg.seed)
    blocks = cfg.blocks if cfg.method == "block" else list(range(model.cfg.n_layers))
    if bad := [b for b in blocks if not 0 <= b < model.cfg.n_layers]:
        raise LftfError(f"block(s) {bad} out of range: this model has blocks 0..{model.cfg.n_layers - 1}.")
    base_fp = block_fingerprint(model, blocks)
    scope = make_scope(model, cfg.method, blocks, cfg.lora_r, cfg.lora_alpha, cfg.seed)
    params = scope.params
    prompts = prompts or TrainPrompts()
    validate, objective = _materials(model, scope, axis, cfg, prompts.bias, prompts.hint, documents, pairs)
    history, best = _loop(cfg, params, validate, objective, out_dir, resume, progress)
    if cfg.restore_best and best["params"] is not None:
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(best["params"][n])
    scope.finish()
    return TuneResult(
        blocks=blocks,
        history=pd.DataFrame(history),
        best_step=int(best["step"]),
        best_val={
            k: v
            for k, v in (best["val"] or {}).items()
            if isinstance(v, int | float) and not (isinstance(v, float) and math.isnan(v))
        },
        config=cfg,
        trainable_params=int(sum(p.numel() for p in params.values())),
        base_fingerprint=base_fp,
    )


__all__ = [
    "METHODS",
    "Objective",
    "TrainPrompts",
    "TrainingError",
    "TuneConfig",
    "TuneResult",
    "Validator",
    "axis_groups",
    "selection_score",
    "tune",
]
