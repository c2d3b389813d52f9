"""TensorFlow's start-up notes are kept off the console; everything else still shows."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import user_environment

from experiments.commands import quiet


def test_only_the_two_start_up_notes_are_dropped(tmp_path):
    reader, writer = os.pipe()
    target = tmp_path / "stderr"
    lines = [
        b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
        b"I0000 00:00:1796 6172 port.cc:153] oneDNN custom operations are on. You may see...\n",
        b"E0000 00:00:1796 6172 some_op.cc:12] a real error\n",
        b"Traceback (most recent call last):\n",
    ]
    os.write(writer, b"".join(lines))
    os.close(writer)
    with open(target, "wb") as out:
        quiet._forward(reader, out.fileno())
    assert target.read_bytes() == lines[2] + lines[3]


@pytest.mark.slow  # a process of its own, which imports TensorFlow (6 s of the fast tier)
def test_importing_tensorflow_prints_no_note_and_leaves_scikit_learn_out_yet_importable():
    """One process, as a command imports TensorFlow: none of the two notes on standard error,
    which works afterwards; and Keras does not import scikit-learn (0.7 s with what it pulls,
    for wrappers the commands never use), which stays importable afterwards."""
    code = (
        "import sys; from experiments.commands import quiet; quiet.import_tensorflow(); "
        "import tensorflow as tf; print('after', file=sys.stderr); quiet.import_tensorflow(); "
        "print('sklearn' in sys.modules); "
        "import keras; keras.layers.Dense(2); import sklearn; print(sklearn.__name__)"
    )
    env = {**user_environment(), "TF_CPP_MIN_LOG_LEVEL": "2"}  # as the commands set it
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["after"], result.stderr
    assert result.stdout.split() == ["False", "sklearn"], result.stdout


def test_a_package_already_imported_is_left_alone():
    import json

    with quiet._without("json"):
        import json as again
    assert again is json and sys.modules["json"] is json
