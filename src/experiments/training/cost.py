"""What a trained model costs to run: parameters, file size, FLOPs, latency and throughput.

The protocol, the same for every run (``conf/cost/default.yaml`` holds its numbers):

- the model as trained (its precision policy, the run's TensorFlow threads), called as a
  compiled ``tf.function`` on random images of its input size, each result read back;
- latency: ``warmup_calls`` calls at batch 1, then ``latency_calls`` timed ones, reported
  as their median and interquartile range in milliseconds;
- throughput: one warm-up call at batch ``throughput_batch``, then timed calls until at
  least 3 calls and ``throughput_seconds`` have passed, in images per second;
- FLOPs per image: TensorFlow's profiler on the frozen graph at batch 1, where one
  multiply-add counts as two floating-point operations;
- size: the ``.keras`` file the run logs, in MB (10^6 bytes).

A latency means nothing without its machine: the CPU, the thread count and the precision
are tags of the run.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from experiments.training import precision

log = logging.getLogger(__name__)


def measure(model, cfg_cost, threads: int, policy: str) -> tuple[dict, dict]:
    """The run's cost metrics and the tags that say where they were measured."""
    metrics = {"size_mb": _size_mb(model)}
    flops = _flops(model)
    if flops is not None:
        metrics["flops"] = flops
    metrics.update(timings(model, cfg_cost))
    tags = {"cost.cpu": precision.describe_cpu(), "cost.threads": str(threads)}
    tags["cost.precision"] = policy
    return metrics, tags


def timings(model, cfg_cost) -> dict[str, float]:
    """Latency at batch 1 (median, quartiles) and throughput at ``throughput_batch``."""
    import tensorflow as tf

    if tf.distribute.has_strategy():  # a replica's call is not what serving one image costs
        return {}
    forward = tf.function(lambda x: model(x, training=False))
    shape = tuple(model.input_shape[1:])
    rng = np.random.default_rng(0)
    one = tf.constant(rng.uniform(0, 255, (1, *shape)).astype(np.float32))
    for _ in range(cfg_cost.warmup_calls):
        forward(one).numpy()
    seconds = []
    for _ in range(cfg_cost.latency_calls):
        begun = time.perf_counter()
        forward(one).numpy()
        seconds.append(time.perf_counter() - begun)
    q1, median, q3 = np.percentile(np.asarray(seconds) * 1000, [25, 50, 75])
    batch = tf.constant(rng.uniform(0, 255, (cfg_cost.throughput_batch, *shape)).astype("float32"))
    forward(batch).numpy()
    calls, begun = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - begun < cfg_cost.throughput_seconds:
        forward(batch).numpy()
        calls += 1
    throughput = calls * cfg_cost.throughput_batch / (time.perf_counter() - begun)
    return {
        "latency_ms": float(median),
        "latency_ms_q1": float(q1),
        "latency_ms_q3": float(q3),
        "throughput_ips": float(throughput),
    }


def _size_mb(model) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        model.save(path)
        return path.stat().st_size / 1e6


def _flops(model) -> int | None:
    """Floating-point operations of one image's forward pass; None if TensorFlow cannot say."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2_as_graph,
    )

    profiler = tf.compat.v1.profiler
    spec = tf.TensorSpec((1, *model.input_shape[1:]), tf.float32)
    tf_log = logging.getLogger("tensorflow")
    level = tf_log.level
    tf_log.setLevel(logging.ERROR)  # the profiler's v1 deprecation notes
    try:
        concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
        _, graph_def = convert_variables_to_constants_v2_as_graph(concrete)
        with tf.Graph().as_default() as graph:
            tf.graph_util.import_graph_def(graph_def, name="")
            options = profiler.ProfileOptionBuilder(
                profiler.ProfileOptionBuilder.float_operation()
            ).with_empty_output()
            info = profiler.profile(
                graph=graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op", options=options.build()
            )
        return int(info.total_float_ops)
    except Exception as exc:  # noqa: BLE001  a cost is a nice-to-have; the run is not
        log.warning("FLOPs not counted: %s", str(exc).splitlines()[0] if str(exc) else exc)
        return None
    finally:
        tf_log.setLevel(level)
