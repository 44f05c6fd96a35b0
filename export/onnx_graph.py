"""The deployed network as ONNX: one stateful timestep of the chip's integer arithmetic.

The step is in the layers' *local time* (docs/design.md, "Timing"): layer ``k``'s step ``t``
integrates layer ``k - 1``'s step ``t`` (the input frame ``x`` for layer 0), which is what the
chip computes once each layer's one-step lag and per-sample reset are taken out. Inputs are the
sample step ``t``, the input frame ``x`` ``[1, C, H, W]`` and, per layer ``k``, the neuron
states ``u_k``, ``v_k`` (int64, Loihi's units); outputs are every layer's spikes ``s_k`` and the
next states ``*_next``. Running the step ``T`` times from zero states reproduces
``lava_runtime.emu`` (and so the Lava fixed-point simulator) spike for spike; the arithmetic is
that of ``chipnet/netfile.py``'s ``Cuba`` and ``Gain``. Netron shows this graph well
(NetX HDF5 files it cannot).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from chipnet.atomic import atomic_write
from chipnet.chip import ACT_SHIFT, DECAY_UNITY, STATE_BITS, W_SCALE
from chipnet.netmodel import ConvLayer, NetFile

OPSET = 17
IR_VERSION = 8  # opset 17's IR version; newer onnx packages default to IRs that onnxruntime may not read yet
_HALF = 1 << (STATE_BITS - 1)


class _Builder:
    """Accumulates nodes and constants with unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def const(self, value: np.ndarray | int, name: str | None = None, dtype=np.int64) -> str:
        self.count += 1
        name = name or f"c{self.count}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, kind: str, *inputs: str, out: str | None = None, **attrs) -> str:
        self.count += 1
        out = out or f"{kind.lower()}{self.count}"
        self.nodes.append(helper.make_node(kind, list(inputs), [out], **attrs))
        return out

    def toward_zero_div(self, x: str, divisor: int) -> str:
        """``sign(x) · (|x| // divisor)``: Loihi's right shifts round toward zero."""
        mag = self.op("Div", self.op("Abs", x), self.const(divisor))
        return self.op("Mul", self.op("Sign", x), mag)

    def floor_div(self, x: str, divisor: int) -> str:
        """``x // divisor`` rounding down (an arithmetic right shift); ONNX's integer Div truncates."""
        d = self.const(divisor)
        return self.op("Div", self.op("Sub", x, self.op("Mod", x, d)), d)

    def wrap(self, x: str, bits: int) -> str:
        """Two's-complement wrap to ``bits``."""
        half = 1 << (bits - 1)
        return self.op(
            "Sub", self.op("Mod", self.op("Add", x, self.const(half)), self.const(2 * half)), self.const(half)
        )


