import inspect
import os
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # lm-eval adapter test: local task files only

from helpers import EXTERNAL, tiny  # noqa: E402

# `-n 2`: one thread per worker process, not two workers of two threads each; the notebook kernels and the
# `lftf` subprocesses a worker starts inherit the same limit
if os.environ.get("PYTEST_XDIST_WORKER"):
    import torch

    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"


def pytest_sessionstart(session):
    """Before workers start (`-n 2`), build the cached tokenizer every tiny model uses and, when the integration
    tier runs, the registry models' safetensors copies, so that two workers never build one at the same time on
    a cold cache."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        from lftf_interp.models.loading import cached_model_dir, load_tokenizer

        load_tokenizer("smollm2-135m")
        if session.config.getoption("numprocesses", None) and "not integration" not in (
            session.config.option.markexpr or ""
        ):
            for name in ("smollm2-135m", "gemma3-270m"):
                cached_model_dir(name)


# The longest tests first (seconds on 2 cores, one thread per worker): `-n 2` hands each worker the next test as it
# finishes one, so the long ones run side by side instead of one worker ending on them alone.
LONGEST_FIRST = {
    "04_why_last_block": 360,
    "03_lftf_finetune": 285,
    "02_locate_blocks": 180,
    "01_bias_baseline": 70,
    "test_finetune_end_to_end": 125,
    "test_patching_equals_transformer_lens_on_smollm2": 105,
    "05_other_biases": 50,
    "test_the_wheel_installs_and_runs_without_the_repository": 45,
    "test_a_compare_grid_as_jobs_equals_the_grid_in_this_process": 45,
    "test_compare_resumes_and_sweep_and_demo": 37,
    "test_sigkill_then_resume_gives_the_same_delta_bytes": 35,
    "06_model_families": 34,
    "test_mechanism_command": 32,
    "test_transfer_rows_equal_direct_evaluations_and_resume": 27,
    "test_winobias_parts_split_the_sentence_preference_at_the_pronoun": 24,
    "test_sweep_and_compare_on_another_axis": 23,
    "test_run_compare_on_tiny_model": 21,
}


def _expected_s(item) -> int:
    return max((s for name, s in LONGEST_FIRST.items() if name in item.nodeid), default=0)


# A test whose source compares floats to a bound: marked `numeric`, the set `make portable` runs under each of
# torch's CPU kernel sets (their float32 results differ in the last bits; a bound must hold on all of them).
NUMERIC = re.compile(r"approx\(|allclose|assert_close|atol|rtol|\b\d+(\.\d+)?e-\d+")


def _is_numeric(item) -> bool:
    fn = getattr(item, "function", None)
    try:
        return fn is not None and NUMERIC.search(inspect.getsource(fn)) is not None
    except (OSError, TypeError):
        return False


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _is_numeric(item):
            item.add_marker(pytest.mark.numeric)
    items.sort(key=_expected_s, reverse=True)  # stable: the rest keep their order


if (
    EXTERNAL.is_dir()
):  # the external bias sets (WinoBias, Winogender, Bolukbasi) are read from here, never downloaded
    os.environ.setdefault("LFTF_EXTERNAL", str(EXTERNAL))


@pytest.fixture(scope="session")
def tiny_bridge():
    return tiny(2, seed=0)


@pytest.fixture(scope="session")
def tiny3():
    return tiny(3, seed=1)


@pytest.fixture(scope="session")
def tiny3_dir(tiny3, tmp_path_factory):
    """The tiny 3-block model as a Hugging Face directory (what `--model PATH` loads)."""
    from lftf_interp.models.loading import export_hf

    return str(export_hf(tiny3, tmp_path_factory.mktemp("tiny3") / "tiny3"))


@pytest.fixture(scope="session")
def tiny_delta(tiny3_dir, tmp_path_factory):
    """A 4-step LFTF delta of the tiny model's last block (tests of the studies and their commands)."""
    from lftf_interp.experiments import pipeline
    from lftf_interp.tune import TuneConfig

    out = tmp_path_factory.mktemp("ft")
    pipeline.finetune_to(
        tiny3_dir,
        TuneConfig(
            block=[2],
            steps=4,
            batch_size=8,
            n_train=32,
            n_val=16,
            eval_every=4,
            lr=3e-3,
            hint_weight=0,
            mass_weight=0,
        ),
        out,
    )
    return out / "delta"


@pytest.fixture(scope="session")
def smol():
    from lftf_interp.models.loading import load_model

    return load_model("smollm2-135m")


@pytest.fixture(scope="session")
def external_dir():
    if not EXTERNAL.is_dir():
        pytest.skip(f"{EXTERNAL} not present")
    return EXTERNAL


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if anything loads a model: the bad input must be refused before that."""
    from lftf_interp.experiments import pipeline
    from lftf_interp.models import loading as models

    def refuse(*a, **k):
        raise AssertionError("a model was loaded before the bad input was refused")

    monkeypatch.setattr(models, "load_hf", refuse)
    monkeypatch.setattr(pipeline, "load_model", refuse)
