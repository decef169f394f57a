"""What a fine-tune trains, and how a training step computes last-position logits.

* :class:`BlockScope` (LFTF): the chosen blocks' attention + MLP weights. Blocks before the first tuned
  block never change, so their output is cached once per prompt and each step runs from that block.
* :class:`FullScope` (FPFT baseline): every parameter (embeddings, norms, all blocks); full forward.
* :class:`LoraScope` (baseline): LoRA adapters from ``peft`` on all blocks' attention + MLP projections of
  a plain Hugging Face copy of the model; at the end the adapters are merged and written back into the
  bridge, so every evaluation afterwards runs on ordinary weights.

All three expose the same small interface (``params``, ``cache``, ``last_logits``, ``all_logits``,
``logits_at``, ``finish``), so :func:`lftf_interp.tune.train.tune` runs one loop for every method.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from lftf_interp.models.archs import arch_spec, plain_named_modules, submodule
from lftf_interp.models.generic import last_block_output
from lftf_interp.models.prefix import store_for
from lftf_interp.models.runner import Runner, block_param_names, canonical_state_dict, hf_of
from lftf_interp.models.tokens import encode_batch


def lora_targets(model) -> list[str]:
    """Full names of the linear layers inside every block's attention and MLP (what LoRA adapts): the seven
    q/k/v/o and gate/up/down projections of a Llama-style block, fused ``qkv_proj`` / ``gate_up_proj`` (Phi-3),
    ``c_attn`` / ``c_proj`` / ``c_fc`` (GPT-2's Conv1D), ``query_key_value`` / ``dense*`` (GPT-NeoX)."""
    from transformers.pytorch_utils import Conv1D

    arch = arch_spec(model)
    hf = hf_of(model)
    out = []
    for i in range(len(submodule(hf, arch.layers))):
        for part in arch.trainable:
            root = f"{arch.layers}.{i}.{part}"
            out += [
                f"{root}.{n}" if n else root
                for n, m in plain_named_modules(submodule(hf, root))
                if isinstance(m, torch.nn.Linear | Conv1D)
            ]
    return out


class BlockInputCache:
    """Right-padded token ids → the residual stream entering block ``start`` (no grad), computed once.
    With ``start=None`` it keeps the token ids themselves (for scopes that train the embeddings). ``prompts``:
    texts (encoded as every prompt is) or sequences already tokenised (lists of token ids, taken as they are).

    The residuals come from the process's :class:`~lftf_interp.models.prefix.PrefixStore` for the weights before
    ``start`` (on disk under ``persist_prefixes``), so fine-tunes of fresh copies of one base model (``lftf
    compare`` rows, seeds, jobs) compute them once; a model whose earlier blocks differ gets another store."""

    def __init__(
        self,
        runner: Runner,
        model,
        prompts: Sequence[str] | Sequence[Sequence[int]],
        start: int | None,
        chunk: int = 128,
        suffix: Sequence[int] = (),
    ):
        ids, self.lengths = encode_batch(model, prompts, suffix=suffix)
        self.start = start
        if start is None:
            self.x = ids
            return
        store = store_for(runner, start)
        order = torch.argsort(self.lengths, stable=True)  # similar lengths together: little padding
        parts = []
        for s in range(0, len(ids), chunk):
            rows = order[s : s + chunk]
            width = int(self.lengths[rows].max())
            parts.append((rows, store.resid(runner, ids[rows, :width], self.lengths[rows])))
        self.x = parts[0][1].new_zeros(len(ids), ids.shape[1], runner.d_model)
        for rows, r in parts:
            self.x[rows, : r.shape[1]] = r

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, idx) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = self.lengths[idx]
        return self.x[idx, : int(lengths.max())], lengths

    def run(self, runner: Runner, x: torch.Tensor, idx) -> torch.Tensor:
        """The last block's output for the batch ``x`` of rows ``idx`` (from ``start``, or from the token ids)."""
        return runner.run(x, start=self.start) if self.start is not None else runner.run(runner.embed(x))


def last_logits_from(runner: Runner, cache: BlockInputCache, idx) -> torch.Tensor:
    x, lengths = cache.batch(idx)
    out = cache.run(runner, x, idx)
    return runner.unembed(out[torch.arange(len(lengths)), lengths - 1])


def freeze_all_but(model, names: Sequence[str]) -> dict[str, torch.nn.Parameter]:
    """Freeze every parameter of ``model`` except ``names`` (canonical names); return those, trainable."""
    params = canonical_state_dict(model)
    for p in params.values():
        p.requires_grad_(False)
    for n in names:
        params[n].requires_grad_(True)
    return {n: params[n] for n in names}


