"""The chip and its file: the base every other package of this project stands on.

Loihi's fixed-point facts (:mod:`chipnet.chip`), the NetX HDF5 file as plain data
(:mod:`chipnet.netmodel`) with its one reader (:mod:`chipnet.netfile`) and its one writer
(:mod:`chipnet.netwriter`), the classification rule every backend shares (:mod:`chipnet.decision`),
and the small helpers every command uses: errors, atomic writes, the CLI wrapper, progress bars.

It imports numpy and h5py only (Lava's weight helpers are loaded lazily, when a dense layer is
read), and nothing of ``train``, ``export`` or ``lava_runtime``: ``tests/test_imports.py`` holds
it to that, so the file format outlives any one training or runtime stack.
"""
