"""Calibration: ECE, NLL, Brier score and temperature scaling, on known and simulated cases."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.reporting import calibration


def simulated(n: int, temperature: float, seed: int = 0):
    """Calibrated probabilities whose log-probabilities were divided by ``temperature``
    (< 1: too sharp, overconfident), and labels drawn from the calibrated ones."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.5, (n, 5))
    true = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(5, p=p) for p in true])
    shown = calibration.scaled(true, temperature)
    return shown, labels


def test_known_values():
    probs = np.array([[0.9, 0.1], [0.6, 0.4]])
    labels = np.array([0, 1])
    # 0.9 right (gap 0.1) and 0.6 wrong (gap 0.6), each half of the images.
    assert calibration.ece(probs, labels) == pytest.approx(0.35)
    assert calibration.brier(np.array([[1.0, 0.0], [0.5, 0.5]]), np.array([0, 0])) == 0.25
    assert calibration.nll(probs, labels) == pytest.approx(-(np.log(0.9) + np.log(0.4)) / 2)


def test_a_calibrated_model_has_a_small_ece_and_temperature_one():
    probs, labels = simulated(20_000, 1.0)
    assert calibration.ece(probs, labels) < 0.02
    assert calibration.fit_temperature(probs, labels) == pytest.approx(1.0, abs=0.05)


def test_temperature_scaling_fixes_an_overconfident_model_without_changing_its_answers():
    probs, labels = simulated(20_000, 0.5)  # twice too sharp
    assert calibration.ece(probs, labels) > 0.05
    fitted = calibration.fit_temperature(probs[:10_000], labels[:10_000])  # "validation"
    assert fitted == pytest.approx(2.0, rel=0.1)
    test, test_labels = probs[10_000:], labels[10_000:]
    calibrated = calibration.scaled(test, fitted)
    assert calibration.ece(calibrated, test_labels) < calibration.ece(test, test_labels) / 3
    assert calibration.nll(calibrated, test_labels) < calibration.nll(test, test_labels)
    assert (calibrated.argmax(axis=1) == test.argmax(axis=1)).all()
    assert np.allclose(calibrated.sum(axis=1), 1.0)


def test_nll_is_the_loss_keras_reports():
    import keras

    probs, labels = simulated(500, 1.0)
    expected = float(keras.losses.sparse_categorical_crossentropy(labels, probs).numpy().mean())
    assert calibration.nll(probs.astype(np.float32), labels) == pytest.approx(expected, rel=1e-5)
