"""Training: event datasets, SLAYER models with SMA/AZO, the training loop."""
