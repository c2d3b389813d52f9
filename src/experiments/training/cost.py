"""What a trained model costs to run: parameters, file size, multiply-adds, latency, throughput.

The protocol, the same for every run (``conf/cost/default.yaml`` holds its numbers):

- the model as trained (its precision policy, the run's TensorFlow threads), called as a
  compiled ``tf.function`` on random images of its input size, each result read back;
- latency: ``warmup_calls`` calls at batch 1, then ``latency_calls`` timed ones, reported
  as their median and interquartile range in milliseconds;
- throughput: one warm-up call at batch ``throughput_batch``, then timed calls until at
  least 3 calls and ``throughput_seconds`` have passed, in images per second;
- multiply-adds per image (MACs): counted from the shapes of the convolution and dense
  layers, which hold nearly all of a CNN's arithmetic (twice this is its FLOPs);
- size: the weights as stored and the architecture, without the optimizer's state, in MB
  (10^6 bytes): what serving the model needs.

A latency means nothing without its machine: the CPU, the thread count and the precision
are tags of the run.
"""

from __future__ import annotations

import time

import numpy as np

from experiments.training import precision


def measure(model, cfg_cost, threads: int, policy: str) -> tuple[dict, dict]:
    """The run's cost metrics and the tags that say where they were measured."""
    metrics = {"size_mb": size_mb(model), "macs": macs(model)}
    metrics.update(timings(model, cfg_cost))
    tags = {
        "cost.cpu": precision.describe_cpu(),
        "cost.threads": str(threads),
        "cost.precision": policy,
    }
    return metrics, tags


def timings(model, cfg_cost) -> dict[str, float]:
    """Latency at batch 1 (median, quartiles) and throughput at ``throughput_batch``."""
    import tensorflow as tf

    if tf.distribute.has_strategy():  # a replica's call is not what serving one image costs
        return {}
    forward = tf.function(lambda x: model(x, training=False))
    one, many = _images(tuple(model.input_shape[1:]), cfg_cost.throughput_batch)
    return timed(lambda x: forward(x).numpy(), tf.constant(one), tf.constant(many), cfg_cost)


def runner_timings(run, shape: tuple[int, ...], cfg_cost) -> dict[str, float]:
    """The same protocol for any runtime (an exported file's): ``run`` takes float32 arrays."""
    return timed(run, *_images(shape, cfg_cost.throughput_batch), cfg_cost)


def _images(shape: tuple[int, ...], batch: int) -> tuple[np.ndarray, np.ndarray]:
    """One random image, then a batch of them: the protocol's fixed inputs."""
    rng = np.random.default_rng(0)
    one = rng.uniform(0, 255, (1, *shape)).astype(np.float32)
    return one, rng.uniform(0, 255, (batch, *shape)).astype(np.float32)


def timed(run, one, many, cfg_cost) -> dict[str, float]:
    """``run`` timed on ``one`` image (latency) and on ``many`` (throughput), each result read."""
    for _ in range(cfg_cost.warmup_calls):
        run(one)
    seconds = []
    for _ in range(cfg_cost.latency_calls):
        begun = time.perf_counter()
        run(one)
        seconds.append(time.perf_counter() - begun)
    q1, median, q3 = np.percentile(np.asarray(seconds) * 1000, [25, 50, 75])
    run(many)
    calls, begun = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - begun < cfg_cost.throughput_seconds:
        run(many)
        calls += 1
    throughput = calls * len(many) / (time.perf_counter() - begun)
    return {
        "latency_ms": float(median),
        "latency_ms_q1": float(q1),
        "latency_ms_q3": float(q3),
        "throughput_ips": float(throughput),
    }


def size_mb(model) -> float:
    """What shipping the model takes: its weights as stored and its architecture, in MB.

    Keras' files of a trained model also hold the optimizer's state (twice the trainable
    weights for Adam), which a served model never needs: a fine-tuned network would
    otherwise read three times the size of the same network trained as a head.
    """
    weights = sum(int(np.prod(w.shape)) * np.dtype(w.dtype).itemsize for w in model.weights)
    return (weights + len(model.to_json().encode())) / 1e6


def macs(model) -> int:
    """Multiply-adds of one image's forward pass through the convolution and dense layers,
    counted from their shapes (nested models included); other layers add a few percent."""
    return sum(_layer_macs(layer) for layer in _leaves(model))


def _leaves(layer):
    inner = getattr(layer, "layers", None)
    if not inner:
        yield layer
        return
    for child in inner:
        yield from _leaves(child)


def _layer_macs(layer) -> int:
    import keras

    try:
        inputs, outputs = layer.input.shape, layer.output.shape
    except (AttributeError, ValueError):  # not called in a graph: nothing to count
        return 0
    per_position = int(np.prod(outputs[1:-1]))  # output positions (1 for a flat Dense)
    if isinstance(layer, keras.layers.SeparableConv2D):
        kh, kw = layer.kernel_size
        channels = inputs[-1] * layer.depth_multiplier  # after the depthwise step
        return per_position * channels * (kh * kw + outputs[-1])
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        return per_position * outputs[-1] * kh * kw
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw = layer.kernel_size
        return per_position * outputs[-1] * kh * kw * inputs[-1] // layer.groups
    if isinstance(layer, keras.layers.Dense):
        return per_position * inputs[-1] * outputs[-1]
    return 0
