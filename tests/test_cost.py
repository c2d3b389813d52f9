"""What a model costs: multiply-adds counted exactly, the latency protocol's figures."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from experiments.training import cost


def test_multiply_adds_are_counted_from_the_layers_shapes():
    import keras

    small = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(8, 3),  # 26 x 26 positions x 8 filters x 3 x 3 x 1
            keras.layers.SeparableConv2D(4, 3),  # 24 x 24 x (8 x 9 depthwise + 8 x 4 pointwise)
            keras.layers.Flatten(),
            keras.layers.Dense(10),  # 2,304 x 10
        ]
    )
    assert cost.macs(small) == 26 * 26 * 8 * 9 + 24 * 24 * (8 * 9 + 8 * 4) + 24 * 24 * 4 * 10


@pytest.mark.slow  # builds MobileNet at 224 px
def test_multiply_adds_match_the_published_count_through_a_nested_model():
    import keras

    # The published count, through a nested application model: MobileNet at 224 px has
    # 569 million multiply-adds (Howard et al. 2017, table 8).
    base = keras.applications.MobileNet(weights=None, input_shape=(224, 224, 3))
    inputs = keras.Input((224, 224, 3))
    wrapped = keras.Model(inputs, base(keras.layers.Rescaling(1 / 255)(inputs)))
    assert cost.macs(wrapped) / 1e6 == pytest.approx(569, rel=0.002)


def test_the_latency_protocol_reports_a_median_inside_its_quartiles():
    import keras

    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(3)]
    )
    protocol = OmegaConf.create(
        {"warmup_calls": 1, "latency_calls": 7, "throughput_batch": 4, "throughput_seconds": 0.0}
    )
    found = cost.timings(model, protocol)
    assert 0 < found["latency_ms_q1"] <= found["latency_ms"] <= found["latency_ms_q3"]
    assert found["throughput_ips"] > 0


def test_size_is_what_serving_needs_whatever_the_optimizer_holds():
    import keras
    import numpy as np

    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(300)]
    )
    before = cost.size_mb(model)
    assert (64 + 1) * 300 * 4 / 1e6 < before < 0.085  # float32 weights and biases, the JSON
    model.compile("adam", "mse")
    model.fit(np.zeros((4, 8, 8, 1)), np.zeros((4, 300)), verbose=0)  # Adam: two moments each
    assert cost.size_mb(model) == pytest.approx(before, rel=0.01)
