"""Where a run came from: the command line, Hydra's overrides, the code's git commit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from experiments.uris import redact


def tags() -> dict[str, str]:
    """Run tags naming the command, the overrides and the git state of the code."""
    found = {"command": redact(" ".join(sys.argv))}
    overrides = _hydra_overrides()
    if overrides is not None:
        found["hydra.overrides"] = redact(overrides)
    commit, dirty = _git_state(Path(__file__).resolve().parent)
    if commit:
        found["git.commit"] = commit
        found["git.dirty"] = str(dirty).lower()
    return found


def overrides() -> list[str]:
    """This job's command-line overrides (none outside a Hydra app)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    return list(HydraConfig.get().overrides.task)


def _hydra_overrides() -> str | None:
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    return " ".join(HydraConfig.get().overrides.task)


def _git_state(folder: Path) -> tuple[str | None, bool]:
    """The commit and dirtiness of the checkout holding ``folder``; (None, False) outside one."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None, False
    return commit, dirty
