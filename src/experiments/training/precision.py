"""``trainer.precision=auto``: bfloat16 only where it pays on this machine, by measurement.

What bfloat16 is worth depends on the CPU. With AMX-BF16 (Intel Xeon, Sapphire Rapids on)
its matrix units halve the default network's training time; with AVX512-BF16 alone (AMD
EPYC, Zen 4 on) the gain is small and depends on the model; without either, bfloat16 is
emulated and slower. So ``auto`` decides:

- a GPU: ``mixed_float16`` from compute capability 7.0 (tensor cores), else ``float32``;
- AMX-BF16: ``mixed_bfloat16``;
- neither AMX-BF16 nor AVX512-BF16: ``float32``;
- AVX512-BF16 without AMX: a micro-benchmark of a few training steps of the run's own
  model in both policies; ``mixed_bfloat16`` only when it is at least ``PAYS`` faster.
  The result is cached per machine, TensorFlow version, model, batch and thread count in
  ``$XDG_CACHE_HOME/experiments/precision.json`` (``~/.cache`` by default), so only the
  first run pays for it: a few seconds for the default network, about a minute for a
  large application at 150 px. Jobs of a sweep that start together take turns (a file
  lock): the first measures, the others read its result, so they all train alike.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from experiments import cpus

log = logging.getLogger(__name__)

AUTO = "auto"
PAYS = 0.10  # bfloat16 must cut the step time by at least 10%
WARMUP_STEPS, TIMED_STEPS = 3, 10
CPU_FEATURES = ("amx_bf16", "avx512_bf16", "avx512f")


@dataclass(frozen=True)
class Choice:
    policy: str  # a Keras dtype policy
    reason: str  # one line: why, for the log and the run's params

    def params(self) -> dict[str, str]:
        return {"runtime.precision": self.policy, "runtime.precision_reason": self.reason}


def cpu() -> tuple[str, frozenset[str]]:
    """This CPU's model name and which of ``CPU_FEATURES`` it has (Linux' /proc/cpuinfo)."""
    name, flags = "unknown CPU", set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return name, frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and name == "unknown CPU":
            name = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    return name, frozenset(flags & set(CPU_FEATURES))


def describe_cpu() -> str:
    """``AMD EPYC (AVX512-BF16, AVX512F; no AMX-BF16)``: the model and the features that matter."""
    name, flags = cpu()
    has = ", ".join(f.upper().replace("_", "-") for f in CPU_FEATURES if f in flags)
    lacks = ", ".join(f.upper().replace("_", "-") for f in CPU_FEATURES if f not in flags)
    if not has:
        return f"{name} (none of {lacks})"
    return f"{name} ({has}; no {lacks})" if lacks else f"{name} ({has})"


def resolve(
    policy: str, build: Callable[[], object], input_shape, batch_size: int, key: str
) -> Choice:
    """The policy to train with: ``policy`` itself unless it is ``auto``.

    ``build()`` makes the run's model (randomly initialised) under the current global
    policy; it is called only when a benchmark is needed. ``key`` names the model (backbone
    and input shape) in the cache.
    """
    if policy != AUTO:
        return Choice(policy, "set by trainer.precision")
    gpu = _gpu_choice()
    if gpu is not None:
        return gpu
    name, flags = cpu()
    if "amx_bf16" in flags:
        return Choice("mixed_bfloat16", f"auto: {name} has AMX-BF16 matrix units")
    if "avx512_bf16" not in flags:
        why = "has no bfloat16 instructions (AMX-BF16, AVX512-BF16); bfloat16 would be emulated"
        return Choice("float32", f"auto: {name} {why}")
    return _measured(name, flags, build, input_shape, batch_size, key)


def apply(policy: str) -> None:
    """Keras' global dtype policy for the models built next."""
    import keras

    keras.mixed_precision.set_global_policy(policy)


def _gpu_choice() -> Choice | None:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    details = tf.config.experimental.get_device_details(gpus[0])
    capability = details.get("compute_capability") or (0, 0)
    label = details.get("device_name", "GPU")
    if tuple(capability) >= (7, 0):
        version = f"{capability[0]}.{capability[1]}"
        return Choice(
            "mixed_float16", f"auto: {label} (compute capability {version}) has tensor cores"
        )
    return Choice("float32", f"auto: {label} has no tensor cores")


def _measured(name, flags, build, input_shape, batch_size: int, key: str) -> Choice:
    times, how = _cached_times(name, flags, build, input_shape, batch_size, key)
    gain = 1 - times["mixed_bfloat16"] / times["float32"]
    policy = "mixed_bfloat16" if gain >= PAYS else "float32"
    steps = f"{times['float32']:.1f} ms in float32 and {times['mixed_bfloat16']:.1f} ms in bfloat16"
    return Choice(
        policy,
        f"auto: {name} has AVX512-BF16 but no AMX; a training step took {steps} ({how}), "
        f"and bfloat16 pays from {PAYS:.0%} faster",
    )


def _cached_times(name, flags, build, input_shape, batch_size: int, key: str):
    """Step times by policy and how they were had: from the cache, or measured now."""
    import tensorflow as tf

    threads = tf.config.threading.get_intra_op_parallelism_threads() or cpus.usable()
    parts = [name, ",".join(sorted(flags)), tf.__version__, key, str(batch_size), str(threads)]
    entry = hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
    cache = _cache_file()
    with _turn(cache):
        known = _read(cache)
        if entry in known:
            return known[entry], f"measured earlier, cached in {cache}"
        log.info("trainer.precision=auto: timing a few training steps in float32 and bfloat16")
        policies = ("float32", "mixed_bfloat16")
        times = {p: _step_ms(p, build, input_shape, batch_size) for p in policies}
        _write(cache, {**known, entry: times})
    return times, "measured now"


@contextlib.contextmanager
def _turn(cache: Path):
    """One process at a time measures and writes the cache (nothing, where it cannot lock)."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        handle = open(cache.with_suffix(".lock"), "a")
    except OSError:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _step_ms(policy: str, build, input_shape, batch_size: int) -> float:
    """Median milliseconds of one training step of ``build()``'s model under ``policy``."""
    import keras
    import numpy as np

    apply(policy)
    try:
        model = build()
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (batch_size, *input_shape)).astype("float32")
        y = rng.integers(0, model.output_shape[-1], batch_size)
        times = []
        for step in range(WARMUP_STEPS + TIMED_STEPS):
            started = time.perf_counter()
            model.train_on_batch(x, y)
            if step >= WARMUP_STEPS:
                times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)
    finally:
        keras.backend.clear_session()  # the run's model starts from a clean slate
        apply("float32")


def _cache_file() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "experiments" / "precision.json"


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write(path: Path, values: dict) -> None:
    """Atomically: parallel jobs of a sweep may write at once; each file is whole."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(values, indent=1))
        partial.replace(path)
    except OSError as exc:  # a read-only home: measure again next time
        log.warning("trainer.precision=auto: could not cache the measurement in %s: %s", path, exc)
