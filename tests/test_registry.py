"""The backbone table is the one list of backbones: Hydra, the docs and the checks read it."""

from __future__ import annotations

import re
import sys

import pytest
from helpers import run_cli

from experiments import models
from experiments.config.schema import CONF_DIR
from experiments.errors import ConfigError
from experiments.models.registry import PREPROCESSING, application_name
from experiments.training.settings import compose

TODAYS = ["compact_cnn", "custom_cnn", "vgg16", "xception", "mobilenet"]  # names users have
APPLICATIONS = [row for row in models.BACKBONES.values() if row.imagenet]


def test_every_keras_application_is_a_row_under_one_naming_rule():
    assert len(APPLICATIONS) == 40
    for row in APPLICATIONS:
        assert row.name == application_name(row.constructor), row
        assert re.fullmatch(r"[a-z][a-z0-9_]*", row.name), row.name
        assert row.constructor.startswith("keras.applications.")
        assert row.preprocessing in PREPROCESSING and row.min_size <= row.default_size
        assert "BatchNormalization" in row.frozen
    names = models.names()
    wanted = [*TODAYS, "resnet50", "efficientnetv2b0", "convnext_tiny", "nasnet_mobile"]
    assert set(wanted) <= set(names)
    assert len(set(names)) == len(names)


def test_yaml_options_are_rows_of_the_table():
    """Backbones with a recipe of their own keep a YAML file; it must name its row."""
    for path in (CONF_DIR / "backbone").glob("*.yaml"):
        assert path.stem in models.BACKBONES, f"{path.name} is not a row of the table"
        assert compose([f"backbone={path.stem}"]).backbone.name == path.stem


def test_an_application_option_comes_from_its_row():
    cfg = compose(["backbone=efficientnetv2b0", "dataset=shapes"])
    assert dict(cfg.backbone) == {"name": "efficientnetv2b0", "weights": "imagenet", "dropout": 0.2}


def test_unknown_backbone_lists_every_option():
    with pytest.raises(ConfigError) as info:
        models.spec("resnet")
    assert all(name in str(info.value) for name in models.names())


def test_image_size_below_the_row_minimum_is_refused():
    with pytest.raises(ConfigError, match="below the minimum of 75 for backbone inceptionv3"):
        compose(["backbone=inceptionv3", "dataset=shapes", "dataset.image_size=72"])


def test_help_and_cfg_job_list_every_backbone_without_tensorflow(workdir):
    code = (
        "import sys; sys.argv=['experiments','--help'];"
        "from experiments.commands.app import main\n"
        "try: main()\nexcept SystemExit: pass\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'heavy import'"
    )
    import subprocess

    result = subprocess.run(
        [sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert f"backbone: {', '.join(sorted(models.names()))}" in result.stdout
    job = run_cli("backbone=convnext_tiny", "dataset=shapes", "--cfg", "job", cwd=workdir)
    assert job.returncode == 0, job.stderr
    assert "name: convnext_tiny\n  weights: imagenet\n  dropout: 0.2" in job.stdout


# ---------------------------------------------------------------- one registry per kind


def _options(group: str) -> set[str]:
    """The options of ``group``: its YAML files and the rows Hydra's ConfigStore holds."""
    from hydra.core.config_store import ConfigStore

    try:
        stored = {name.removesuffix(".yaml") for name in ConfigStore.instance().list(group)}
    except OSError:  # no option of the group is registered in code: all are YAML files
        stored = set()
    return stored | {path.stem for path in (CONF_DIR / group).glob("*.yaml")}


def test_the_dataset_table_is_conf_dataset():
    from experiments.data.registry import DATASETS

    assert set(DATASETS) == _options("dataset")
    for name, row in DATASETS.items():
        assert compose([f"dataset={name}"]).dataset.name == name
        assert (CONF_DIR.parent / "data" / f"{row.module}.py").is_file(), row


def test_the_optimizer_table_is_conf_optimizer():
    from experiments.config.schema import OptimizerConfig
    from experiments.training.optimizers import OPTIMIZERS

    assert set(OPTIMIZERS) == _options("optimizer")
    for name, row in OPTIMIZERS.items():
        assert compose([f"optimizer={name}"]).optimizer.name == name
        assert all(hasattr(OptimizerConfig, key) for key in row.keys), row


def test_the_phase_table_is_conf_phase():
    from experiments.config.schema import PhaseConfig
    from experiments.training.phases import PHASES, module

    assert set(PHASES) == _options("phase")
    for name, keys in PHASES.items():
        assert callable(module(name).build) and callable(module(name).train)
        assert all(hasattr(PhaseConfig, key) for key in keys), name


def test_every_backbone_option_is_a_row():
    assert _options("backbone") == set(models.BACKBONES)


def test_a_row_without_a_yaml_file_is_an_option_with_the_schema_defaults(monkeypatch):
    """Adding an optimizer is one row: without conf/optimizer/<name>.yaml it still composes."""
    from hydra.core.config_store import ConfigStore

    from experiments.config.schema import register_options
    from experiments.training import optimizers

    row = optimizers.OptimizerSpec("adamw", "AdamW")
    monkeypatch.setitem(optimizers.OPTIMIZERS, "adamw", row)
    register_options("optimizer", {"adamw": optimizers.OptimizerConfig(name="adamw")})
    try:
        cfg = compose(["optimizer=adamw", "optimizer.lr=0.01"])
    finally:
        ConfigStore.instance().repo["optimizer"].pop("adamw.yaml")
    assert (cfg.optimizer.name, cfg.optimizer.lr, cfg.optimizer.momentum) == ("adamw", 0.01, 0.0)
    built = optimizers.build(cfg.optimizer)
    assert type(built).__name__ == "AdamW" and float(built.learning_rate) == pytest.approx(0.01)
