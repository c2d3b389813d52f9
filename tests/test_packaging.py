"""The project works outside its checkout: the wheel carries the configs."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from helpers import user_environment

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The project's wheel, built from this checkout and installed into a fresh virtualenv.

    The new environment sees this environment's site-packages for the dependencies
    (TensorFlow, MLflow... are not downloaded again), through a ``.pth`` line: the
    ``.pth`` files in there, among them the editable install of this checkout, are not
    run, so ``experiments`` can only come from the wheel.
    """
    work = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(work / "dist"), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next((work / "dist").glob("experiments-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "experiments/conf/config.yaml" in names
    assert "experiments/conf/backbone/compact_cnn.yaml" in names
    assert "experiments/conf/hydra/launcher/slurm.yaml" in names
    assert "hydra_plugins/experiments_slurm/slurm_launcher.py" in names  # slurm.yaml's launcher
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(site) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def run_installed(python: Path, cwd: Path, *args: str):
    env = {**user_environment(), "TF_CPP_MIN_LOG_LEVEL": "2"}
    for name in ("MLFLOW_TRACKING_URI", "PYTHONPATH", "VIRTUAL_ENV"):
        env.pop(name, None)
    return subprocess.run(
        [str(python), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_installed_wheel_composes_and_trains_from_another_folder(installed, tmp_path, fashion_dir):
    where = run_installed(
        installed, tmp_path, "-c", "import experiments; print(experiments.__file__)"
    )
    assert where.returncode == 0, where.stderr[-2000:]
    assert where.stdout.strip().startswith(str(installed.parents[1]))  # the venv, not the checkout

    cfg = run_installed(
        installed, tmp_path, "-m", "experiments", "--cfg", "job", "backbone=vgg16", "dataset=shapes"
    )
    assert cfg.returncode == 0, cfg.stderr[-2000:]
    assert "name: vgg16" in cfg.stdout

    run = run_installed(
        installed,
        tmp_path,
        "-m",
        "experiments",
        "dataset.limit=100",
        "trainer.epochs=1",
        "trainer.verbose=0",
        "cost=quick",
        "interpretation=off",
        "mlflow.log_model=false",
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "mlflow.db").is_file()
