"""Run an exported NIR graph in the field's own simulators, Norse and snnTorch, as a user would.

Both clients import the graph with their own ``from_nir``/``import_from_nir``; what they get wrong
about this project's graphs is worked around here, and only here, each for a stated reason:

- Batched input: both build NIR's ``Flatten(start_dim=0)`` as ``torch.nn.Flatten(0)``, which folds
  the batch axis into the features. Samples are fed one at a time.
- Norse 1.1 (``norse.torch.from_nir``) reads ``v_leak`` as the resting potential of the synapse as
  well as the membrane (NIR's CubaLIF has no leak in ``I``) and starts both states at ``v_leak``
  (NIR's states start at zero, as Loihi's do). With a bias, :func:`run_norse` zeroes the synapse's
  ``v_leak`` and starts every CubaLIF from zero state.
- snnTorch 1.0 (``snntorch.import_nir.import_from_nir``) integrates at a fixed ``dt = 1e-4``
  (write the file with ``--nir-dt 1e-4``) and refuses any ``v_leak`` (``v_leak not supported``):
  networks with biases do not run in it.
"""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np
import torch

from chipnet.errors import ExportError

SNNTORCH_DT = 1e-4  # hard-coded in snntorch.import_nir


def _graph(graph: nir.NIRGraph | str | Path) -> nir.NIRGraph:
    return graph if isinstance(graph, nir.NIRGraph) else nir.read(str(graph))


def _cuba_nodes(graph: nir.NIRGraph) -> dict[str, nir.CubaLIF]:
    return {name: node for name, node in graph.nodes.items() if isinstance(node, nir.CubaLIF)}


def run_norse(graph: nir.NIRGraph | str | Path, spikes: np.ndarray, dt: float | None = None) -> np.ndarray:
    """Output spikes ``[N, *out, T]`` of ``spikes`` ``[N, C, H, W, T]`` through Norse's import of ``graph``.

    ``dt`` defaults to the step the file was written for (its ``metadata['dt']``).
    """
    import norse.torch as norse
    from nirtorch.graph_executor import GraphExecutorState
    from norse.torch.functional.leaky_integrator_box import LIBoxState
    from norse.torch.functional.lif_box import LIFBoxFeedForwardState
    from norse.torch.utils.import_nir import CubaLIF as NorseCubaLIF

    graph = _graph(graph)
    dt = float(graph.metadata.get("dt", 1e-3)) if dt is None else dt
    model = norse.from_nir(graph, dt=dt)
    cuba = _cuba_nodes(graph)
    for name, module in model.named_modules():
        if isinstance(module, NorseCubaLIF):  # NIR's synapse has no leak term
            module.synapse.p = module.synapse.p._replace(v_leak=torch.zeros_like(module.synapse.p.v_leak))
    out = []
    with torch.no_grad():
        for sample in spikes:
            # Zero initial states (Norse's default is v_leak), keyed as nirtorch's executor keys them.
            state = GraphExecutorState()
            for name, node in cuba.items():
                zeros = torch.zeros(node.v_threshold.shape)
                state.state[name] = ((LIBoxState(v=zeros), LIFBoxFeedForwardState(v=zeros.clone())),)
            steps = []
            for t in range(sample.shape[-1]):
                y, state = model(torch.as_tensor(sample[..., t], dtype=torch.float32), state)
                steps.append(y.numpy())
            out.append(np.stack(steps, -1))
    return np.stack(out).astype(np.uint8)


def run_snntorch(graph: nir.NIRGraph | str | Path, spikes: np.ndarray) -> np.ndarray:
    """Output spikes ``[N, *out, T]`` of ``spikes`` ``[N, C, H, W, T]`` through snnTorch's import of ``graph``."""
    from snntorch import utils
    from snntorch.import_nir import import_from_nir

    graph = _graph(graph)
    dt = float(graph.metadata.get("dt", SNNTORCH_DT))
    if not np.isclose(dt, SNNTORCH_DT, rtol=1e-9, atol=0):
        raise ExportError(
            f"NIR graph written for dt = {dt:g}: snnTorch integrates at {SNNTORCH_DT:g} "
            f"(export with --nir-dt {SNNTORCH_DT:g})"
        )
    model = import_from_nir(graph)
    out = []
    with torch.no_grad():
        for sample in spikes:
            utils.reset(model)  # init_hidden neurons keep their state between calls
            steps = []
            for t in range(sample.shape[-1]):
                y = model(torch.as_tensor(sample[None, ..., t], dtype=torch.float32))
                y = y[0] if isinstance(y, tuple) else y  # the graph module returns (output, state)
                steps.append(y.numpy().reshape(-1))
            out.append(np.stack(steps, -1))
    return np.stack(out).astype(np.uint8)
