"""A batched torch emulator of the deployed network's integer arithmetic (``--backend emu``).

It computes what the Lava fixed-point simulator computes (``PyLifResetModelBitAcc`` neurons,
``PyConvModelFixed`` and ``PyDenseModelBitAcc`` synapses, NetX's weight handling, the gains of
docs/netx-format.md), spike for spike, but for a whole batch of samples at once. With
``arithmetic="float"`` (``--backend emu-float``) it computes what Lava's floating-point models
compute on the same network in float units (:mod:`lava_runtime.float_units`, ``sim-float``).

Why whole samples can be batched although Lava streams them back to back: layer ``k`` is
reset when the first step of a sample reaches it (window step ``k + 1``), and from then on
until the next reset it only sees that sample. So each sample is run from zero state for ``T``
steps per layer, layer ``k`` covering window steps ``k + 1 .. T + k``; the steps past ``T - 1``
are what Lava shows as the next sample's tail (``tail_spikes``), counted only where a next
sample exists, as in :func:`lava_runtime.simulate.run_layers`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lava_runtime.counting import Topology, conv_fanout, dense_fanout, synops_from_spikes
from lava_runtime.errors import RuntimeConfigError
from lava_runtime.netfile import STATE_BITS, ConvLayer, DenseLayer, Layer, NetFile, read_net
from lava_runtime.simulate import LayerRecord

_HALF = 1 << (STATE_BITS - 1)  # 2**23
_ACT_SHIFT = 6  # Loihi MSB-aligns synaptic input and thresholds by 6 bits


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

    def __init__(self, layer: Layer, device: torch.device, arithmetic: str = "fixed") -> None:
        self.layer = layer
        self.float = arithmetic == "float"
        bound = int(np.abs(layer.weight).reshape(layer.weight.shape[0], -1).sum(1).max(initial=0))
        # Integer sums stay exact in float32 below 2**24; float64 beyond (and on CUDA, where
        # TF32 and FFT algorithms could round).
        exact32 = bound < (1 << 24) and device.type == "cpu"
        self.dtype = torch.float32 if exact32 else torch.float64
        self.weight = torch.as_tensor(layer.weight, dtype=self.dtype, device=device)
        self.wrap24 = isinstance(layer, ConvLayer) and bound >= _HALF  # else the conv sum cannot wrap
        # Lava adds ``a_in << 6`` to u in int32; only huge dense fan-ins can overflow that.
        # (Gain layers compute in int64, as the gain neuron process does.)
        self.wrap32 = layer.gain is None and (bound << _ACT_SHIFT) + _HALF >= (1 << 31)
        n = layer.neuron
        self.u_keep = (4096 - n.i_decay) / 4096  # exact binary fractions
        self.v_keep = (4096 - n.v_decay) / 4096
        self.vth = float(n.vth_mant << _ACT_SHIFT)
        extra = (1,) * (len(layer.shape) - 1)  # broadcast per channel over H, W
        self.bias = None
        if layer.bias is not None and np.any(layer.bias):
            self.bias = torch.as_tensor(layer.bias << _ACT_SHIFT, dtype=torch.float64, device=device).reshape(-1, *extra)
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
                self.weight = self.weight * 2.0 ** layer.weight_exp
            self.u_keep = 1 - n.i_decay / 4096
            self.v_keep = 1 - n.v_decay / 4096
            self.vth = float(n.vth_mant)
            if self.bias is not None:
                self.bias = self.bias / float(1 << _ACT_SHIFT)

    def synapse(self, s: torch.Tensor) -> torch.Tensor:
        """Synaptic input (integers in float64) for spikes ``s`` ``[M, *input_shape]`` (M = steps × samples)."""
        layer = self.layer
        x = s.to(self.dtype)
        if isinstance(layer, ConvLayer):
            with torch.backends.cudnn.flags(enabled=False):  # no FFT/Winograd: sums must stay exact
                a = F.conv2d(x, self.weight, stride=layer.stride, padding=layer.padding,
                             dilation=layer.dilation, groups=layer.groups)
            if self.float:  # PyConvModelFloat: the plain sum (exact: binary spikes, integer weights)
                return a
            a = torch.round(a).to(torch.float64)
            return _wrap(a, STATE_BITS) if self.wrap24 else a  # PyConvModelFixed's signed_clamp
        if self.float:  # PyDenseModelFloat: the plain sum (exact: binary spikes, dyadic weights)
            return x.reshape(x.shape[0], -1) @ self.weight.T
        a = torch.round(x.reshape(x.shape[0], -1) @ self.weight.T).to(torch.float64)
        # PyDenseModelBitAcc: arithmetic right shift by the shared exponent (floor for negative sums).
        return torch.floor(a / float(1 << -layer.weight_exp))

    def neurons(self, a: torch.Tensor, first_step: int, period: int) -> torch.Tensor:
        """CUBA dynamics over ``a`` ``[T, B, *shape]`` from zero state; window steps start at ``first_step``."""
        if self.float:
            return self._float_neurons(a, first_step, period)
        u = torch.zeros_like(a[0])
        v = torch.zeros_like(a[0])
        out = torch.empty(a.shape, dtype=torch.bool, device=a.device)
        for t in range(a.shape[0]):
            x = a[t] * float(1 << _ACT_SHIFT)
            if self.wrap32:
                x = _wrap(x, 32)
            if self.gain is not None:  # sign(x)·((|x|·mant) >> exp) is a truncation toward zero
                x = torch.trunc(x * self.gain[(first_step + t - 1) % period])
            u = torch.trunc(u.mul_(self.u_keep)).add_(x)  # decay rounds toward zero, like Loihi's shift
            if self.wrap32:
                u = _wrap(u, 32)
            if float(u.abs().max()) >= _HALF:  # Lava's single 24-bit wrap: above 2**23 down, at or below -2**23 up
                u = torch.where(u > _HALF, u - 2 * _HALF, torch.where(u <= -_HALF, u + 2 * _HALF, u))
            v = torch.trunc(v.mul_(self.v_keep)).add_(u)
            if self.bias is not None:
                v.add_(self.bias)
            v.clamp_(-_HALF + 1, _HALF - 1)
            s = v > self.vth
            v.masked_fill_(s, 0.0)
            out[t] = s
        return out

    def _float_neurons(self, a: torch.Tensor, first_step: int, period: int) -> torch.Tensor:
        """``PyLifResetModelFloat`` (and the float gain model), operation for operation."""
        u = torch.zeros_like(a[0])
        v = torch.zeros_like(a[0])
        out = torch.empty(a.shape, dtype=torch.bool, device=a.device)
        for t in range(a.shape[0]):
            x = a[t]
            if self.gain is not None:  # x·mant / 2**exp, exact in float64 either way round
                x = x * self.gain[(first_step + t - 1) % period]
            u = u * self.u_keep + x
            v = v * self.v_keep + u
            if self.bias is not None:
                v = v + self.bias
            s = v > self.vth
            v.masked_fill_(s, 0.0)
            out[t] = s
        return out


def topology(layer: Layer) -> Topology:
    """The synapses into ``layer`` as the runtime's counting sees them in the Lava graph."""
    if isinstance(layer, ConvLayer):
        # NetX hands Lava the kernel flipped and as [Cout, kx, ky, Cin]; conv_fanout expects that.
        weight = layer.weight[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)
        fanout = conv_fanout(weight, tuple(layer.input_shape[::-1]), np.array(layer.stride[::-1]),
                             np.array(layer.padding[::-1]), np.array(layer.dilation[::-1]), layer.groups)
        return Topology("conv", fanout, int(fanout.sum()), int(weight.size), int(np.count_nonzero(weight)))
    weight = layer.file_weight if layer.file_weight is not None else layer.weight
    fanout = dense_fanout(weight, tuple(layer.input_shape[::-1]))
    return Topology("dense", fanout, int(fanout.sum()), int(weight.size), int(np.count_nonzero(weight)))


