"""The lm-evaluation-harness adapter on a tiny local task (no Hub access)."""

import json

import numpy as np
import pytest
import torch

lm_eval = pytest.importorskip("lm_eval")  # the [lmeval] extra; requirements.lock installs it, so CI runs this

from lftf_interp.models.loading import tiny_model  # noqa: E402
from lftf_interp.models.runner import Runner  # noqa: E402
from lftf_interp.models.tokens import encode  # noqa: E402
from lftf_interp.retain.lm_eval_adapter import LftfLM  # noqa: E402

pytestmark = pytest.mark.downloads

DOCS = [
    {"question": "Where do fish live?", "choices": ["in water", "in trees", "on the moon"], "label": 0},
    {"question": "What do you use to cut paper?", "choices": ["a spoon", "scissors"], "label": 1},
    {"question": "What color is the sky on a clear day?", "choices": ["green", "blue", "red"], "label": 1},
    {"question": "How many legs does a cat have?", "choices": ["four", "two"], "label": 0},
]


def brute_ll(model, ctx: str, cont: str) -> float:
    c, t = encode(model, ctx), encode(model, cont)
    with torch.no_grad():
        lp = Runner(model).logits(torch.tensor([c + t]))[0].log_softmax(-1)
    return sum(lp[len(c) - 1 + j, x].item() for j, x in enumerate(t))


@pytest.mark.integration  # a whole pipeline, over 12 s
def test_simple_evaluate_on_a_local_task(tmp_path):
    from lm_eval.tasks import TaskManager

    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    (tmp_path / "tiny.yaml").write_text(
        "task: lftf_tiny_mc\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data}\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        'doc_to_text: "Question: {{question}}\\nAnswer:"\n'
        'doc_to_choice: "{{choices}}"\n'
        "doc_to_target: label\n"
        "metric_list:\n  - metric: acc\n"
    )
    m = tiny_model(2, seed=0)
    out = lm_eval.simple_evaluate(
        model=LftfLM(m),
        tasks=["lftf_tiny_mc"],
        task_manager=TaskManager(include_path=str(tmp_path)),
        bootstrap_iters=0,
        log_samples=False,
    )
    acc = out["results"]["lftf_tiny_mc"]["acc,none"]
    expect = np.mean(
        [
            int(
                np.argmax([brute_ll(m, f"Question: {d['question']}\nAnswer:", " " + c) for c in d["choices"]])
            )
            == d["label"]
            for d in DOCS
        ]
    )
    assert acc == pytest.approx(expect)


def test_requests_match_direct_computation():
    from lm_eval.api.instance import Instance

    m = tiny_model(2, seed=1)
    lm = LftfLM(m, max_gen_toks=3)
    reqs = [
        Instance("loglikelihood", {}, ("The nurse said that", " she"), 0),
        Instance("loglikelihood", {}, ("The nurse said that ", "he"), 1),
    ]  # trailing space moves to the continuation
    (a, _), (b, _) = lm.loglikelihood(reqs)
    assert a == pytest.approx(brute_ll(m, "The nurse said that", " she"), abs=1e-4)
    assert b == pytest.approx(brute_ll(m, "The nurse said that", " he"), abs=1e-4)
    text = "The farmer went home because it was late."
    ids = encode(m, text)
    with torch.no_grad():
        lp = Runner(m).logits(torch.tensor([ids]))[0].log_softmax(-1)
    direct = sum(lp[i - 1, ids[i]].item() for i in range(1, len(ids)))
    assert lm.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (text,), 0)])[0] == pytest.approx(
        direct, abs=1e-3
    )
    gen = lm.generate_until(
        [Instance("generate_until", {}, ("The nurse said", {"until": ["\n"], "max_gen_toks": 3}), 0)]
    )
    assert isinstance(gen[0], str) and "\n" not in gen[0]
