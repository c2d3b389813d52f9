"""The image files under a folder: what training reads of a class folder, and ``predict`` of
any folder, listed by this one function so that the two always see the same files.

Sub-folders are walked, symbolic links followed (a class folder is often a link to where
the images really are), each folder's entries in name order. Hidden entries and the folders
tools put beside images (a macOS zip's ``__MACOSX``, a Synology NAS's ``@eaDir``...) are
skipped, each logged once. A link back up to the folder listed or above it (a loop), or
to a folder already listed, is not followed: one warning names it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from experiments.data.images import is_image_file

log = logging.getLogger(__name__)

# Folders that tools put beside the classes: a macOS zip, a Synology NAS, Windows, Python.
NOT_IMAGES = frozenset(
    {"__MACOSX", "@eaDir", "$RECYCLE.BIN", "System Volume Information", "__pycache__"}
)
_reported: set[Path] = set()  # folders set aside and already logged, once each


def is_image_folder(entry: Path) -> bool:
    """A sub-folder (or a link to one) that may hold images: not hidden, not a tool's."""
    if not entry.is_dir():
        return False
    if entry.name.startswith(".") or entry.name in NOT_IMAGES:
        if entry not in _reported:
            _reported.add(entry)
            kind = "hidden" if entry.name.startswith(".") else "a metadata folder, not images"
            log.info("Ignored %s (%s)", entry, kind)
        return False
    return True


def image_files(folder: Path) -> list[Path]:
    """The image files under ``folder``, sub-folders and links included, in name order."""
    folder = Path(folder)
    found: list[Path] = []
    _walk(folder, Path(os.path.realpath(folder)), set(), found)
    return found


def _walk(folder: Path, top: Path, walked: set[Path], found: list[Path]) -> None:
    walked.add(Path(os.path.realpath(folder)))
    with os.scandir(folder) as scanned:
        entries = sorted(scanned, key=lambda entry: entry.name)
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = folder / entry.name
        if entry.is_file():
            if is_image_file(entry.name):
                found.append(path)
        elif is_image_folder(path):
            real = Path(os.path.realpath(path))
            if top.is_relative_to(real):  # the listed folder itself, or one above it
                log.warning("Skipped %s: a link back to a folder above it (a loop)", path)
            elif real in walked:
                log.warning("Skipped %s: a link to a folder already listed", path)
            else:
                _walk(path, top, walked, found)
