"""A batched torch emulator of the deployed network's integer arithmetic (``--backend emu``).

It computes what the Lava fixed-point simulator computes (``PyLifResetModelBitAcc`` neurons,
``PyConvModelFixed`` and ``PyDenseModelBitAcc`` synapses, NetX's weight handling, the gains of
docs/netx-format.md), spike for spike, but for a whole batch of samples at once. With
``arithmetic="float"`` (``--backend emu-float``) it computes what Lava's floating-point models
compute on the same network in float units (:mod:`lava_runtime.float_units`, ``sim-float``).

Why whole samples can be batched although Lava streams them back to back: layer ``k`` is
reset when the first step of a sample reaches it (window step ``k + 1``), and from then on
until the next reset it only sees that sample. So each sample is run from zero state for ``T``
steps per layer, layer ``k``'s step ``j`` integrating layer ``k - 1``'s step ``j``: the local
time of :mod:`lava_runtime.records`, which is what the records hold on every backend.

Sigma-delta (``SDNN``) networks are never reset by NetX, so they take another path
(:mod:`lava_runtime.sdnn_emu`): the whole stream, as Lava runs it, in fixed point only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from chipnet.chip import ACT_SHIFT, DECAY_UNITY, STATE_BITS
from chipnet.errors import RuntimeConfigError
from chipnet.events import COUNT_MAX
from chipnet.netfile import read_net
from chipnet.netmodel import ConvLayer, DenseLayer, InputLayer, Layer, NetFile
from lava_runtime.counting import synops_from_spikes, topology
from lava_runtime.records import Agreement, LayerRecord, compare_records, to_lava_order  # noqa: F401 (re-exported)
from lava_runtime.sdnn_emu import emulate_sigma_delta

_HALF = 1 << (STATE_BITS - 1)  # 2**23


# All integer quantities are held in float64, which is exact for integers below 2**53: Loihi's
# products (24-bit states × 12-bit decays, 29-bit inputs × 12-bit gains) stay far below that, a
# division by a power of two is exact, and trunc/floor then give the shifts' rounding. float64
# arithmetic vectorises on CPUs where 64-bit integer multiplies do not.


def _wrap(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Two's-complement wrap to ``bits`` (numpy's silent int32 overflow, Lava's ``signed_clamp``)."""
    half = float(1 << (bits - 1))
    return torch.remainder(x + half, 2 * half) - half


ARITHMETIC = ("fixed", "float")


