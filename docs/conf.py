"""Sphinx configuration: Markdown pages (MyST), the furo theme, and the generated reference.

Build: ``sphinx-build -W --keep-going docs docs/_build/html`` (tests/test_docs.py runs it).
The reference's tables (configuration keys, backbones, commands, packages) are written at
build time by ``_ext/generated.py`` from the schema, ``conf/`` and the registries.
"""

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(DOCS.parent / "src"))  # a checkout that is not installed builds too

project = "experiments"
author = "the experiments maintainers"
extensions = ["myst_parser", "generated"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3  # [text](page.md#a-heading) links are checked like any other
html_theme = "furo"
html_title = "experiments"
html_static_path = ["_static"]
nitpicky = True