def _forward(kernels: list[_LayerKernel], x: torch.Tensor) -> list[torch.Tensor]:
    """Spikes ``[T, B, C, H, W]`` → every layer's spikes ``[T, B, *shape]`` over its T steps."""
    t, b = x.shape[:2]
    outs = []
    s = x
    for k, kernel in enumerate(kernels):
        a = kernel.synapse(s.reshape(t * b, *s.shape[2:]))
        s = kernel.neurons(a.reshape(t, b, *a.shape[1:]), first_step=k + 1, period=t)
        outs.append(s)
    return outs


def emulate_local(net: str | Path | NetFile, spikes: np.ndarray, arithmetic: str = "float",
                  threads: int | None = 1) -> list[np.ndarray]:
    """Every layer's spikes ``[N, C, H, W, T]`` or ``[N, C, T]`` over each sample's own T local steps.

    Layer ``k``'s step ``j`` integrates layer ``k-1``'s step ``j`` (no latency, no tail): the timing
    of a NIR graph or a torch model without ``delay_shift``.
    """
    if arithmetic not in ARITHMETIC:
        raise RuntimeConfigError(f"unknown arithmetic {arithmetic!r}; choose one of {', '.join(ARITHMETIC)}")
    net = net if isinstance(net, NetFile) else read_net(net)
    if tuple(spikes.shape[1:-1]) != tuple(net.input_shape):
        raise RuntimeConfigError(f"{net.path}: input samples {list(spikes.shape[1:-1])} do not match the "
                                 f"network input {list(net.input_shape)}")
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        kernels = [_LayerKernel(layer, torch.device("cpu"), arithmetic) for layer in net.layers]
        with torch.inference_mode():
            outs = _forward(kernels, torch.as_tensor(np.moveaxis(spikes, -1, 0) != 0))
        return [np.moveaxis(s.numpy(), 0, -1).astype(np.uint8) for s in outs]
    finally:
        torch.set_num_threads(previous)


