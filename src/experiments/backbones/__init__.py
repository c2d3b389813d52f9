"""The backbone registry: what each network needs, known before TensorFlow is imported.

Each backbone module defines ``SPEC`` (facts about the network) and
``build(input_shape, num_classes, cfg)``, which imports Keras lazily.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from experiments.errors import ConfigError


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    min_size: int  # smallest input height/width the network accepts
    default_phase: str  # the phase that makes sense when none is chosen


_MODULES = ("custom_cnn",)


def _module(name: str) -> ModuleType:
    if name not in _MODULES:
        raise ConfigError(
            "backbone.name", f"unknown backbone {name!r}; choose one of {list(_MODULES)}"
        )
    return importlib.import_module(f"experiments.backbones.{name}")


def spec(name: str) -> BackboneSpec:
    """The facts about backbone ``name``; raises ConfigError for an unknown name."""
    return _module(name).SPEC


def names() -> list[str]:
    return list(_MODULES)


def build(cfg, input_shape: tuple[int, int, int], num_classes: int):
    """Build the Keras model for ``cfg.backbone`` that takes raw 0-255 pixels."""
    return _module(cfg.backbone.name).build(input_shape, num_classes, cfg)
