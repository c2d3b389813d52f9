"""``trainer.precision=auto``: bfloat16 where the CPU has it and, without AMX, where it pays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments import models
from experiments.training import precision
from experiments.training.settings import compose

AMX = ("Intel(R) Xeon(R) Processor", frozenset({"amx_bf16", "avx512_bf16", "avx512f"}))
AVX512_BF16 = ("AMD EPYC", frozenset({"avx512_bf16", "avx512f"}))
NEITHER = ("AMD EPYC 7B13", frozenset({"avx512f"}))


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


@pytest.fixture
def no_gpu(monkeypatch, tmp_path):
    monkeypatch.setattr(precision, "_gpu_choice", lambda: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "experiments" / "precision.json"


class Builds:
    """The run's model builder, counting how often the benchmark asked for one."""

    def __init__(self):
        self.calls = 0
        self.cfg = compose()

    def __call__(self):
        self.calls += 1
        return models.build(self.cfg, (28, 28, 1), 10)


def resolve(build, policy="auto"):
    return precision.resolve(policy, build, (28, 28, 1), 32, "compact_cnn|(28, 28, 1)|10")


def test_a_policy_that_is_set_is_used_as_it_is(no_gpu):
    build = Builds()
    chosen = resolve(build, "float32")
    assert (chosen.policy, chosen.reason) == ("float32", "set by trainer.precision")
    assert build.calls == 0


@pytest.mark.parametrize(
    ("machine", "policy", "why"),
    [
        (AMX, "mixed_bfloat16", "has AMX-BF16"),
        (NEITHER, "float32", "no bfloat16 instructions"),
    ],
)
def test_the_cpu_decides_where_its_features_settle_it(no_gpu, monkeypatch, machine, policy, why):
    monkeypatch.setattr(precision, "cpu", lambda: machine)
    build = Builds()
    chosen = resolve(build)
    assert chosen.policy == policy and why in chosen.reason and machine[0] in chosen.reason
    assert build.calls == 0  # nothing to measure
    assert not no_gpu.exists()


@pytest.mark.slow  # times training steps of the real model (6 s of the fast tier)
def test_without_amx_it_measures_once_per_machine_and_model(no_gpu, monkeypatch):
    import keras

    monkeypatch.setattr(precision, "cpu", lambda: AVX512_BF16)
    build = Builds()
    first = resolve(build)
    assert build.calls == 2  # the real model, timed in float32 and in bfloat16
    assert first.policy in ("float32", "mixed_bfloat16") and "measured now" in first.reason
    assert keras.mixed_precision.global_policy().name == "float32"  # left as it was found
    cached = json.loads(no_gpu.read_text())
    (times,) = cached.values()
    assert set(times) == {"float32", "mixed_bfloat16"} and min(times.values()) > 0

    again = resolve(build)
    assert build.calls == 2 and again.policy == first.policy and "cached in" in again.reason
    # Another model is another entry (timed by a stand-in: the real timing is checked above);
    # the rule reads the times: 5% faster does not pay.
    monkeypatch.setattr(precision, "_step_ms", lambda policy, build, *args: (build(), 10.0)[1])
    precision.resolve("auto", build, (28, 28, 1), 64, "compact_cnn|(28, 28, 1)|10")
    assert build.calls == 4 and len(json.loads(no_gpu.read_text())) == 2
    entry = next(iter(cached))
    no_gpu.write_text(json.dumps({entry: {"float32": 20.0, "mixed_bfloat16": 19.0}}))
    assert resolve(build).policy == "float32"
    no_gpu.write_text(json.dumps({entry: {"float32": 20.0, "mixed_bfloat16": 12.0}}))
    assert resolve(build).policy == "mixed_bfloat16"


def test_the_cpu_is_named_with_the_features_that_matter(monkeypatch):
    name, flags = precision.cpu()  # this machine's /proc/cpuinfo, where Linux has one
    assert flags <= set(precision.CPU_FEATURES)
    if "model name" in _cpuinfo():
        assert name != "unknown CPU"
    monkeypatch.setattr(precision, "cpu", lambda: AVX512_BF16)
    assert precision.describe_cpu() == "AMD EPYC (AVX512-BF16, AVX512F; no AMX-BF16)"
    monkeypatch.setattr(precision, "cpu", lambda: AMX)
    assert precision.describe_cpu() == "Intel(R) Xeon(R) Processor (AMX-BF16, AVX512-BF16, AVX512F)"
