"""The array module the shared runtime helpers (templates/_runtime_shared.py) compute with in
the PyTorch backend (the few the PyTorch runtime takes from there), and the integer dtype of
row numbers."""
import torch as xp

INDEX_DTYPE = xp.int64

__all__ = ["INDEX_DTYPE", "xp"]
