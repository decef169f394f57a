"""Run lm-evaluation-harness tasks on any model this package loads or tunes (optional extra).

    pip install 'lftf-interp[lmeval]'        # lm_eval==0.4.13; its tasks download their data from the Hub

    from lftf_interp.retain.lm_eval_adapter import LftfLM
    import lm_eval
    results = lm_eval.simple_evaluate(model=LftfLM(tuned_bridge), tasks=["piqa", "arc_easy"])

Scoring goes through the same :class:`~lftf_interp.models.runner.Runner` as our own retention probe: context
and continuation are tokenised separately and concatenated, no BOS is prepended (the package-wide policy),
and ``loglikelihood_rolling`` scores every token after the first. Offline, point a task YAML at local files
(``dataset_path: json``; tests/retain/test_lm_eval_adapter.py does).
"""

from __future__ import annotations

try:
    from lm_eval.api.model import LM
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "The lm-eval adapter needs lm_eval: pip install 'lftf-interp[lmeval]' (lm_eval==0.4.13)."
    ) from e

from lftf_interp.metrics.scoring import Seq, greedy, score
from lftf_interp.models.runner import Runner
from lftf_interp.models.tokens import encode


class LftfLM(LM):
    """An ``lm_eval`` model backed by a TransformerBridge (base or tuned)."""

    def __init__(self, model, max_length: int = 2048, max_gen_toks: int = 64, token_budget: int = 4096):
        super().__init__()
        self.model, self.runner = model, Runner(model)
        self.max_length, self.max_gen_toks, self.token_budget = max_length, max_gen_toks, token_budget

    def _spans(self, seqs):
        lp, _, _, _, greedy = score(self.runner, seqs, self.token_budget)
        return lp, greedy

    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        seqs = []
        for req in requests:
            ctx, cont = req.args[0], req.args[1]
            if ctx and ctx[-1] == " ":  # lm-eval's convention: the space belongs to the continuation
                ctx, cont = ctx[:-1], " " + cont
            c, t = encode(self.model, ctx), encode(self.model, cont, start=False)
            ids = (c + t)[-self.max_length :]
            seqs.append(Seq(ids, score_from=max(1, len(ids) - len(t))))
        lp, greedy = self._spans(seqs)
        return [(float(a), bool(b)) for a, b in zip(lp, greedy, strict=True)]

    def loglikelihood_rolling(self, requests) -> list[float]:
        out = []
        for req in requests:
            ids = encode(self.model, req.args[0])
            windows = [ids[s : s + self.max_length] for s in range(0, len(ids), self.max_length)]
            seqs = [Seq(w, score_from=1) for w in windows if len(w) > 1]
            out.append(float(self._spans(seqs)[0].sum()) if seqs else 0.0)
        return out

    def generate_until(self, requests) -> list[str]:
        out, tok = [], self.model.tokenizer
        for req in requests:
            ctx, kw = req.args[0], dict(req.args[1] or {})
            until = kw.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            n = int(kw.get("max_gen_toks", self.max_gen_toks))

            def stop(toks, until=until, tok=tok):
                return any(u in tok.decode(toks) for u in until)

            text = tok.decode(greedy(self.runner, encode(self.model, ctx)[-self.max_length :], n, stop))
            for u in until:
                text = text.split(u)[0]
            out.append(text)
        return out


__all__ = ["LftfLM"]
