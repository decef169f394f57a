"""One way to read and write a configuration: every config class round-trips through its dict, unknown fields
are refused by name, nested configurations and tuples come back as they were."""

import json

import pytest

from lftf_interp.configs import Config, api_only
from lftf_interp.errors import ConfigError
from lftf_interp.experiments.compare import CompareConfig, SweepConfig
from lftf_interp.experiments.jobs import ExecutorConfig
from lftf_interp.experiments.methods import MethodSpec
from lftf_interp.locate.run import LocateConfig
from lftf_interp.metrics.groups import EvalConfig
from lftf_interp.probes import COMPARE_VALIDITY, ValidityConfig
from lftf_interp.retain import RetainConfig
from lftf_interp.tune import TuneConfig

CONFIGS = [
    TuneConfig(block=(3, 5), hint_exclude=("name",), context_weight=1.0),
    EvalConfig(axis="religion", split="validation", batch_size=8),
    LocateConfig(n_pairs=3, hint_kind="noun"),
    SweepConfig(blocks="2,5", probes=("math",)),
    CompareConfig(seeds=(0, 1), retain=RetainConfig.small(), validity=COMPARE_VALIDITY),
    ValidityConfig(probes=("math",), context_lengths=(0, 256)),
    RetainConfig.small(),
    MethodSpec("m", "a method", {"block": 3}),
    ExecutorConfig(max_jobs=2),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=[type(c).__name__ for c in CONFIGS])
def test_a_config_round_trips_through_its_json_record(cfg):
    record = json.loads(json.dumps(cfg.to_dict()))  # as a run writes it and a later run reads it
    again = type(cfg).from_dict(record)
    assert again == cfg and isinstance(again, Config)


def test_nested_configs_and_tuples_come_back_as_declared():
    cfg = CompareConfig.from_dict(json.loads(json.dumps(CONFIGS[4].to_dict())))
    assert isinstance(cfg.retain, RetainConfig) and isinstance(cfg.validity, ValidityConfig)
    assert cfg.seeds == (0, 1) and cfg.validity.context_lengths == (0, 1024)


@pytest.mark.parametrize(
    "cls", [TuneConfig, EvalConfig, LocateConfig, SweepConfig, CompareConfig, RetainConfig]
)
def test_an_unknown_field_is_refused_by_name(cls):
    with pytest.raises(ConfigError, match=r"has no field\(s\) \['lerning_rate'\]; fields: \["):
        cls.from_dict({"lerning_rate": 1})
    with pytest.raises(ConfigError, match="must be given as a mapping"):
        cls.from_dict([1, 2])


def test_api_only_fields_are_declared_on_the_config():
    assert api_only(CompareConfig) == ["budget", "retain", "validity"]
    assert api_only(EvalConfig) == [] and api_only(TuneConfig) == []
