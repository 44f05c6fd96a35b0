"""Lava processes of our own (the stock ones come from lava and lava-dl)."""
