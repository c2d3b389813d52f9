"""Every command answers --help with its usage, its options and examples, without a store
or TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import run_cli, user_environment

from experiments.config import keys

COMMANDS = ["compare", "predict", "explain", "export", "server", "lr_find", "study"]

# Each command's --help, then ``python -m experiments --help``, in one Python: what did they
# print, and which heavy modules did they import?
HELP_ALL = """
import contextlib, io, json, sys
from experiments.commands import app
out = {}
for name in %r:
    module = __import__(f"experiments.commands.{name}", fromlist=["main"])
    text = io.StringIO()
    with contextlib.redirect_stdout(text), contextlib.suppress(SystemExit):
        module.main(["--help"])
    out[name] = text.getvalue()
text = io.StringIO()
sys.argv = ["experiments", "--help"]
with contextlib.redirect_stdout(text), contextlib.suppress(SystemExit):
    app.main()
out["experiments"] = text.getvalue()
out["imported"] = [m for m in ("tensorflow", "keras", "mlflow", "optuna") if m in sys.modules]
print(json.dumps(out))
"""


def test_every_command_prints_usage_options_and_examples_without_tensorflow(tmp_path):
    tmp_path = tmp_path / "work"
    tmp_path.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", HELP_ALL % COMMANDS],
        cwd=tmp_path,
        env=user_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out.pop("imported") == []
    for name, text in out.items():
        assert text.startswith("usage: python -m experiments"), (name, text)
        assert "examples:" in text and "=" in text, (name, text)
    assert not list(tmp_path.iterdir())  # no store, no outputs folder


def test_the_training_help_has_every_key_its_meaning_the_groups_and_the_other_commands():
    from experiments.commands import app  # noqa: F401  (registers the template's resolver)
    from experiments.training.settings import compose

    cfg = compose()
    text = keys.help_text(cfg)
    for key, _, _, meaning in keys.schema_keys():
        assert f"  {key}=" in text and meaning.replace("$", "$$") in text, key
    assert "trainer.steps_per_execution=16 " in text  # the composed value, compact_cnn's
    from experiments.config.schema import CONF_DIR

    template = (CONF_DIR / "hydra" / "help" / "experiments.yaml").read_text()
    for name in COMMANDS:
        assert f"python -m experiments.{name} " in template, name


def test_study_help_exits_at_once_without_starting_a_study(tmp_path):
    tmp_path = tmp_path / "work"
    tmp_path.mkdir()
    result = run_cli("--help", cwd=tmp_path, module="experiments.study")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m experiments.study")
    assert "+ " not in result.stdout and not list(tmp_path.iterdir())  # nothing launched
