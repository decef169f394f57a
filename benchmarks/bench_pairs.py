"""BBQ-length multiple choice: each passage once and its three answers on its cached keys/values, vs scoring every
(passage, answer) sequence whole, as lm-evaluation-harness does; the same log-likelihoods."""

from __future__ import annotations

import numpy as np

from lftf_interp.metrics.pairs import continuation_logliks, shared_context_logliks
from lftf_interp.models.loading import load_model
from lftf_interp.probes.beyond import context_prefixes

from .common import timeit, write_result

N_ITEMS = 48
PASSAGE_TOKENS = 96  # BBQ's disambiguated passages run 60-120 tokens with their question
QUESTION = " Who was struggling with the new phone?\nAnswer:"
ANSWERS = [" The grandfather", " The grandson", " Can't be determined"]


def bench_shared_context() -> dict:
    model = load_model("smollm2-135m")
    contexts = [p + QUESTION for p in context_prefixes(model, N_ITEMS, PASSAGE_TOKENS, seed=0)]
    fillings = [ANSWERS] * N_ITEMS

    def ours():
        return np.stack(shared_context_logliks(model, contexts, fillings))

    def baseline():
        flat = continuation_logliks(model, [c for c in contexts for _ in ANSWERS], ANSWERS * N_ITEMS)
        return flat.reshape(N_ITEMS, len(ANSWERS))

    a, b = ours(), baseline()
    diff, rel = float(np.abs(a - b).max()), float((np.abs(a - b) / np.abs(b)).max())
    ours_s, base_s = timeit(ours, repeat=3), timeit(baseline, repeat=3)
    return write_result(
        "shared_context",
        ours_s,
        "every (passage, answer) sequence scored whole, batched (lm-evaluation-harness's loglikelihood requests)",
        base_s,
        2.0,
        {
            "items": N_ITEMS,
            "passage_tokens": PASSAGE_TOKENS,
            "answers": len(ANSWERS),
            "max_abs_diff_loglik": diff,  # float32 forwards: both sides sit ~3e-5 from a float64-softmax one
            "max_rel_diff_loglik": rel,
            "model": "smollm2-135m",
        },
    )
