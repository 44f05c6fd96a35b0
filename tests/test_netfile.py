"""Reading exported files: what a valid file becomes, and a clear error for every broken one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from netfactory import conv, dense, slayer_net, write_net

from chipnet.errors import RuntimeConfigError
from chipnet.netfile import chip_dense_weights, read_net
from chipnet.netmodel import ConvLayer, DenseLayer
from lava_runtime import emu

T = 6


def small_net(path: Path) -> Path:
    """conv (gain, bias) → conv → flatten → dense (gain) → dense: every optional part once."""
    rng = np.random.default_rng(0)
    specs = [
        conv(2, 3, (3, 3), rng, padding=(1, 1), bias=np.array([1, 0, -2]), gain=(rng.integers(0, 4096, (T, 3)), 10)),
        conv(3, 4, (3, 3), rng, stride=(2, 2), padding=(1, 1)),
        dense(4 * 3 * 3, 5, rng, gain=(rng.integers(0, 4096, (T, 5)), 9)),
        dense(5, 3, rng),
    ]
    return write_net(path, (2, 6, 6), specs, T, metadata={"classes": ["a", "b", "c"], "dataset": "synthgesture"})


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return small_net(tmp_path_factory.mktemp("netfile") / "base.net")


def test_reads_a_slayer_export_as_the_chip_holds_it(tmp_path):
    path = tmp_path / "slayer.net"
    slayer_net(path, 8)
    net = read_net(path)
    assert net.input_shape == (2, 12, 12) and net.timesteps == 8
    assert net.layer_names == ["0:conv", "1:conv", "2:dense"]
    assert [layer.shape for layer in net.layers] == [(6, 6, 6), (8, 6, 6), (7,)]
    with h5py.File(path) as h:
        np.testing.assert_array_equal(net.layers[0].weight, h["layer/1/weight"][()].astype(np.int64))
        file_dense = h["layer/4/weight"][()].astype(np.int64)
        assert net.layers[0].neuron.vth_mant == h["layer/1/neuron/vThMant"][()]
        assert net.layers[0].neuron.i_decay == h["layer/1/neuron/iDecay"][()]
        assert net.layers[1].neuron.v_decay == h["layer/2/neuron/vDecay"][()]
    dense_layer = net.layers[2]
    assert isinstance(dense_layer, DenseLayer) and dense_layer.weight_exp < 0
    # Mixed-sign even weights survive NetX's scaling exactly: mantissa × 2**exp is the file's weight.
    np.testing.assert_array_equal(dense_layer.weight >> -dense_layer.weight_exp, file_dense)
    assert net.layers[0].stride == (2, 2) and net.layers[0].padding == (1, 1) and net.layers[0].groups == 1


def test_reads_every_optional_part(base):
    net = read_net(base)
    conv0, conv1, dense0, dense1 = net.layers
    assert isinstance(conv0, ConvLayer) and conv0.gain.exp == 10 and conv0.gain.mant.shape == (T, 3)
    assert conv0.bias.tolist() == [1, 0, -2] and conv1.bias is None and conv1.gain is None
    assert dense0.input_shape == (4, 3, 3) and dense0.gain.mant.shape == (T, 5)
    assert net.metadata["classes"] == ["a", "b", "c"] and net.metadata["input_shape"] == [2, 6, 6]
    assert conv1.lava_shape == (3, 3, 4) and dense1.lava_shape == (3,)


def test_dense_weights_follow_netx_and_lava_quirks():
    # Equal inhibitory weights: NetX scales -128 to -256, Lava clips to -255 and truncates to 0.
    w, exp = chip_dense_weights(np.array([[-128, -128]]))
    assert (w >> -exp).tolist() == [[0, 0]]
    w, exp = chip_dense_weights(np.array([[-128, -64]]))
    assert (w >> -exp).tolist() == [[-64, -64]]
    w, exp = chip_dense_weights(np.array([[255, -2]]))  # mixed sign: 255 does not fit, NetX clips it
    assert (w >> -exp).tolist() == [[254, -2]]
    w, exp = chip_dense_weights(np.array([[1, -1, 6]]))
    assert (w >> -exp).tolist() == [[1, -1, 6]] and exp == -5


def _set(key: str, value) -> Callable[[h5py.File], None]:
    def edit(h: h5py.File) -> None:
        if key in h:
            del h[key]
        h[key] = value

    return edit


def _delete(key: str) -> Callable[[h5py.File], None]:
    def edit(h: h5py.File) -> None:
        del h[key]

    return edit


def _attr(key: str, value) -> Callable[[h5py.File], None]:
    def edit(h: h5py.File) -> None:
        h.attrs[key] = value

    return edit


def _rename(src: str, dst: str) -> Callable[[h5py.File], None]:
    def edit(h: h5py.File) -> None:
        h.move(src, dst)

    return edit


def _drop_flatten(h: h5py.File) -> None:
    del h["layer/3"]
    h.move("layer/4", "layer/3")
    h.move("layer/5", "layer/4")


w1 = np.zeros((3, 2, 3, 3), np.float32)
BROKEN: list[tuple[str, Callable[[h5py.File], None], str]] = [
    ("no layers", _delete("layer"), "no 'layer' group"),
    ("gap in layer names", _rename("layer/5", "layer/7"), "named 0..5"),
    ("input not first", _set("layer/0/type", np.array([b"conv"])), "layer 0: must be the input layer"),
    ("input shape 2-D", _set("layer/0/shape", np.array([2, 6])), "layer 0: input shape must be"),
    ("NaN weight", _set("layer/1/weight", np.full((3, 2, 3, 3), np.nan, np.float32)), "layer 1: 'weight' holds NaN"),
    ("fractional weight", _set("layer/1/weight", w1 + 0.5), "layer 1: 'weight' holds non-integer"),
    ("weight too large", _set("layer/1/weight", w1 + 300), "layer 1: weights must be integers in [-256, 255]"),
    ("weight of strings", _set("layer/1/weight", np.full((3, 2, 3, 3), b"x")), "layer 1: 'weight' has dtype"),
    ("conv weight shape", _set("layer/2/weight", np.zeros((4, 2, 3, 3), np.float32)), "layer 2: conv weight shape"),
    ("conv output shape", _set("layer/2/shape", np.array([4, 4, 4])), "layer 2: shape [4, 4, 4] does not match"),
    ("negative stride", _set("layer/2/stride", np.array([-1, 2])), "layer 2: stride"),
    ("groups", _set("layer/2/groups", 2), "layer 2: groups=2"),
    ("dense in features", _set("layer/4/weight", np.zeros((5, 35), np.float32) + 2), "layer 4: weight shape [5, 35]"),
    ("all-zero dense", _set("layer/5/weight", np.zeros((3, 5), np.float32)), "layer 5: all weights are zero"),
    ("no flatten", _drop_flatten, "layer 3: dense after a conv layer needs a flatten"),
    ("iDecay", _set("layer/1/neuron/iDecay", 5000), "layer 1: neuron iDecay=5000"),
    ("negative threshold", _set("layer/2/neuron/vThMant", -1), "layer 2: neuron vThMant=-1"),
    ("threshold as array", _set("layer/2/neuron/vThMant", np.array([1, 2])), "layer 2: 'vThMant' must be one value"),
    ("neuron type", _set("layer/4/neuron/type", "RF_IZ"), "layer 4: neuron type 'RF_IZ' is not supported"),
    ("graded spikes", _set("layer/4/neuron/gradedSpike", True), "layer 4: graded spikes"),
    ("no neuron", _delete("layer/5/neuron"), "layer 5: missing 'neuron' group"),
    ("gain out of range", _set("layer/1/gain_mant", np.full((T, 3), 5000, np.int32)), "layer 1: gain_mant values"),
    ("gain of floats", _set("layer/1/gain_mant", np.ones((T, 3))), "layer 1: gain_mant has dtype"),
    ("gain timesteps", _set("layer/1/gain_mant", np.ones((T + 1, 3), np.int32)), "layer 1: gain_mant has 7 timesteps"),
    ("gain channels", _set("layer/4/gain_mant", np.ones((T, 4), np.int32)), "layer 4: gain_mant has 4 channels"),
    ("gain exponent", _set("layer/4/gain_exp", 16), "layer 4: gain_exp=16"),
    ("gain without exponent", _delete("layer/4/gain_exp"), "layer 4: gain_mant and gain_exp"),
    ("bias out of range", _set("layer/1/bias", np.array([5000.0, 0, 0])), "layer 1: bias outside"),
    ("synaptic delays", _set("layer/4/delay", np.zeros(5)), "layer 4: 'delay'"),
    ("unknown layer type", _set("layer/3/type", np.array([b"pool"])), "layer 3: layer type 'pool'"),
    ("bad JSON", _attr("timesteps", "{"), "attribute 'timesteps' is not valid JSON"),
    ("timesteps", _attr("timesteps", json.dumps(-3)), "attribute 'timesteps' must be a positive integer"),
    ("input_shape attr", _attr("input_shape", json.dumps([2, 6, 7])), "input_shape [2, 6, 7] differs"),
    ("classes", _attr("classes", json.dumps(["a"])), "1 classes but the output layer has 3"),
]


@pytest.mark.parametrize("edit, message", [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_each_violation_is_a_clear_error(base, tmp_path, edit, message):
    path = tmp_path / "broken.net"
    shutil.copy(base, path)
    with h5py.File(path, "a") as h:
        edit(h)
    with pytest.raises(RuntimeConfigError) as err:
        read_net(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_missing_and_non_hdf5_files(tmp_path):
    with pytest.raises(RuntimeConfigError, match="network file not found"):
        read_net(tmp_path / "nope.net")
    (tmp_path / "junk.net").write_bytes(b"\x89HDF\r\n\x1a\n" + b"junk" * 100)
    with pytest.raises(RuntimeConfigError, match="junk.net: not a readable NetX HDF5 file"):
        read_net(tmp_path / "junk.net")


def _mutate(h: h5py.File, data: st.DataObject) -> None:
    """One random structural edit: delete, replace with random data, or rewrite an attribute."""
    names: list[str] = []
    h.visit(names.append)
    kind = data.draw(st.sampled_from(["delete", "replace", "attr"])) if names else "attr"
    if kind == "attr":
        key = data.draw(st.sampled_from(["timesteps", "input_shape", "classes", "other"]))
        h.attrs[key] = data.draw(
            st.one_of(
                st.text(st.characters(blacklist_characters="\x00"), max_size=12),
                st.binary(min_size=1, max_size=12).map(np.void),
                st.integers(-5, 10**6),
                st.just(json.dumps([2, 6, 6])),
            )
        )
        return
    name = data.draw(st.sampled_from(names))
    if kind == "delete":
        del h[name]
        return
    dtype = data.draw(st.sampled_from(["int8", "int64", "uint32", "float32", "float64", "bool", "S4"]))
    shape = tuple(data.draw(st.lists(st.integers(0, 4), max_size=4)))
    values = data.draw(st.sampled_from([0, 1, -1, 7, 255, 4096, 1e30, float("nan"), float("inf"), 0.5]))
    if dtype == "S4":
        array = np.full(shape, b"CUBA")
    else:
        with np.errstate(all="ignore"):
            array = np.full(shape, values).astype(dtype)
    del h[name]  # a group or a dataset becomes a dataset of random type and shape
    h[name] = array


def _check(path: Path) -> None:
    """The reader accepts the file (and then the emulator runs it) or raises RuntimeConfigError only."""
    try:
        net = read_net(path, timeout_s=10)
    except RuntimeConfigError as e:
        assert str(e).startswith(str(path))
        return
    t = net.timesteps if net.timesteps and net.timesteps > len(net.layers) else len(net.layers) + 1
    if any(layer.gain is not None for layer in net.layers):
        t = net.timesteps
    records = emu.emulate(net, np.ones((1, *net.input_shape, t), np.uint8))
    assert len(records) == len(net.layers)


FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(data=st.data())
def test_fuzz_structural_edits_give_only_clear_errors(base, tmp_path, data):
    path = tmp_path / "fuzz.net"
    shutil.copy(base, path)
    with h5py.File(path, "a") as h:
        for _ in range(data.draw(st.integers(1, 3))):
            _mutate(h, data)
    _check(path)


@FUZZ
@given(
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.one_of(st.none(), st.floats(0, 1)),
)
def test_fuzz_damaged_bytes_give_only_clear_errors(base, tmp_path, flips, cut):
    raw = bytearray(base.read_bytes())
    for where, byte in flips:
        raw[int(where * len(raw))] = byte
    if cut is not None:
        raw = raw[: int(cut * len(raw))]
    path = tmp_path / "damaged.net"
    path.write_bytes(bytes(raw))
    _check(path)


def test_a_file_that_hangs_the_hdf5_library_is_an_error(base, tmp_path):
    """Found by the byte fuzzer: a heap object's size past its collection makes libhdf5 loop forever."""
    raw = bytearray(base.read_bytes())
    at = raw.find(b"[2, 6, 6]")  # the input_shape attribute in the global heap
    assert at > 0
    # 9 bytes padded to 16, then the next object's index, refcount and reserved bytes, then its size.
    raw[at + 24] = 136
    path = tmp_path / "hang.net"
    path.write_bytes(bytes(raw))
    with pytest.raises(RuntimeConfigError, match="hang.net: reading took longer than 5 s"):
        read_net(path, timeout_s=5)
