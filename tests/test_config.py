import pytest

from chipnet.errors import ConfigError
from train.config import TrainConfig, load_config


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


from hypothesis import given, settings
from hypothesis import strategies as st

_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_fuzz_config_text_raises_only_config_errors(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "c.yaml"
    path.write_text(text)
    try:
        cfg = load_config(path)
    except ConfigError as e:
        assert "c.yaml" in str(e)
    else:
        assert isinstance(cfg, TrainConfig)


@settings(max_examples=200, deadline=None)
@given(data=st.dictionaries(st.sampled_from(["epochs", "neuron", "channels", "lr", "bogus"]), _values, max_size=4))
def test_fuzz_config_mappings_raise_only_config_errors(data):
    try:
        TrainConfig.from_dict(data, source="fuzz.yaml")
    except ConfigError as e:
        assert "fuzz.yaml" in str(e)


@pytest.mark.parametrize(
    "bad",
    [
        {"epochs": "ten"},
        {"epochs": 0},
        {"lr": float("nan")},
        {"channels": [8, "x"]},
        {"neuron": {"threshold": -1.0}},
        {"batch_size": True},
        {"neuron": [1]},
        {"val_fraction": 1.0},
        {"val_fraction": -0.1},
    ],
)
def test_wrongly_typed_values_are_rejected_with_the_option_named(bad):
    with pytest.raises(ConfigError, match="cfg.yaml"):
        TrainConfig.from_dict(bad, source="cfg.yaml")


def test_sections_and_the_flat_names_of_earlier_releases_give_the_same_config(tmp_path, capsys):
    nested = tmp_path / "nested.yaml"
    nested.write_text(
        "optim: {lr: 0.01, scheduler: cosine}\nsma: {block: spiking, layers: [1]}\nreadout: {kind: voltage}\n"
    )
    flat = tmp_path / "flat.yaml"
    flat.write_text("lr: 0.01\nscheduler: cosine\nsma_block: spiking\nsma_layers: [1]\nreadout: voltage\n")
    assert load_config(nested) == load_config(flat)
    assert "lr → optim.lr" in capsys.readouterr().err  # the flat file says which names replace its own
    cfg = load_config(nested)
    assert (cfg.optim.lr, cfg.sma.block, cfg.readout.kind, cfg.readout.loss) == (
        0.01,
        "spiking",
        "voltage",
        "spike-rate",
    )
    with pytest.raises(ConfigError, match="unknown sma option"):
        TrainConfig.from_dict({"sma": {"blocks": "spiking"}}, source="cfg.yaml")
    with pytest.raises(ConfigError, match="optim.scheduler must be one of"):
        TrainConfig.from_dict({"optim": {"scheduler": "cosin"}}, source="cfg.yaml")


def test_every_option_is_a_flag_of_train_run():
    from train.config import flag_options, option_fields, with_options
    from train.run import parse_args

    args = parse_args(["--sma.block", "spiking", "--lr", "1e-3", "--sma.layers", "[1, 2]", "--batch-size", "4"])
    cfg = with_options(TrainConfig(), flag_options(args))
    assert (cfg.sma.block, cfg.optim.lr, cfg.sma.layers, cfg.batch_size) == ("spiking", 1e-3, [1, 2], 4)
    assert {"optim.lr", "sma.block", "ma.attention", "readout.kind", "epochs"} <= {n for n, _ in option_fields()}
