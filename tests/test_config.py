"""The real configs compose, every group option loads, and bad values are rejected early."""

from __future__ import annotations

import logging
import sys

import pytest
from helpers import app_main, in_process, run_cli
from hydra.errors import ConfigCompositionException

from experiments import models
from experiments.config.schema import CONF_DIR, flatten
from experiments.errors import ConfigError
from experiments.training.settings import compose


def options(group: str) -> list[str]:
    """The options Hydra offers for ``group``: YAML files and ConfigStore entries."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return sorted(GlobalHydra.instance().config_loader().get_group_options(group))


def test_defaults_are_the_compact_cnn_with_its_recipe():
    cfg = compose()
    assert cfg.backbone.name == "compact_cnn" and cfg.backbone.dropout == pytest.approx(0.2)
    assert cfg.phase.name == "scratch"
    assert cfg.optimizer.name == "adam" and cfg.optimizer.lr == pytest.approx(2e-3)
    assert cfg.optimizer.schedule == "cosine" and cfg.optimizer.warmup == pytest.approx(0.1)
    assert cfg.dataset.name == "fashion_mnist" and cfg.dataset.limit is None
    assert cfg.dataset.augment.flip is True
    assert cfg.trainer.epochs == 15 and cfg.trainer.batch_size == 128
    assert cfg.trainer.precision == "auto" and cfg.trainer.steps_per_execution == 16
    assert cfg.mlflow.tracking_uri is None


def test_the_reference_network_keeps_the_reference_recipe():
    cfg = compose(["backbone=custom_cnn"])
    assert cfg.optimizer.lr == pytest.approx(1e-3) and cfg.optimizer.schedule == "constant"
    assert cfg.trainer.epochs == 10 and cfg.trainer.batch_size == 32
    assert cfg.trainer.precision == "float32" and cfg.dataset.augment.flip is False
    # The command line beats the recipe; an optimizer chosen brings its own rate.
    cfg = compose(["trainer.epochs=3", "optimizer.lr=0.01"])
    assert cfg.trainer.epochs == 3 and cfg.optimizer.lr == pytest.approx(0.01)
    assert compose(["optimizer=sgd"]).optimizer.lr == pytest.approx(1e-2)
    assert compose(["phase=finetune"]).optimizer.lr == pytest.approx(1e-5)


@pytest.mark.parametrize(
    "group", ["backbone", "phase", "optimizer", "dataset", "trainer", "mlflow", "cost"]
)
def test_every_group_option_composes(group):
    found = options(group)
    assert found, f"conf/{group} is empty"
    for option in found:
        extra = []
        if group == "backbone":  # applications need larger images than Fashion-MNIST's 28 px
            extra = [f"dataset.image_size={models.spec(option).min_size}"]
        cfg = compose([f"{group}={option}", *extra])
        if group in ("backbone", "phase", "optimizer", "dataset"):
            assert cfg[group].name == option


def test_groups_hold_the_options_users_type():
    assert options("optimizer") == ["adam", "rmsprop", "sgd"]
    assert options("backbone") == sorted(models.names())  # one per row of the table
    assert options("phase") == ["finetune", "scratch", "transfer"]
    assert options("dataset") == ["animals", "fashion_mnist", "image_folder", "shapes"]


def test_finetune_lowers_the_learning_rate_unless_told_otherwise():
    assert compose(["phase=finetune"]).optimizer.lr == pytest.approx(1e-5)
    assert compose(["phase=finetune", "optimizer=sgd"]).optimizer.lr == pytest.approx(1e-5)
    assert compose(["phase=finetune", "optimizer.lr=1e-4"]).optimizer.lr == pytest.approx(1e-4)
    assert compose(["phase=transfer"]).optimizer.lr == pytest.approx(2e-3)  # compact's recipe
    assert compose(["phase=transfer", "backbone=custom_cnn"]).optimizer.lr == pytest.approx(1e-3)


@pytest.mark.parametrize(
    "override, key",
    [
        ("optimizer.lr=0", "optimizer.lr"),
        ("optimizer.lr=-1", "optimizer.lr"),
        ("optimizer.lr=abc", "optimizer.lr"),  # a number or "find" (the learning-rate finder)
        ("trainer.epochs=0", "trainer.epochs"),
        ("trainer.batch_size=0", "trainer.batch_size"),
        ("dataset.limit=0", "dataset.limit"),
        ("dataset.val_split=1.5", "dataset.val_split"),
        ("dataset.image_size=7", "dataset.image_size"),  # compact_cnn's minimum is 8
        ("metric=f1", "metric"),
        ("backbone=vgg16", "dataset.image_size"),  # 28 < 32
        ("phase.unfreeze=some", "phase.unfreeze"),
        ("phase=finetune phase.warmup_epochs=0", "phase.warmup_epochs"),
        ("phase=transfer phase.init_from=runs:/abc/model", "phase.init_from"),
        ("backbone.weights=imagenet", "backbone.weights"),  # custom_cnn has none
        ("backbone.dropout=1.0", "backbone.dropout"),
    ],
)
def test_bad_values_are_rejected_naming_the_key(override, key):
    with pytest.raises(ConfigError) as info:
        compose(override.split())
    assert info.value.key == key
    assert key in str(info.value)


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("optimizer.lrr=1", "optimizer.lrr"),  # a typo'd key
        ("trainer.epochs=1.5", "trainer.epochs"),
        ("backbone=resnet", "backbone"),  # an unknown option
    ],
)
def test_schema_rejects_typos_and_wrong_types(override, fragment):
    with pytest.raises(ConfigCompositionException) as info:
        compose([override])
    message = str(info.value) + str(info.value.__cause__ or "")
    assert fragment in message


def test_flatten_gives_dotted_params():
    flat = flatten(compose(["optimizer=sgd"]))
    assert flat["optimizer.name"] == "sgd"
    assert flat["optimizer.momentum"] == pytest.approx(0.9)
    assert flat["trainer.epochs"] == 15


def test_command_line_rejects_bad_value_before_tensorflow(workdir):
    result = run_cli("optimizer.lr=-1", cwd=workdir)
    assert result.returncode == 2
    assert "optimizer.lr" in result.stderr and "must be > 0" in result.stderr
    assert not (workdir / "mlflow.db").exists()  # nothing was opened, nothing to clean up


def test_command_line_lists_options_for_unknown_backbone(workdir):
    result = run_cli("backbone=resnet", cwd=workdir)
    assert result.returncode != 0
    assert "custom_cnn" in result.stderr


def test_help_lists_the_groups(workdir):
    result = run_cli("--help", cwd=workdir)
    assert result.returncode == 0
    assert f"backbone: {', '.join(sorted(models.names()))}" in result.stdout


def test_cfg_job_does_not_import_tensorflow(workdir):
    code = (
        "import sys; sys.argv=['experiments','--cfg','job'];"
        "from experiments.commands.app import main\n"
        "try: main()\nexcept SystemExit: pass\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'heavy import'\n"
        "assert 'mlflow' not in sys.modules, 'mlflow imported'"
    )
    import subprocess

    result = subprocess.run(
        [sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "compact_cnn" in result.stdout


@pytest.mark.parametrize(
    ("overrides", "key", "option"),
    [
        (["phase=scratch", "phase.unfreeze=3"], "phase.unfreeze", "phase=scratch"),
        (["phase=transfer", "phase.warmup_epochs=2"], "phase.warmup_epochs", "phase=transfer"),
        (["optimizer=adam", "optimizer.momentum=0.9"], "optimizer.momentum", "optimizer=adam"),
        (
            ["optimizer=rmsprop", "optimizer.nesterov=true"],
            "optimizer.nesterov",
            "optimizer=rmsprop",
        ),
        (
            ["dataset=fashion_mnist", "dataset.test_split=0.2"],
            "dataset.test_split",
            "dataset=fashion_mnist",
        ),
        (["dataset=animals", "dataset.per_class=10"], "dataset.per_class", "dataset=animals"),
    ],
)
def test_a_key_the_chosen_option_ignores_is_refused_naming_the_option(overrides, key, option):
    with pytest.raises(ConfigError, match=f"^{key}: {option} does not use it") as info:
        compose(overrides)
    assert info.value.key == key


def test_the_keys_an_option_reads_are_accepted():
    cfg = compose(
        ["phase=finetune", "phase.unfreeze=3", "optimizer=sgd", "optimizer.nesterov=true"]
    )
    assert (cfg.phase.unfreeze, cfg.optimizer.momentum, cfg.optimizer.nesterov) == ("3", 0.9, True)
    assert compose(["dataset=shapes", "dataset.per_class=7"]).dataset.per_class == 7


@pytest.mark.parametrize("dataset", ["fashion_mnist", "image_folder", "animals", "shapes"])
def test_val_split_zero_is_refused_for_every_dataset(dataset):
    """The best epoch is chosen on the validation set: every dataset needs one."""
    with pytest.raises(ConfigError, match=r"^dataset.val_split: must be in \(0, 1\)"):
        compose([f"dataset={dataset}", "dataset.root=anywhere", "dataset.val_split=0"])


def test_in_a_sweep_over_the_group_a_key_for_some_options_is_not_refused(monkeypatch, caplog):
    """``phase=transfer,finetune phase.warmup_epochs=1``: the key is for the finetune jobs."""
    from experiments.tracking import sweeps

    monkeypatch.setattr(sweeps, "parent_of_current_job", lambda: {"varying": ["phase", "seed"]})
    with caplog.at_level(logging.INFO, logger="experiments.config.rules"):
        cfg = compose(["phase=transfer", "phase.warmup_epochs=1"])
    assert cfg.phase.name == "transfer"
    assert (
        "phase=transfer does not use it (only finetune do); this sweep varies phase" in caplog.text
    )
    with pytest.raises(ConfigError, match="^optimizer.momentum: optimizer=adam does not use it"):
        compose(["optimizer=adam", "optimizer.momentum=0.9"])  # the sweep does not vary this group


@pytest.mark.slow  # the app in process, TensorFlow imported: about 3 s
def test_a_refused_override_prints_one_error_line_and_reaches_the_log_file(tmp_path):
    """Once on the console, as ``error: ...`` (Hydra's console handler printed it a second
    time, as an ``[ERROR]`` line, before); the job's log file still has it."""
    log_file = logging.FileHandler(tmp_path / "job.log")
    logging.getLogger("experiments").addHandler(log_file)
    try:
        result = in_process(app_main, "trainer.epochs=0", cwd=tmp_path)
    finally:
        logging.getLogger("experiments").removeHandler(log_file)
        log_file.close()
    printed = [line for line in (result.stdout + result.stderr).splitlines() if "epochs" in line]
    assert result.returncode == 2
    assert printed == ["error: trainer.epochs: must be >= 1, got 0"], result
    assert "trainer.epochs: must be >= 1, got 0" in (tmp_path / "job.log").read_text()
