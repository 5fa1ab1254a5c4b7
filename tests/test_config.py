import pytest

from fedsim.config import load_config
from fedsim.errors import ConfigError


def test_defaults_and_overrides():
    cfg = load_config(data={"rounds": 3}, overrides=["train.lr=0.5", "runtime.kind=local", "policy.name=local"])
    assert cfg["rounds"] == 3 and cfg["train"]["lr"] == 0.5
    assert cfg["runtime"]["kind"] == "local" and cfg["policy"]["name"] == "local"
    assert cfg["train"]["batch_size"] == 32  # default filled


@pytest.mark.parametrize("data,overrides,fragment", [
    ({"rounds": 0}, [], "config key 'rounds': got 0; allowed: an integer >= 1"),
    ({"rounds": "ten"}, [], "config key 'rounds': got 'ten'"),
    ({"trian": {}}, [], "config key 'trian'"),
    ({}, ["train.lr=-1"], "config key 'train.lr': got -1"),
    ({}, ["train.optimizer=rmsprop"], "allowed: adam | adamw | sgd"),
    ({}, ["runtime.kind=k8s"], "allowed: ray | local"),
    ({}, ["runtime.bogus=1"], "config key 'runtime.bogus'"),
    ({}, ["privacy.dp.delta=2"], "privacy.dp.delta"),
    ({}, ["privacy.dp.sigma=2"], "config key 'privacy.dp.sigma'"),
    ({}, ["rounds"], "KEY=VALUE"),
])
def test_bad_values_name_key_value_and_allowed(data, overrides, fragment):
    with pytest.raises(ConfigError) as exc:
        load_config(data=data, overrides=overrides)
    assert fragment in str(exc.value)


def test_missing_and_invalid_yaml(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rounds: [1, 2\n")
    with pytest.raises(ConfigError, match="valid YAML"):
        load_config(bad)


def test_unknown_policy_option_is_rejected(small_config):
    from fedsim.policies import make_policy

    with pytest.raises(ConfigError, match="policy.hubb"):
        make_policy({"name": "fedavg", "hubb": "x"})
    with pytest.raises(ConfigError, match="local | centralized|centralized"):
        make_policy({"name": "nope"})
