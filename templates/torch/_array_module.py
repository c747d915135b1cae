"""The array module the shared runtime helpers (templates/_runtime_shared.py) compute with in
the PyTorch backend (the few the PyTorch runtime takes from there), and the integer dtype of
row numbers."""
import torch as xp

INDEX_DTYPE = xp.int64

DOT_OPTIONS = {}  # keywords of matmul and einsum: none
UNSUPPORTED_DTYPE = TypeError  # (torch.linalg raises RuntimeError; a TypeError says more)


def inexact_dtype(dtype):
    """torch.linalg takes no integer tensors: not reached (torch's _check_input)."""
    raise TypeError(f"no inexact dtype for {dtype}")


__all__ = ["DOT_OPTIONS", "INDEX_DTYPE", "UNSUPPORTED_DTYPE", "inexact_dtype", "xp"]