def to_onnx(net: NetFile) -> onnx.ModelProto:
    """The one-timestep ONNX model of an exported network (see the module docstring)."""
    b = _Builder()
    inputs = [
        helper.make_tensor_value_info("t", TensorProto.INT64, []),
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, *net.input_shape]),
    ]
    outputs = []
    period = net.timesteps or 1
    source = "x"
    for k, layer in enumerate(net.layers):
        shape = [1, *layer.shape]
        inputs += [
            helper.make_tensor_value_info(f"u_{k}", TensorProto.INT64, shape),
            helper.make_tensor_value_info(f"v_{k}", TensorProto.INT64, shape),
        ]
        # Integer sums of 0/1 spikes times integer weights are exact in float32 below 2**24.
        if isinstance(layer, ConvLayer):
            w = b.const(layer.weight, f"weight_{k}", np.float32)
            a = b.op(
                "Conv",
                source,
                w,
                strides=list(layer.stride),
                dilations=list(layer.dilation),
                pads=[layer.padding[0], layer.padding[1], layer.padding[0], layer.padding[1]],
                group=layer.groups,
            )
            a = b.wrap(b.op("Cast", a, to=TensorProto.INT64), STATE_BITS)
        else:
            flat = b.op("Reshape", source, b.const([1, -1]))
            w = b.const(layer.weight.T, f"weight_{k}", np.float32)
            a = b.op("Cast", b.op("MatMul", flat, w), to=TensorProto.INT64)
            e = layer.weight_exp
            a = b.floor_div(a, 1 << -e) if e < 0 else b.op("Mul", a, b.const(1 << e))
        x = b.op("Mul", a, b.const(W_SCALE))
        extra = [1] * (len(layer.shape) - 1)
        if layer.gain is not None:
            mant = b.const(layer.gain.mant.reshape(layer.gain.mant.shape[0], -1, *extra), f"gain_mant_{k}")
            g = b.op("Gather", mant, b.op("Mod", "t", b.const(period)), axis=0)
            mag = b.op("Div", b.op("Mul", b.op("Abs", x), g), b.const(1 << layer.gain.exp))
            x = b.op("Mul", b.op("Sign", x), mag)
        n = layer.neuron
        u = b.op("Add", b.toward_zero_div(b.op("Mul", f"u_{k}", b.const(DECAY_UNITY - n.i_decay)), DECAY_UNITY), x)
        # Lava's single 24-bit wrap: above 2**23 down, at or below -2**23 up.
        two = b.const(2 * _HALF)
        u = b.op(
            "Where",
            b.op("Greater", u, b.const(_HALF)),
            b.op("Sub", u, two),
            b.op("Where", b.op("LessOrEqual", u, b.const(-_HALF)), b.op("Add", u, two), u),
        )
        v = b.op("Add", b.toward_zero_div(b.op("Mul", f"v_{k}", b.const(DECAY_UNITY - n.v_decay)), DECAY_UNITY), u)
        if layer.bias is not None and np.any(layer.bias):
            v = b.op("Add", v, b.const((layer.bias << ACT_SHIFT).reshape(-1, *extra)))
        v = b.op("Min", b.op("Max", v, b.const(-_HALF + 1)), b.const(_HALF - 1))
        s = b.op("Greater", v, b.const(n.vth_mant << ACT_SHIFT))
        b.op("Where", s, b.const(0), v, out=f"v_{k}_next")
        b.op("Identity", u, out=f"u_{k}_next")
        source = b.op("Cast", s, to=TensorProto.FLOAT, out=f"s_{k}")
        outputs += [
            helper.make_tensor_value_info(f"s_{k}", TensorProto.FLOAT, shape),
            helper.make_tensor_value_info(f"u_{k}_next", TensorProto.INT64, shape),
            helper.make_tensor_value_info(f"v_{k}_next", TensorProto.INT64, shape),
        ]
    graph = helper.make_graph(b.nodes, "deployed_step", inputs, outputs, b.inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="sma-lava", ir_version=IR_VERSION
    )
    model.doc_string = f"one timestep of {net.path}; T={net.timesteps}; layers {', '.join(net.layer_names)}"
    onnx.checker.check_model(model)
    return model


def write_onnx(net: NetFile, path: str | Path) -> Path:
    """Write the one-step ONNX model of ``net`` atomically (checked by ``onnx.checker``)."""
    data = to_onnx(net).SerializeToString()
    return atomic_write(path, lambda fh: fh.write(data))


def run_onnx(path: str | Path, spikes: np.ndarray, voltage: bool = False) -> list[np.ndarray]:
    """Run samples ``[N, C, H, W, T]`` through the ONNX step with onnxruntime, each from zero state.

    Returns every layer's spikes ``[N, C, H, W, T]`` (or ``[N, C, T]``) in local time, as the
    emulator's records hold them: step ``t`` of layer ``k`` is its output at its own step ``t``.
    With ``voltage``, one more array follows: the output layer's ``v`` after each step (a voltage
    readout's integrators, Loihi's integers).
    """
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    state_inputs = [i for i in sess.get_inputs() if i.name not in ("t", "x")]
    layers = sorted({int(n.split("_")[1]) for n in names if n.startswith("s_")})
    n, t = spikes.shape[0], spikes.shape[-1]
    out = []
    for i in range(n):
        feed = {
            i_.name: np.zeros(i_.shape, np.int64 if i_.type == "tensor(int64)" else np.float32) for i_ in state_inputs
        }
        per_layer = [[] for _ in layers]
        trace = []
        for step in range(t):
            feed["t"] = np.array(step, np.int64)
            feed["x"] = spikes[i, ..., step][None].astype(np.float32)
            result = dict(zip(names, sess.run(names, feed)))
            for k in layers:
                per_layer[k].append(result[f"s_{k}"][0])
            if voltage:
                trace.append(result[f"v_{layers[-1]}_next"][0])
            for name in list(feed):
                if name not in ("t", "x"):
                    feed[name] = result[f"{name}_next"]
        out.append([np.stack(p, axis=-1) for p in per_layer] + ([np.stack(trace, axis=-1)] if voltage else []))
    result = [np.stack([sample[k] for sample in out]).astype(np.uint8) for k in layers]
    return result + ([np.stack([sample[-1] for sample in out]).astype(np.int64)] if voltage else [])
