"""Class names as the plots can draw them, whatever their script.

Matplotlib draws with DejaVu Sans, which has no Chinese, Japanese, Korean, Thai... glyphs:
a class named ``狗`` came out as empty boxes, with a warning per glyph. Here the installed
fonts that cover such names are added behind DejaVu Sans (Matplotlib falls back along the
list glyph by glyph), and a name that no installed font can draw is shown as ``class <i>``
instead, said once in the log with the font package that would draw it.
"""

from __future__ import annotations

import contextlib
import functools
import logging

log = logging.getLogger(__name__)

DEFAULT = "DejaVu Sans"
# A placeholder font (Matplotlib ships one): it "covers" everything with boxes.
PLACEHOLDERS = ("Last Resort",)


def plot_names(names: list[str]) -> tuple[list[str], list[str]]:
    """The names to draw (unchanged, or ``class <i>``) and the font families to draw them."""
    need = {ord(c) for name in names for c in name}
    families, missing = _families_covering(frozenset(need))
    if not missing:
        return list(names), families
    shown, replaced = [], []
    for i, name in enumerate(names):
        if any(ord(c) in missing for c in name):
            shown.append(f"class {i}")
            replaced.append(f"{name!r} as 'class {i}'")
        else:
            shown.append(name)
    log.info(
        "No installed font draws every class name; the plots show %s "
        "(install a font with wider coverage, e.g. Debian's fonts-noto-cjk)",
        ", ".join(replaced),
    )
    return shown, families


@contextlib.contextmanager
def drawing(families: list[str]):
    """Matplotlib set to fall back along ``families`` while plots are drawn."""
    import matplotlib

    with matplotlib.rc_context({"font.family": families}):
        yield


@functools.cache
def _families_covering(need: frozenset[int]) -> tuple[list[str], set[int]]:
    """DejaVu Sans, then installed fonts that draw what it lacks; what none draws."""
    from matplotlib import font_manager

    families = [DEFAULT]
    missing = set(need) - _charmap(font_manager.findfont(DEFAULT))
    for entry in sorted(font_manager.fontManager.ttflist, key=lambda e: e.name):
        if not missing:
            break
        if entry.name.startswith(PLACEHOLDERS) or entry.name in families:
            continue
        covered = _charmap(entry.fname) & missing
        if covered:
            families.append(entry.name)
            missing -= covered
    return families, missing


@functools.cache
def _charmap(path: str) -> frozenset[int]:
    from matplotlib import ft2font

    try:
        return frozenset(ft2font.FT2Font(path).get_charmap())
    except (OSError, RuntimeError, ValueError):  # a font file it cannot read
        return frozenset()
