#!/usr/bin/env bash
# Check the CuPy backend on a machine with a CUDA GPU, in one command:
#   scripts/gpu_check.sh [extra pytest arguments]
# runs the generated CuPy backend on the GPU against the NumPy reference backend and PyTorch's
# autograd (on CUDA when this torch has it), plus the kernel checks (NVRTC, host execution).
# Exits non-zero when no CUDA device is usable, since the GPU tests would only be skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=.venv/bin/python

"$PYTHON" - <<'PY'
import sys
import cupy
try:
    count = cupy.cuda.runtime.getDeviceCount()
except RuntimeError as error:
    sys.exit(f"gpu_check: no usable CUDA device ({error})")
if count == 0:
    sys.exit("gpu_check: no CUDA device")
props = cupy.cuda.runtime.getDeviceProperties(0)
print(f"gpu_check: {count} device(s); device 0: {props['name'].decode()}, "
      f"CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}, CuPy {cupy.__version__}")
import torch
print(f"gpu_check: torch {torch.__version__}, reference on "
      f"{'cuda' if torch.cuda.is_available() else 'cpu'}")
PY

exec "$PYTHON" -m pytest tests/test_cupy_gpu.py tests/test_cupy_kernels.py -v -rs "$@"
