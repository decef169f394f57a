"""Multi-token group words: one forward per prompt + continuations on its cached keys/values, vs one plain
Hugging Face forward per (prompt, word)."""

from __future__ import annotations

import numpy as np
import torch
from transformers import AutoModelForCausalLM

from lftf_interp.data import load_dataset
from lftf_interp.metrics.wordprobs import word_ids, word_logprobs
from lftf_interp.models.loading import cached_model_dir, load_model
from lftf_interp.models.tokens import encode

from .common import timeit, write_result

# group words of several tokens for SmolLM2's tokenizer (neopronouns, smaller religions), with two one-token words:
# the path this measures is the multi-token one (any multi-token word sends the whole set through it)
WORDS = [
    " xe",
    " xem",
    " zir",
    " Rastafarian",
    " Shintoist",
    " Taoist",
    " Wiccan",
    " Bahai",
    " Unitarian",
    " agnostic",
    " Jain",
    " Sikhs",
]
N_PROMPTS = 48


def bench_multitoken() -> dict:
    prompts = load_dataset("genbias", "test").subset(n=N_PROMPTS, seed=0).prompts
    model = load_model("smollm2-135m")
    hf = AutoModelForCausalLM.from_pretrained(cached_model_dir("smollm2-135m"), dtype=torch.float32).eval()
    wids = word_ids(model, WORDS)
    items = [(encode(model, p), w) for p in prompts for w in wids]

    @torch.no_grad()
    def baseline():
        out = []
        for p, w in items:
            logp = hf(torch.tensor([p + w])).logits[0].log_softmax(-1)
            out.append(sum(logp[len(p) - 1 + j, t].item() for j, t in enumerate(w)))
        return np.array(out).reshape(len(prompts), len(WORDS))

    def ours():
        return word_logprobs(model, prompts, WORDS)

    diff = float(np.abs(ours() - baseline()).max())
    ours_s, base_s = timeit(ours, repeat=3), timeit(baseline, repeat=1)
    return write_result(
        "multitoken",
        ours_s,
        "one plain HF forward per (prompt, word), summing the word's token log-probs",
        base_s,
        3.0,
        {
            "prompts": len(prompts),
            "words": len(WORDS),
            "tokens_per_word": [len(w) for w in wids],
            "max_abs_diff_logprob": diff,
            "model": "smollm2-135m",
        },
    )


COMMENT_MB = 2


def bench_axis_load() -> dict:
    """An axis file of a few MB (a shipped axis plus comment lines, as a generated file with notes might be):
    :func:`load_axis` with libyaml's C loader vs PyYAML's pure-Python safe loader on the same text."""
    import tempfile
    from pathlib import Path

    import yaml

    from lftf_interp.data.axis import AXES, axis_from_dict, load_axis

    text = (AXES / "race.yaml").read_text()
    line = "# " + "a note that the loader has to skip " * 2 + "\n"
    text += line * (COMMENT_MB * 2**20 // len(line))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.yaml"
        path.write_text(text)

        def ours():
            return load_axis(path)

        def baseline():
            return axis_from_dict(yaml.load(path.read_text(), Loader=yaml.SafeLoader), str(path))

        assert ours().to_dict() == baseline().to_dict()
        ours_s, base_s = timeit(ours, repeat=3), timeit(baseline, repeat=1, warmup=0)
    return write_result(
        "axis_load",
        ours_s,
        "PyYAML's pure-Python SafeLoader on the same file",
        base_s,
        10.0,
        {"file_mb": round(len(text.encode()) / 2**20, 2), "c_loader": bool(yaml.__with_libyaml__)},
    )
