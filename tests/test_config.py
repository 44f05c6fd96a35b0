import pytest

from train.config import TrainConfig, load_config
from train.errors import ConfigError


def test_yaml_round_trip(tmp_path):
    cfg = TrainConfig(epochs=3, channels=[4, 8])
    path = tmp_path / "c.yaml"
    import yaml

    path.write_text(yaml.safe_dump(cfg.to_dict()))
    assert load_config(path) == cfg


def test_unknown_option_is_named_with_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("epochz: 3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml.*epochz"):
        load_config(path)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "none.yaml")
    bad = tmp_path / "broken.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    notmap = tmp_path / "list.yaml"
    notmap.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(notmap)
