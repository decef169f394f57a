import pandas as pd
import pytest

from lftf_interp.errors import ConfigError
from lftf_interp.probes import PROBES, ValidityConfig, validity_report


def test_config_round_trip_and_validation():
    cfg = ValidityConfig.quick(probes=("math", "gendered"))
    assert ValidityConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="Unknown validity probe"):
        ValidityConfig(probes=("maths",))
    with pytest.raises(ConfigError, match="context_lengths"):
        ValidityConfig(context_lengths=(-1,))
    with pytest.raises(ConfigError, match="no field"):
        ValidityConfig.from_dict({"nope": 1})
    assert set(ValidityConfig().probes) == set(PROBES)


def test_report_runs_the_configured_probes(tiny_bridge):
    flat, frames = validity_report(
        tiny_bridge, ValidityConfig.quick(probes=("gendered", "math", "hints", "paperstyle"))
    )
    assert set(frames) == {"gendered", "math", "hints", "paperstyle"}
    for k in (
        "gendered_acc",
        "math_acc",
        "ub_unseen",
        "ub_kind_noun",
        "paperstyle_afgb",
        "paperstyle_afgb_paper",
    ):
        assert 0 <= flat[k] <= 1, k
    assert (
        flat["paperstyle_afgb_paper"] <= flat["paperstyle_afgb"]
    )  # |a - b| <= |a - b| / (a + b) when a + b <= 1


@pytest.mark.integration  # a whole pipeline, over 12 s
def test_neutral_documents_leave_out_what_the_probes_read(tiny_bridge):
    from lftf_interp.probes import beyond, neutral_documents
    from lftf_interp.retain import CORPORA, RetainConfig, corpus_documents, window_documents

    vcfg, rcfg = ValidityConfig.quick(), RetainConfig.small()
    docs = neutral_documents(tiny_bridge, 1, vcfg, rcfg)
    every = {c: corpus_documents(c) for c in CORPORA}
    windows = {(c, d) for c, d, _ in window_documents(tiny_bridge, rcfg)}
    draws = {(c, d) for c, d, _, _ in beyond.context_draws(tiny_bridge, 32, 1, beyond.CONTEXT_CORPORA, 256)}
    assert len(windows) == 3 * rcfg.n_windows and len(draws) > 10
    left = [t for c in CORPORA for d, t in enumerate(every[c]) if (c, d) not in windows | draws]
    assert docs == left and len(docs) == sum(map(len, every.values())) - len(windows | draws)
    # the probe reads the documents it was drawn from: every prefix of seed 1 lies in a document left out
    for p in beyond.context_prefixes(tiny_bridge, 32, 256, seed=1)[:4]:
        assert not any(p.strip()[:200] in t for t in docs)


def test_the_stereoset_probe_flattens_the_per_type_table(tiny_bridge, monkeypatch):
    from lftf_interp.retain import stereoset

    items = (
        stereoset.load_stereoset().groupby("bias_type").head(12)
    )  # 12 items per type: the flattening, quickly
    monkeypatch.setattr(stereoset, "load_stereoset", lambda *a, **k: items)
    flat, frames = validity_report(tiny_bridge, ValidityConfig.quick(probes=("stereoset",)))
    table = stereoset.ss_lms_icat(stereoset.score_items(tiny_bridge, items), 200, 0)
    assert set(table.bias_type) == {"gender", "race", "religion", "profession", "overall"}
    for _, r in table.iterrows():
        b = r["bias_type"]
        assert flat[f"ss_{b}"] == pytest.approx(r["ss"]) and flat[f"lms_{b}"] == pytest.approx(r["lms"])
        assert flat[f"ss_{b}_ci"][0] <= flat[f"ss_{b}"] <= flat[f"ss_{b}_ci"][1]
    pd.testing.assert_frame_equal(frames["stereoset"], table)
    split = stereoset.split_of_targets()  # the test split's terms, scored apart
    sub = stereoset.score_items(tiny_bridge, items[items.target.map(split) == "test"])
    assert 0 < len(sub) < len(items)
    for _, r in stereoset.ss_lms_icat(sub, 200, 0).iterrows():
        b = r["bias_type"]
        assert flat[f"ss_test_{b}"] == pytest.approx(r["ss"]) and flat[f"lms_test_{b}"] == pytest.approx(
            r["lms"]
        )


def test_off_gender_only_the_axis_probes_run():
    from lftf_interp.probes import AXIS_PROBES, COMPARE_VALIDITY

    with pytest.raises(
        ConfigError, match=r"\['math'\] read gendered material; axis 'race-choice' is not gendered"
    ):
        ValidityConfig(probes=("long_context", "math"), axis="race-choice")
    assert COMPARE_VALIDITY.for_axis("religion-identity").probes == AXIS_PROBES
    assert COMPARE_VALIDITY.for_axis("religion-identity").context_n == COMPARE_VALIDITY.context_n
    assert ValidityConfig(probes=("math", "gendered")).for_axis("race") is None
    assert COMPARE_VALIDITY.for_axis("gender") == COMPARE_VALIDITY
    cfg = ValidityConfig.quick(probes=AXIS_PROBES, axis="race")
    assert ValidityConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.downloads
@pytest.mark.integration  # a whole pipeline, over 12 s
def test_neutral_documents_leave_out_the_axis_probe_text(tiny_bridge):
    from lftf_interp.probes import beyond, neutral_documents
    from lftf_interp.retain import RetainConfig, corpus_documents

    vcfg = ValidityConfig(probes=("long_context",), axis="race-choice", context_lengths=(0, 64), context_n=6)
    docs = set(neutral_documents(tiny_bridge, 0, vcfg, RetainConfig.small()))
    draws = list(beyond.context_draws(tiny_bridge, 12, 0, beyond.CONTEXT_CORPORA, 64))  # 6 bias + 6 hint
    assert len(draws) == 12 and not any(corpus_documents(c)[d] in docs for c, d, _, _ in draws)
