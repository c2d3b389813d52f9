"""The study command composes the reference report's runs and ends with the comparison."""

from __future__ import annotations

import sys

import pytest

from experiments.commands import study
from experiments.errors import ConfigError


def test_study_runs_every_backbone_and_phase_then_the_custom_cnn_then_compare():
    overrides = ["trainer.epochs=1", "backbone.weights=null", "mlflow.log_model=false"]
    sweep, custom, compare = study.commands(overrides, False, "20260101-000000")
    assert sweep[:3] == [sys.executable, "-m", "experiments"]
    assert "-m" in sweep[3:] and "backbone=vgg16,xception,mobilenet" in sweep
    assert "phase=transfer,finetune" in sweep and "dataset=shapes" in sweep
    assert (
        "backbone.weights=null" in sweep and "mlflow.experiment_name=study-20260101-000000" in sweep
    )
    assert "backbone=custom_cnn" in custom and "dataset=fashion_mnist" in custom
    assert "trainer.epochs=1" in custom and "backbone.weights=null" not in custom
    assert compare[2] == "experiments.compare"
    assert "mlflow.experiment_name=study-20260101-000000" in compare
    # compare is given only the keys it has; the rest would be refused as unknown.
    from experiments.commands.cli_args import parse
    from experiments.commands.compare import CompareArgs

    parse(compare[3:], CompareArgs, "experiments.compare")
    assert "mlflow.log_model=false" not in compare


def test_study_uses_the_animals_folder_when_present():
    sweep, _, _ = study.commands(["mlflow.experiment_name=mine"], True, "x")
    assert "dataset=animals" in sweep and "mlflow.experiment_name=mine" in sweep
    assert "mlflow.experiment_name=study-x" not in sweep


def test_study_runs_any_backbones_of_the_table():
    chosen = "backbones=[resnet50,efficientnetb0,convnext_tiny]"
    sweep, custom, compare = study.commands([chosen, "trainer.epochs=1"], False, "x")
    assert "backbone=resnet50,efficientnetb0,convnext_tiny" in sweep
    assert not [part for part in sweep + custom + compare if part.startswith("backbones=")]
    assert "trainer.epochs=1" in sweep and "trainer.epochs=1" in custom


def test_study_registers_the_winner_of_the_image_sweep_alone():
    *_, compare, register = study.commands(["mlflow.register_as=best"], False, "x")
    assert not [part for part in compare if part.startswith("register_as=")]
    assert "filter=tags.dataset = 'shapes'" in register and "register_as=best" in register
    from experiments.commands.cli_args import parse
    from experiments.commands.compare import CompareArgs

    parse(register[3:], CompareArgs, "experiments.compare")


def test_study_refuses_an_unknown_backbone_naming_the_choices():
    with pytest.raises(ConfigError, match="convnext_tiny"):
        study.commands(["backbones=[resnet]"], False, "x")
