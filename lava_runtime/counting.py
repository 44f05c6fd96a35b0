"""What a run costs, counted exactly: spikes, synaptic operations and neuron updates per layer.

A *synapse* is a nonzero weight of the matrix Lava's synapse process holds (zero weights need
no synaptic operation). A presynaptic neuron's *fan-out* into a layer is how many synapses it
drives there; a *synaptic operation* (synop) is one presynaptic spike delivered over one
synapse, so a layer's synops are ``Σ spikes × fan-out`` over the neurons that feed it, computed
neuron by neuron (a conv's border neurons drive fewer synapses than its inner ones). A *neuron
update* is one neuron advanced by one timestep; every neuron updates every step.

:class:`~lava_runtime.processes.activity.ActivityCounter` is the per-layer sink that counts a
layer's output spikes and the synops they cause in the next layer, per timestep, during the run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chipnet.netmodel import ConvLayer, InputLayer, Layer


@dataclass
class Topology:
    """The synapses of one layer: what each presynaptic neuron drives and how many there are.

    ``fanout`` has the *presynaptic* layer's Lava shape (``(W, H, C)`` or ``(N,)``): entry ``j``
    is the number of nonzero weights from presynaptic neuron ``j`` into this layer.
    ``params`` and ``nonzero_params`` count the entries of the weight tensor (a conv kernel
    once, not once per position), for connection sparsity and memory footprint.
    """

    kind: str  # "conv" or "dense"
    fanout: np.ndarray
    synapses: int
    params: int
    nonzero_params: int

    def __post_init__(self) -> None:
        if int(self.fanout.sum()) != self.synapses:
            raise ValueError(f"{self.kind}: fan-outs sum to {int(self.fanout.sum())}, not {self.synapses} synapses")


def conv_fanout(
    weight: np.ndarray,
    input_shape: tuple[int, int, int],
    stride: np.ndarray,
    padding: np.ndarray,
    dilation: np.ndarray,
    groups: int,
) -> np.ndarray:
    """Fan-out ``(W, H, Cin)`` of every input neuron of a Lava conv synapse (weight ``[Cout, kx, ky, Cin]``).

    The conv is linear in its input, so with a 0/1 mask of the nonzero weights as the kernel the
    gradient of the summed output with respect to each input is exactly the number of output
    neurons it reaches. The layouts follow ``lava.proc.conv.utils.conv`` (a true convolution).
    """
    import torch  # here, not at the top: reading reports (``compare``) must not load torch
    import torch.nn.functional as F

    mask = (np.asarray(weight) != 0)[:, ::-1, ::-1].transpose(0, 3, 2, 1).astype(np.float64)  # Cout, Cin, ky, kx
    w, h, c = input_shape
    x = torch.ones((1, c, h, w), dtype=torch.float64, requires_grad=True)
    y = F.conv2d(
        x,
        torch.from_numpy(mask.copy()),
        stride=tuple(int(v) for v in stride[::-1]),
        padding=tuple(int(v) for v in padding[::-1]),
        dilation=tuple(int(v) for v in dilation[::-1]),
        groups=int(groups),
    )
    y.sum().backward()
    return np.rint(x.grad[0].numpy()).astype(np.int64).transpose(2, 1, 0)


def dense_fanout(weights: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    """Fan-out of every input neuron of a Lava dense synapse (weights ``[out, in]``), in ``input_shape``.

    NetX feeds a dense layer after a ``(W, H, C)`` layer through ``transpose([2, 1, 0]).flatten()``,
    so input ``j`` of the dense layer is neuron ``(x, y, c)`` in C-major order.
    """
    per_input = np.count_nonzero(np.asarray(weights), axis=0).astype(np.int64)
    if len(input_shape) == 3:
        w, h, c = input_shape
        return per_input.reshape(c, h, w).transpose(2, 1, 0)
    return per_input.reshape(input_shape)


def synops_from_spikes(spikes: np.ndarray, fanout: np.ndarray) -> np.ndarray:
    """Synops per sample and step ``[N, T]`` caused by ``spikes`` ``[N, *shape, T]`` of neurons with ``fanout``."""
    n, t = spikes.shape[0], spikes.shape[-1]
    return np.einsum("nit,i->nt", (spikes.reshape(n, -1, t) != 0).astype(np.int64), fanout.reshape(-1).astype(np.int64))


def topology(layer: Layer) -> Topology:
    """The synapses into ``layer`` as the runtime's counting sees them in the Lava graph."""
    if isinstance(layer, InputLayer):  # payloads reach the neurons directly: no synapses
        fanout = np.zeros(layer.lava_shape, np.int64)
        return Topology("input", fanout, 0, 0, 0)
    if isinstance(layer, ConvLayer):
        # NetX hands Lava the kernel flipped and as [Cout, kx, ky, Cin]; conv_fanout expects that.
        weight = layer.weight[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)
        fanout = conv_fanout(
            weight,
            tuple(layer.input_shape[::-1]),
            np.array(layer.stride[::-1]),
            np.array(layer.padding[::-1]),
            np.array(layer.dilation[::-1]),
            layer.groups,
        )
        return Topology("conv", fanout, int(fanout.sum()), int(weight.size), int(np.count_nonzero(weight)))
    weight = layer.file_weight if layer.file_weight is not None else layer.weight
    fanout = dense_fanout(weight, tuple(layer.input_shape[::-1]))
    return Topology("dense", fanout, int(fanout.sum()), int(weight.size), int(np.count_nonzero(weight)))
