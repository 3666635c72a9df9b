"""Benchmarks: each line prints hypertui's figure, a bare PyTorch figure measured in the same
run, and their ratio. Absolute times on a shared machine are noise; ratios are the result.

    python -m bench            # every benchmark
    python -m bench overhead   # one of them
"""
