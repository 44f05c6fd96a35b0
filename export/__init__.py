"""Export: turn a trained run into what the chip runs (NetX HDF5), and check it."""