class _LayerKernel:
    """One layer's synapse and neuron constants on a torch device."""

    def __init__(self, layer: Layer, device: torch.device, arithmetic: str = "fixed", payload_max: int = 1) -> None:
        self.layer = layer
        self.float = arithmetic == "float"
        self.identity = isinstance(layer, InputLayer)  # payloads go straight to the neurons' a_in
        weight = np.ones((1, 1), np.int64) if self.identity else layer.weight
        # The largest input sum: weights times the largest message (1 for spikes; graded counts more).
        bound = int(np.abs(weight).reshape(weight.shape[0], -1).sum(1).max(initial=0)) * payload_max
        # Integer sums stay exact in float32 below 2**24; float64 beyond (and on CUDA, where
        # TF32 and FFT algorithms could round).
        exact32 = bound < (1 << 24) and device.type == "cpu"
        self.dtype = torch.float32 if exact32 and not self.identity else torch.float64
        self.weight = torch.as_tensor(weight, dtype=self.dtype, device=device)
        self.wrap24 = isinstance(layer, ConvLayer) and bound >= _HALF  # else the conv sum cannot wrap
        # Lava adds ``a_in << 6`` to u in int32; only huge dense fan-ins can overflow that.
        # (Gain layers compute in int64, as the gain neuron process does.)
        self.wrap32 = layer.gain is None and (bound << ACT_SHIFT) + _HALF >= (1 << 31)
        n = layer.neuron
        extra = (1,) * (len(layer.shape) - 1)  # broadcast per channel over H, W

        def per_channel(value: float | np.ndarray) -> float | torch.Tensor:
            # Per-channel decays (lava-dl's shared_param=False) broadcast like Lava's over (W, H, C).
            if np.ndim(value) == 0:
                return float(value)
            return torch.as_tensor(np.asarray(value, np.float64), device=device).reshape(-1, *extra)

        self.u_keep = per_channel((DECAY_UNITY - np.asarray(n.i_decay)) / DECAY_UNITY)  # exact binary fractions
        self.v_keep = per_channel((DECAY_UNITY - np.asarray(n.v_decay)) / DECAY_UNITY)
        self.vth = float(n.vth_mant << ACT_SHIFT)
        self.bias = None
        if layer.bias is not None and np.any(layer.bias):
            self.bias = torch.as_tensor(layer.bias << ACT_SHIFT, dtype=torch.float64, device=device).reshape(-1, *extra)
        self.gain = None
        if layer.gain is not None:
            # mant / 2**exp as one exact float64 factor: |x|·mant stays below 2**53.
            scale = layer.gain.mant.astype(np.float64) / float(1 << layer.gain.exp)
            self.gain = torch.as_tensor(scale, device=device).reshape(layer.gain.mant.shape[0], -1, *extra)
        if self.float:
            # float_units: Lava's float LIF keeps ``1 - du`` of u and ``1 - dv`` of v, compares with
            # vThMant and adds bias_mant·2**bias_exp/64 (= the file's bias, NetX's bias_exp is 6).
            self.dtype = torch.float64
            self.weight = self.weight.to(torch.float64)
            if isinstance(layer, DenseLayer):
                self.weight = self.weight * 2.0**layer.weight_exp
            self.u_keep = per_channel(1 - np.asarray(n.i_decay) / DECAY_UNITY)
            self.v_keep = per_channel(1 - np.asarray(n.v_decay) / DECAY_UNITY)
            self.vth = float(n.vth_mant)
            if self.bias is not None:
                self.bias = self.bias / float(1 << ACT_SHIFT)

    def synapse(self, s: torch.Tensor) -> torch.Tensor:
        """Synaptic input (integers in float64) for spikes ``s`` ``[M, *input_shape]`` (M = steps × samples)."""
        layer = self.layer
        x = s.to(self.dtype)
        if self.identity:  # NetX's Input block: no synapse, the payload is the neuron's a_in
            return x.to(torch.float64)
        if isinstance(layer, ConvLayer):
            with torch.backends.cudnn.flags(enabled=False):  # no FFT/Winograd: sums must stay exact
                a = F.conv2d(
                    x,
                    self.weight,
                    stride=layer.stride,
                    padding=layer.padding,
                    dilation=layer.dilation,
                    groups=layer.groups,
                )
            if self.float:  # PyConvModelFloat: the plain sum (exact: binary spikes, integer weights)
                return a
            a = torch.round(a).to(torch.float64)
            return _wrap(a, STATE_BITS) if self.wrap24 else a  # PyConvModelFixed's signed_clamp
        if self.float:  # PyDenseModelFloat: the plain sum (exact: binary spikes, dyadic weights)
            return x.reshape(x.shape[0], -1) @ self.weight.T
        a = torch.round(x.reshape(x.shape[0], -1) @ self.weight.T).to(torch.float64)
        # PyDenseModelBitAcc: arithmetic right shift by the shared exponent (floor for negative sums).
        return torch.floor(a / float(1 << -layer.weight_exp))

    def neurons(
        self, a: torch.Tensor, trace: torch.Tensor | None = None, state: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """CUBA dynamics over ``a`` ``[T, B, *shape]`` from zero state; step ``t`` applies gain row ``t``.

        ``trace`` (``[T, B, *shape]``), where given, receives the voltage after each step (a voltage readout).
        ``state``, where given, is ``[u, v]`` to start from (empty: zero) and receives them at the end, so that
        calls over consecutive chunks of a stream are one run without resets (``stream --reset never``).
        """
        if self.float:
            return self._float_neurons(a, trace, state)
        u = state[0] if state else torch.zeros_like(a[0])
        v = state[1] if state else torch.zeros_like(a[0])
        out = torch.empty(a.shape, dtype=torch.bool, device=a.device)
        for t in range(a.shape[0]):
            x = a[t] * float(1 << ACT_SHIFT)
            if self.wrap32:
                x = _wrap(x, 32)
            if self.gain is not None:  # sign(x)·((|x|·mant) >> exp) is a truncation toward zero
                x = torch.trunc(x * self.gain[t])
            u = torch.trunc(u * self.u_keep).add_(x)  # decay rounds toward zero, like Loihi's shift
            if self.wrap32:
                u = _wrap(u, 32)
            if float(u.abs().max()) >= _HALF:  # Lava's single 24-bit wrap: above 2**23 down, at or below -2**23 up
                u = torch.where(u > _HALF, u - 2 * _HALF, torch.where(u <= -_HALF, u + 2 * _HALF, u))
            v = torch.trunc(v * self.v_keep).add_(u)
            if self.bias is not None:
                v.add_(self.bias)
            v.clamp_(-_HALF + 1, _HALF - 1)
            s = v > self.vth
            v.masked_fill_(s, 0.0)
            out[t] = s
            if trace is not None:
                trace[t] = v
        if state is not None:
            state[:] = [u, v]
        return out

    def _float_neurons(
        self, a: torch.Tensor, trace: torch.Tensor | None = None, state: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """``PyLifResetModelFloat`` (and the float gain model), operation for operation."""
        u = state[0] if state else torch.zeros_like(a[0])
        v = state[1] if state else torch.zeros_like(a[0])
        out = torch.empty(a.shape, dtype=torch.bool, device=a.device)
        for t in range(a.shape[0]):
            x = a[t]
            if self.gain is not None:  # x·mant / 2**exp, exact in float64 either way round
                x = x * self.gain[t]
            u = u * self.u_keep + x
            v = v * self.v_keep + u
            if self.bias is not None:
                v = v + self.bias
            s = v > self.vth
            v.masked_fill_(s, 0.0)
            out[t] = s
            if trace is not None:
                trace[t] = v
        if state is not None:
            state[:] = [u, v]
        return out


def _forward(kernels: list[_LayerKernel], x: torch.Tensor, trace: torch.Tensor | None = None) -> list[torch.Tensor]:
    """Spikes ``[T, B, C, H, W]`` → every layer's spikes ``[T, B, *shape]`` over its T local steps.

    ``trace``, where given, receives the output layer's voltage ``[T, B, *shape]`` (a voltage readout).
    """
    t, b = x.shape[:2]
    outs = []
    s = x
    for k, kernel in enumerate(kernels):
        a = kernel.synapse(s.reshape(t * b, *s.shape[2:]))
        s = kernel.neurons(a.reshape(t, b, *a.shape[1:]), trace if k == len(kernels) - 1 else None)
        outs.append(s)
    return outs


def emulate_local(
    net: str | Path | NetFile, spikes: np.ndarray, arithmetic: str = "float", threads: int | None = 1
) -> list[np.ndarray]:
    """Every layer's spikes ``[N, C, H, W, T]`` or ``[N, C, T]`` over each sample's own T local steps.

    The records of :func:`emulate` in the torch layout: the timing of a NIR graph or of the
    delay-free torch model (layer ``k``'s step ``j`` integrates layer ``k-1``'s step ``j``).
    """
    records = emulate(net, spikes, record="all", threads=threads, arithmetic=arithmetic)
    return [r.spikes.transpose(0, 3, 2, 1, 4) if r.spikes.ndim == 5 else r.spikes for r in records]


def emulate(
    net: str | Path | NetFile,
    spikes: np.ndarray,
    record: str = "output",
    device: str | torch.device | None = None,
    batch_size: int = 64,
    threads: int | None = 1,
    arithmetic: str = "fixed",
) -> list[LayerRecord]:
    """Emulate ``spikes`` ``[N, C, H, W, T]`` through the network; the same records as Lava's run.

    ``arithmetic`` is ``"fixed"`` (Loihi's integers, as ``sim``) or ``"float"`` (as ``sim-float``).

    ``threads`` is torch's CPU thread count during the run (None keeps torch's): the per-step
    neuron updates are many small operations, and on a 2-core machine one thread ran a
    264-sample split in 1.4 s where two took 2.8 to 26 s.
    """
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _emulate(net, spikes, record, device, batch_size, arithmetic)
    finally:
        torch.set_num_threads(previous)


def _emulate(
    net: str | Path | NetFile,
    spikes: np.ndarray,
    record: str,
    device: str | torch.device | None,
    batch_size: int,
    arithmetic: str,
) -> list[LayerRecord]:
    """:func:`emulate` with torch's threads already set."""
    if arithmetic not in ARITHMETIC:
        raise RuntimeConfigError(f"unknown arithmetic {arithmetic!r}; choose one of {', '.join(ARITHMETIC)}")
    net = net if isinstance(net, NetFile) else read_net(net)
    n, t = spikes.shape[0], spikes.shape[-1]
    if tuple(spikes.shape[1:-1]) != tuple(net.input_shape):
        raise RuntimeConfigError(
            f"{net.path}: input samples {list(spikes.shape[1:-1])} do not match the "
            f"network input {list(net.input_shape)}"
        )
    if net.sigma_delta:  # graded messages and no resets between samples: one stream, as Lava runs it
        return emulate_sigma_delta(net, spikes, record, arithmetic)
    if net.input_neurons and spikes.size and np.abs(spikes).max() >= 1 << 15:
        raise RuntimeConfigError(f"{net.path}: input payloads must lie in the input neurons' 16-bit a_in range")
    if net.graded_input and spikes.size and (spikes.min() < 0 or spikes.max() > COUNT_MAX):
        raise RuntimeConfigError(f"{net.path}: event counts must lie in [0, {COUNT_MAX}] (8-bit graded messages)")
    if len(net.layers) >= t:
        raise RuntimeConfigError(f"{net.path}: {len(net.layers)} layers need more than T={t} timesteps per sample")
    for layer in net.layers:
        if layer.gain is not None and layer.gain.mant.shape[0] != t:
            raise RuntimeConfigError(
                f"{net.path}: layer {layer.name} has gains for {layer.gain.mant.shape[0]} "
                f"timesteps, the samples have T={t}"
            )
    dev = torch.device(device) if device is not None else torch.device("cpu")
    payload = COUNT_MAX if net.graded_input else 1
    kernels = [_LayerKernel(layer, dev, arithmetic, payload if k == 0 else 1) for k, layer in enumerate(net.layers)]
    topos = [topology(layer) for layer in net.layers]
    # Fan-out of each layer's neurons into the next one, in the emulator's [C, H, W] layout.
    fanouts = [
        torch.as_tensor(
            np.ascontiguousarray(topo.fanout.transpose(*range(topo.fanout.ndim)[::-1])), dtype=torch.float64, device=dev
        ).reshape(-1)
        for topo in topos[1:]
    ]
    last = len(net.layers) - 1
    keep = [record == "all" or k == last for k in range(len(net.layers))]
    counts = [np.zeros((n, t), dtype=np.int64) for _ in net.layers]
    # synops[k]: into layer k, at the presynaptic step; layer 0's come from the input frames.
    synops = [synops_from_spikes(to_lava_order(spikes), topos[0].fanout)] + [
        np.zeros((n, t), dtype=np.int64) for _ in net.layers[1:]
    ]
    full = [
        np.zeros((n, *layer.lava_shape, t), dtype=np.uint8) if keep[k] else None for k, layer in enumerate(net.layers)
    ]
    # A voltage readout's integrators, in voltage units (the file's 2**6-scaled integers in fixed point).
    voltage = np.zeros((n, *net.layers[last].lava_shape, t), dtype=np.float64) if net.readout == "voltage" else None
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            frames = np.moveaxis(spikes[start:stop], -1, 0)
            # A synapse sees binary spikes (Lava's unary s_in casts to bool); input neurons, and a first
            # synapse that takes graded messages (count input), get the payload.
            graded = net.input_neurons or net.graded_input
            x = torch.as_tensor(frames.astype(np.float64) if graded else frames != 0, device=dev)
            trace = None
            if voltage is not None:
                trace = torch.zeros((t, stop - start, *net.layers[last].shape), dtype=torch.float64, device=dev)
            for k, s in enumerate(_forward(kernels, x, trace)):
                flat = s.reshape(t, stop - start, -1)
                counts[k][start:stop] = flat.sum(-1).T.cpu().numpy()
                if k < last:  # what these spikes cost in layer k + 1
                    ops = torch.round(flat.to(torch.float64) @ fanouts[k]).to(torch.int64).T.cpu().numpy()
                    synops[k + 1][start:stop] = ops
                if keep[k]:
                    # [T, B, C, H, W] → [B, W, H, C, T], Lava's order
                    window = s.permute(1, 4, 3, 2, 0) if s.ndim == 5 else s.permute(1, 2, 0)
                    full[k][start:stop] = window.cpu().numpy()
            if trace is not None:
                trace = trace.permute(1, 4, 3, 2, 0) if trace.ndim == 5 else trace.permute(1, 2, 0)
                voltage[start:stop] = trace.cpu().numpy()
    return [
        LayerRecord(
            name,
            tuple(layer.lava_shape),
            counts[k],
            full[k],
            synops=synops[k],
            topology=topos[k],
            gain=layer.gain is not None,
            voltage=voltage if k == last else None,
        )
        for k, (name, layer) in enumerate(zip(net.layer_names, net.layers))
    ]


class ContinuousEmulator:
    """The network over an endless stream without resets, a chunk of frames per call (``stream --reset never``).

    Each layer's neurons keep their state from one call to the next. Layer ``k``'s step ``j``
    integrates layer ``k - 1``'s step ``j`` (the records' local time), so a frame's output is known
    as soon as the frame is in. Per-timestep gains belong to a sample's ``T`` steps and have no
    place in an endless stream, so such networks are refused.
    """

    def __init__(self, net: str | Path | NetFile, arithmetic: str = "fixed") -> None:
        net = net if isinstance(net, NetFile) else read_net(net)
        if arithmetic not in ARITHMETIC:
            raise RuntimeConfigError(f"unknown arithmetic {arithmetic!r}; choose one of {', '.join(ARITHMETIC)}")
        if net.sigma_delta or any(layer.gain is not None for layer in net.layers):
            raise RuntimeConfigError(
                f"{net.path}: per-timestep gains or sigma-delta layers need a reset every T frames"
            )
        dev = torch.device("cpu")
        payload = COUNT_MAX if net.graded_input else 1
        self.net = net
        self.kernels = [
            _LayerKernel(layer, dev, arithmetic, payload if k == 0 else 1) for k, layer in enumerate(net.layers)
        ]
        self.state: list[list[torch.Tensor]] = [[] for _ in net.layers]
        self.graded = net.input_neurons or net.graded_input
        self.voltage = net.readout == "voltage"

    def step(self, frames: np.ndarray) -> np.ndarray:
        """Frames ``[C, H, W, n]`` in → the output layer ``[*lava_shape, n]``: spikes, or a voltage readout's voltage."""
        x = np.moveaxis(frames, -1, 0)[:, None]  # [n, 1, C, H, W]
        n = x.shape[0]
        previous = torch.get_num_threads()
        torch.set_num_threads(1)  # many small operations: one thread is fastest (see emulate)
        try:
            with torch.inference_mode():
                s = torch.as_tensor(x.astype(np.float64) if self.graded else x != 0)
                trace = None
                for k, kernel in enumerate(self.kernels):
                    a = kernel.synapse(s.reshape(n, *s.shape[2:]))
                    a = a.reshape(n, 1, *a.shape[1:])
                    if k == len(self.kernels) - 1 and self.voltage:
                        trace = torch.zeros(a.shape, dtype=torch.float64)
                    s = kernel.neurons(a, trace, self.state[k])
        finally:
            torch.set_num_threads(previous)
        out = (trace if trace is not None else s)[:, 0]  # [n, C, H, W] or [n, F]
        out = out.permute(3, 2, 1, 0) if out.ndim == 4 else out.permute(1, 0)  # Lava's (W, H, C) order, steps last
        return out.numpy() if trace is not None else out.numpy().astype(np.uint8)
