"""The ``backbone`` group: a Hydra option for every row of the table, and the row's rules.

A backbone with a recipe of its own (compact_cnn, custom_cnn) has a YAML file in
``conf/backbone/`` instead, which may set more than ``backbone.*``.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from experiments.config.rules import first_broken
from experiments.config.schema import BackboneConfig, register_options
from experiments.errors import ConfigError
from experiments.models.registry import BACKBONES, spec
from experiments.uris import is_model_uri

APPLICATION_DROPOUT = 0.2  # the head's dropout for backbones without a YAML file


def register() -> None:
    """``backbone=<name>`` for every row without a YAML file of its own."""
    nodes = {
        row.name: BackboneConfig(
            name=row.name, weights="imagenet" if row.imagenet else None, dropout=APPLICATION_DROPOUT
        )
        for row in BACKBONES.values()
    }
    register_options("backbone", nodes)


def check(cfg: DictConfig) -> None:
    """The chosen row's rules: its minimum input size, its weights, the head's dropout."""
    row = spec(cfg.backbone.name)
    backbone, size = cfg.backbone, cfg.dataset.image_size
    first_broken(
        [
            (
                size >= row.min_size,
                "dataset.image_size",
                f"{size} is below the minimum of {row.min_size} for backbone {row.name}; "
                f"set dataset.image_size={row.min_size} or more",
            ),
            (
                0 <= backbone.dropout < 1,
                "backbone.dropout",
                f"must be in [0, 1), got {backbone.dropout}",
            ),
            (
                backbone.weights != "imagenet" or row.imagenet,
                "backbone.weights",
                f"{row.name} has no ImageNet weights; use null, a weights file or a model URI",
            ),
        ]
    )
    _check_weights(backbone.weights)


def _check_weights(weights: str | None) -> None:
    if weights in (None, "imagenet") or is_model_uri(weights):
        return
    if not Path(weights).expanduser().is_file():
        raise ConfigError(
            "backbone.weights",
            f"{weights} is not a file; use imagenet, null, a weights file or runs:/<run_id>/model",
        )
