"""Helpers for tests that drive the real command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_cli(*overrides: str, cwd: Path, env: dict | None = None, module: str = "experiments"):
    """Run ``python -m <module> overrides...`` as a user would; return the CompletedProcess."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", module, *overrides],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