class BlockScope:
    method = "block"

    def __init__(self, model, blocks: Sequence[int]):
        self.model, self.blocks = model, sorted(blocks)
        self.runner = Runner(model)
        self.start: int | None = self.blocks[0]
        self.params = freeze_all_but(model, [n for b in self.blocks for n in block_param_names(model, b)])

    def cache(self, prompts: Sequence[str], suffix: Sequence[int] = ()) -> BlockInputCache:
        """Prompts (each followed by the token ids ``suffix``) as the residual entering the first tuned block."""
        return BlockInputCache(self.runner, self.model, prompts, self.start, suffix=suffix)

    def last_logits(self, cache: BlockInputCache, idx) -> torch.Tensor:
        return last_logits_from(self.runner, cache, idx)

    def all_logits(self, cache: BlockInputCache) -> torch.Tensor:
        """Logits at every real position of every cached prompt, ``[n_positions, d_vocab]``."""
        x, lengths = cache.batch(torch.arange(len(cache)))
        out = (
            self.runner.run(x, start=cache.start)
            if cache.start is not None
            else self.runner.run(self.runner.embed(x))
        )
        mask = torch.arange(x.shape[1])[None] < lengths[:, None]
        return self.runner.unembed(out[mask])

    def logits_at(self, cache: BlockInputCache, idx, rows: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Logits ``[len(rows), d_vocab]`` at (rows[i], pos[i]) of the cached batch ``idx`` (unembeds only those)."""
        x, _ = cache.batch(idx)
        out = (
            self.runner.run(x, start=cache.start)
            if cache.start is not None
            else self.runner.run(self.runner.embed(x))
        )
        return self.runner.unembed(out[rows, pos])

    def finish(self) -> None:
        for p in self.params.values():
            p.requires_grad_(False)


class FullScope(BlockScope):
    method = "full"

    def __init__(self, model):
        self.model = model
        self.blocks = list(range(model.cfg.n_layers))
        self.runner = Runner(model)
        self.start = None
        seen, self.params = set(), {}
        for n, p in canonical_state_dict(model).items():
            if id(p) not in seen:  # tied embedding / unembedding counted once
                seen.add(id(p))
                self.params[n] = p.requires_grad_(True)

    def cache(self, prompts: Sequence[str], suffix: Sequence[int] = ()) -> BlockInputCache:
        return BlockInputCache(self.runner, self.model, prompts, None, suffix=suffix)


class LoraScope(BlockScope):
    method = "lora"

    def __init__(self, model, r: int = 8, alpha: int = 16, seed: int = 0):
        from peft import LoraConfig, get_peft_model

        from lftf_interp.models.loading import plain_copy

        self.model = model
        self.blocks = list(range(model.cfg.n_layers))
        self.runner = Runner(model)
        self.start = None
        base = canonical_state_dict(model)
        for p in base.values():
            p.requires_grad_(False)
        plain = plain_copy(model, base)  # a plain Hugging Face model of the same family, for peft
        self.targets = lora_targets(model)
        torch.manual_seed(seed)
        lcfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=self.targets, bias="none")
        self.peft = get_peft_model(plain, lcfg)
        self.params = {n: p for n, p in self.peft.named_parameters() if p.requires_grad}

    def cache(self, prompts: Sequence[str], suffix: Sequence[int] = ()) -> BlockInputCache:
        return BlockInputCache(self.runner, self.model, prompts, None, suffix=suffix)

    def _logits(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = (torch.arange(x.shape[1])[None] < lengths[:, None]).long()
        return self.peft(input_ids=x, attention_mask=mask).logits

    def _logits_at(self, x: torch.Tensor, lengths: torch.Tensor, rows, pos) -> torch.Tensor:
        """Logits at (rows[i], pos[i]) only: the decoder body, then the unembedding of those positions (on the
        generic path: the blocks, then the bridge's own head, which LoRA leaves as it is)."""
        hf: Any = self.peft.get_base_model()
        mask = (torch.arange(x.shape[1])[None] < lengths[:, None]).long()
        if not self.runner.arch.fast:
            h = last_block_output(hf, self.runner.arch, input_ids=x, attention_mask=mask)
            return self.runner.unembed(h[rows, pos])
        body, head = hf.get_decoder(), hf.get_output_embeddings()
        h = body(input_ids=x, attention_mask=mask).last_hidden_state
        logits = head(h[rows, pos])
        if cap := getattr(hf.config, "final_logit_softcapping", None):
            logits = torch.tanh(logits / cap) * cap
        return logits

    def last_logits(self, cache: BlockInputCache, idx) -> torch.Tensor:
        x, lengths = cache.batch(idx)
        return self._logits_at(x, lengths, torch.arange(len(lengths)), lengths - 1)

    def all_logits(self, cache: BlockInputCache) -> torch.Tensor:
        x, lengths = cache.batch(torch.arange(len(cache)))
        mask = torch.arange(x.shape[1])[None] < lengths[:, None]
        return self._logits(x, lengths)[mask]

    def logits_at(self, cache: BlockInputCache, idx, rows: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        x, lengths = cache.batch(idx)
        return self._logits_at(x, lengths, rows, pos)

    def finish(self) -> None:
        """Merge the adapters and copy the merged weights into the bridge (in place)."""
        merged = self.peft.merge_and_unload()
        target = canonical_state_dict(self.model)
        targets = set(self.targets)
        with torch.no_grad():
            for n, p in merged.named_parameters():
                if n in target and n.rsplit(".", 1)[0] in targets:
                    target[n].copy_(p)
        for p in self.params.values():
            p.requires_grad_(False)


def make_scope(
    model, method: str, blocks: Sequence[int], lora_r: int = 8, lora_alpha: int = 16, seed: int = 0
):
    """The scope of a fine-tune: ``block`` (LFTF; ``blocks``), ``full`` (FPFT) or ``lora`` (all blocks)."""
    if method == "block":
        return BlockScope(model, blocks)
    return FullScope(model) if method == "full" else LoraScope(model, lora_r, lora_alpha, seed)


__all__ = [
    "BlockInputCache",
    "BlockScope",
    "FullScope",
    "LoraScope",
    "freeze_all_but",
    "last_logits_from",
    "lora_targets",
    "make_scope",
]
