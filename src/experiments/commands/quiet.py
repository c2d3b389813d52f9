"""TensorFlow's start-up lines that say nothing about the run, kept off the console.

Importing TensorFlow 2.21 writes, from C++ and before any log level applies, twice each:

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 ... port.cc:153] oneDNN custom operations are on. You may see slightly different ...

The first is absl's note that logging is not set up yet; the second says oneDNN is used,
which is the point (``TF_ENABLE_ONEDNN_OPTS=0`` would switch it off and slow training).
While TensorFlow is imported, standard error goes through a filter that drops exactly
those lines; everything else, errors included, is passed on unchanged. (Should TensorFlow
kill the process while it is imported, what it wrote last may be lost with the filter.)
``TF_CPP_MIN_LOG_LEVEL``, set to 2 by the commands unless you set it, hides TensorFlow's
later INFO and WARNING lines; set it to 0 to see those.

Keras imports scikit-learn, when it is installed (MLflow brings it), only for its
scikit-learn wrappers, which the commands never use; scikit-learn pulls SciPy, pandas and
matplotlib along, about 0.7 s of every run's start. While TensorFlow is imported here,
scikit-learn reads as absent to Keras; it stays importable for everything afterwards.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import warnings

DROPPED = (
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"oneDNN custom operations are on.",
)


def import_tensorflow() -> None:
    """Import TensorFlow with its start-up notes left out of standard error."""
    # A model logged before its base took one tensor (rather than a list of one) makes
    # Keras warn "The structure of `inputs` doesn't match the expected structure" at every
    # call; the call is right all the same.
    warnings.filterwarnings(
        "ignore", message="The structure of `inputs` doesn't match", category=UserWarning
    )
    if "tensorflow" in sys.modules:
        return
    with _without("sklearn"):
        _import_quietly()


def _import_quietly() -> None:
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real standard error: nothing to filter
        import tensorflow  # noqa: F401

        return
    reader, writer = os.pipe()
    os.dup2(writer, 2)
    os.close(writer)
    forward = threading.Thread(target=_forward, args=(reader, saved), daemon=True)
    forward.start()
    try:
        import tensorflow  # noqa: F401
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last writer: the thread sees the end
        forward.join(timeout=10)
        if not forward.is_alive():  # else it still writes to ``saved`` (a child holds the pipe)
            os.close(saved)


@contextlib.contextmanager
def _without(package: str):
    """``package`` reads as not installed to imports made inside (unless already imported)."""
    if package in sys.modules:
        yield
        return
    sys.modules[package] = None  # the import system's mark for "not found"
    try:
        yield
    finally:
        if sys.modules.get(package, 0) is None:
            del sys.modules[package]


def _forward(reader: int, target: int) -> None:
    with os.fdopen(reader, "rb") as lines:
        for line in lines:
            if not any(note in line for note in DROPPED):
                os.write(target, line)
