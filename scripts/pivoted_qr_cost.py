"""The cost of pivoted QR in torch, which has none of its own (docs/qr.md, Cost):
`qr_pivoted` (LAPACK geqp3 + orgqr through SciPy on a host copy, then the rules) against
torch.linalg.qr (geqrf + orgqr), forward and forward + backward, best of a few runs.

    PYTHONPATH=. .venv/bin/python scripts/pivoted_qr_cost.py
"""
import time

import scipy.linalg
import torch

import generated.torch as fr


def best(f, repeats=5):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def main():
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float64, ms")
    for m, n in [(2048, 512), (4096, 256), (200000, 32)]:
        a = torch.randn(m, n, dtype=torch.float64)
        pivoted = best(lambda: fr.qr_pivoted(a))
        geqp3 = best(lambda: scipy.linalg.qr(a.numpy(), mode="economic", pivoting=True))
        plain = best(lambda: torch.linalg.qr(a))
        x = a.clone().requires_grad_(True)

        def both(op):
            q, r = op(x)[:2]
            (q.sum() + r.sum()).backward()
        pivoted_both = best(lambda: both(fr.qr_pivoted), 3)
        plain_both = best(lambda: both(torch.linalg.qr), 3)
        print(f"{m} x {n}: forward qr_pivoted {pivoted:.1f} (scipy geqp3 + orgqr alone "
              f"{geqp3:.1f}), torch.linalg.qr {plain:.1f}, ratio {pivoted / plain:.2f}; "
              f"forward + backward {pivoted_both:.1f} vs {plain_both:.1f}")


if __name__ == "__main__":
    main()
