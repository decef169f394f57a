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
