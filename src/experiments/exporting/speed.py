"""Latency and throughput of any runtime, by one protocol (that of ``training/cost.py``).

A runtime is a function from a float32 batch to probabilities. Latency: ``warmup`` calls at
batch 1, then ``calls`` timed ones, their median in milliseconds; throughput: one warm-up
call at ``batch``, then timed calls until at least 3 calls and ``seconds`` have passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def measure(
    run: Callable[[np.ndarray], np.ndarray],
    shape: tuple[int, ...],
    *,
    warmup: int = 10,
    calls: int = 50,
    batch: int = 64,
    seconds: float = 1.0,
) -> dict[str, float]:
    rng = np.random.default_rng(0)
    one = rng.uniform(0, 255, (1, *shape)).astype(np.float32)
    for _ in range(warmup):
        run(one)
    timed = []
    for _ in range(calls):
        begun = time.perf_counter()
        run(one)
        timed.append(time.perf_counter() - begun)
    many = rng.uniform(0, 255, (batch, *shape)).astype(np.float32)
    run(many)
    count, begun = 0, time.perf_counter()
    while count < 3 or time.perf_counter() - begun < seconds:
        run(many)
        count += 1
    return {
        "latency_ms": float(np.median(timed) * 1000),
        "throughput_ips": count * batch / (time.perf_counter() - begun),
    }