def run_layers(
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
    neuron updates are many small operations, and on the shared 2-core machine one thread ran a
    264-sample split in 1.4 s where two took 2.8 to 26 s.
    """
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run_layers(net, spikes, record, device, batch_size, arithmetic)
    finally:
        torch.set_num_threads(previous)


def _run_layers(net: str | Path | NetFile, spikes: np.ndarray, record: str, device: str | torch.device | None,
                batch_size: int, arithmetic: str) -> list[LayerRecord]:
    """:func:`run_layers` with torch's threads already set."""
    if arithmetic not in ARITHMETIC:
        raise RuntimeConfigError(f"unknown arithmetic {arithmetic!r}; choose one of {', '.join(ARITHMETIC)}")
    net = net if isinstance(net, NetFile) else read_net(net)
    n, t = spikes.shape[0], spikes.shape[-1]
    if tuple(spikes.shape[1:-1]) != tuple(net.input_shape):
        raise RuntimeConfigError(f"{net.path}: input samples {list(spikes.shape[1:-1])} do not match the "
                                 f"network input {list(net.input_shape)}")
    if len(net.layers) >= t:
        raise RuntimeConfigError(f"{net.path}: {len(net.layers)} layers need more than T={t} timesteps per sample")
    for layer in net.layers:
        if layer.gain is not None and layer.gain.mant.shape[0] != t:
            raise RuntimeConfigError(f"{net.path}: layer {layer.name} has gains for {layer.gain.mant.shape[0]} "
                                     f"timesteps, the samples have T={t}")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    kernels = [_LayerKernel(layer, dev, arithmetic) for layer in net.layers]
    topos = [topology(layer) for layer in net.layers]
    # Fan-out of each layer's neurons into the next one, in the emulator's [C, H, W] layout.
    fanouts = [torch.as_tensor(np.ascontiguousarray(topo.fanout.transpose(*range(topo.fanout.ndim)[::-1])),
                               dtype=torch.float64, device=dev).reshape(-1) for topo in topos[1:]]
    last = len(net.layers) - 1
    keep = [record == "all" or k == last for k in range(len(net.layers))]
    counts = [np.zeros((n, t), dtype=np.int64) for _ in net.layers]
    ext = [np.zeros((n, k + 1), dtype=np.int64) for k in range(len(net.layers))]  # steps T..T+k
    # synops[k]: into layer k, at the presynaptic step; layer 0's come from the input (no tail).
    synops = [synops_from_spikes(spikes.transpose(0, 3, 2, 1, 4), topos[0].fanout)] + \
        [np.zeros((n, t), dtype=np.int64) for _ in net.layers[1:]]
    ext_synops = [np.zeros((n, k), dtype=np.int64) for k in range(len(net.layers))]
    full = [np.zeros((n, *layer.lava_shape, t), dtype=np.uint8) if keep[k] else None
            for k, layer in enumerate(net.layers)]
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            x = torch.as_tensor(np.moveaxis(spikes[start:stop], -1, 0) != 0, device=dev)
            for k, s in enumerate(_forward(kernels, x)):
                flat = s.reshape(t, stop - start, -1)
                per_step = flat.sum(-1).T.cpu().numpy()  # [B, T] over steps k+1..T+k
                counts[k][start:stop, k + 1:] = per_step[:, : t - k - 1]
                ext[k][start:stop] = per_step[:, t - k - 1:]
                if k < last:  # what these spikes cost in layer k + 1
                    ops = torch.round(flat.to(torch.float64) @ fanouts[k]).to(torch.int64).T.cpu().numpy()
                    synops[k + 1][start:stop, k + 1:] = ops[:, : t - k - 1]
                    ext_synops[k + 1][start:stop] = ops[:, t - k - 1:]
                if keep[k]:
                    window = s[: t - k - 1]  # window steps k+1 .. T-1
                    if window.ndim == 5:  # [T, B, C, H, W] → [B, W, H, C, T], Lava's order
                        window = window.permute(1, 4, 3, 2, 0)
                    else:
                        window = window.permute(1, 2, 0)
                    full[k][start:stop, ..., k + 1:] = window.cpu().numpy()
    records = []
    for k, (name, layer) in enumerate(zip(net.layer_names, net.layers)):
        tail = int(ext[k][:-1].sum())  # sample i's overhang is sample i+1's tail; the last has none
        records.append(LayerRecord(name, tuple(layer.lava_shape), counts[k], tail, full[k], synops=synops[k],
                                   tail_synops=int(ext_synops[k][:-1].sum()), topology=topos[k],
                                   gain=layer.gain is not None))
    return records


@dataclass
class Agreement:
    """How two runs of the same samples agree: whole output spike trains, and the first difference."""

    samples: int
    identical: int  # samples whose output layer spike trains are identical
    first_mismatch: dict[str, Any] | None  # {layer, sample, timestep, neuron} over all recorded layers

    @property
    def fraction(self) -> float:
        """Share of samples with identical output spike trains."""
        return self.identical / self.samples if self.samples else 1.0


def compare_records(a: list[LayerRecord], b: list[LayerRecord]) -> Agreement:
    """Compare two runs' records (``record="all"`` for a mismatch in any layer, else the output only)."""
    if [r.name for r in a] != [r.name for r in b] or [r.shape for r in a] != [r.shape for r in b]:
        raise RuntimeConfigError(f"the runs have different layers: {[r.name for r in a]} vs {[r.name for r in b]}")
    out_a, out_b = a[-1].spikes, b[-1].spikes
    n = out_a.shape[0]
    same = (out_a.reshape(n, -1) == out_b.reshape(n, -1)).all(1)
    first = None
    for ra, rb in zip(a, b):
        if ra.spikes is None or rb.spikes is None:
            continue
        diff = np.argwhere(ra.spikes != rb.spikes)  # rows: sample, *neuron, step
        if len(diff):
            # Earliest in time first: the later differences are usually its consequences.
            sample, *neuron, step = min(diff.tolist(), key=lambda d: (d[0], d[-1]))
            candidate = {"layer": ra.name, "sample": sample, "timestep": step, "neuron": tuple(neuron)}
            if first is None or (sample, step) < (first["sample"], first["timestep"]):
                first = candidate
    return Agreement(n, int(same.sum()), first)
