"""Energy model YAML: the packaged model, clear errors naming file and key, and a fuzz test."""

from __future__ import annotations

import pytest
import yaml
from conftest import lava_run, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lava_runtime.energy import DEFAULT_MODEL, REQUIRED, EnergyModel, EnergyModelError, load_energy_model

GOOD = {
    "name": "test",
    "constants": {k: {"value": 1e-12 * (i + 1), "source": f"source {i}"} for i, k in enumerate(REQUIRED)},
}


def _write(tmp_path, data, name="model.yaml"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_packaged_model_has_every_constant_with_a_source():
    model = load_energy_model()
    assert model.path == str(DEFAULT_MODEL)
    assert model["synop_j"] == pytest.approx(23.6e-12) and model["neuron_update_j"] == pytest.approx(81e-12)
    assert model["ac_j"] == pytest.approx(0.9e-12) and model["mac_j"] == pytest.approx(4.6e-12)
    assert all(model.constants[k].source for k in REQUIRED)


def test_user_model_is_read(tmp_path):
    model = load_energy_model(_write(tmp_path, GOOD))
    assert model.name == "test" and model["mac_j"] == pytest.approx(5e-12)
    assert model.as_dict()["constants"]["synop_j"] == {"value": 1e-12, "source": "source 0"}


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda d: d["constants"].pop("synop_j"), r"missing constant synop_j"),
        (lambda d: d["constants"]["mac_j"].pop("source"), r"constants\.mac_j\.source must name"),
        (lambda d: d["constants"]["ac_j"].update(value="cheap"), r"constants\.ac_j\.value must be a number"),
        (lambda d: d["constants"]["ac_j"].update(value=True), r"constants\.ac_j\.value must be a number"),
        (
            lambda d: d["constants"]["spike_j"].update(value=-1.0),
            r"constants\.spike_j\.value must be finite and non-negative",
        ),
        (lambda d: d["constants"]["spike_j"].update(value=float("inf")), r"finite and non-negative"),
        (lambda d: d["constants"].update(synop_j=23.6e-12), r"constants\.synop_j must be a mapping"),
        (lambda d: d.pop("name"), r"'name' must be a non-empty string"),
        (lambda d: d.update(constants=[1, 2]), r"'constants' must be a mapping"),
    ],
)
def test_bad_model_names_file_and_key(tmp_path, edit, match):
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    edit(data)
    path = _write(tmp_path, data)
    with pytest.raises(EnergyModelError, match=match) as info:
        load_energy_model(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "text, match",
    [("name: [unclosed", "not valid YAML"), ("- a\n- b\n", "expected a mapping"), ("", "expected a mapping")],
)
def test_malformed_yaml(tmp_path, text, match):
    with pytest.raises(EnergyModelError, match=match):
        load_energy_model(_write(tmp_path, text))


def test_missing_file(tmp_path):
    with pytest.raises(EnergyModelError, match="energy model file not found"):
        load_energy_model(tmp_path / "nope.yaml")


def test_cli_with_bad_energy_model_is_one_line(tmp_path, tiny_run):
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    del data["constants"]["neuron_update_j"]
    path = _write(tmp_path, data)
    proc = run_cli(
        *lava_run(str(tiny_run / "model.net")),
        "--energy-model",
        str(path),
        "--report",
        str(tmp_path / "r.json"),
        check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{path}: missing constant neuron_update_j" in proc.stderr
    assert not (tmp_path / "r.json").exists()


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(allow_nan=True), st.text(max_size=12)
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
_constant = st.one_of(_values, st.fixed_dictionaries({"value": _values, "source": _values}))
_models = st.fixed_dictionaries(
    {},
    optional={
        "name": _values,
        "constants": st.one_of(
            _values, st.dictionaries(st.sampled_from(sorted(REQUIRED) + ["other"]), _constant, max_size=6)
        ),
    },
)
FUZZ_EXAMPLES = 400


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(_models, _values), raw=st.one_of(st.none(), st.binary(max_size=64), st.text(max_size=64)))
def test_fuzz_reader_returns_a_model_or_a_clear_error(tmp_path, data, raw):
    path = tmp_path / "fuzz.yaml"
    if raw is None:
        path.write_text(yaml.safe_dump(data))
    elif isinstance(raw, bytes):
        path.write_bytes(raw)
    else:
        path.write_text(raw)
    try:
        model = load_energy_model(path)
    except EnergyModelError as e:
        assert str(path) in str(e)
        return
    assert isinstance(model, EnergyModel) and set(REQUIRED) <= set(model.constants)
    assert all(v.value >= 0 and v.source for v in model.constants.values())
