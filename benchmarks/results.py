"""benchmarks/RESULTS.md: one section per CPU kind, one part per benchmark, merged in place.

Every benchmark that writes its figures goes through ``merge``; it imports nothing of the
other benchmarks, so they all import it and none imports another.
"""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
# The parts in the order a section lists them (run_all.py's, then the stand-alone ones).
ORDER = (
    "network",
    "overhead",
    "transfer",
    "cli",
    "predict",
    "cache",
    "cost",
    "export",
    "export_zoo",
    "explain",
    "suite",
)

INTRO = """# Benchmarks

One section per CPU kind: the speed of training depends on the CPU's bfloat16 features
(AMX-BF16 on recent Intel Xeons, AVX512-BF16 alone on AMD EPYC Zen 4), so figures compare
only within one section, and within one part, which says when it was measured and how.
`python benchmarks/run_all.py [--only PARTS]` rewrites the parts it runs in its own CPU's
section. Timings are wall-clock on a 2-core machine with nothing else running.
"""
_SECTION = re.compile(r"<!-- cpu: (?P<kind>.*?) -->\n(?P<body>.*?)<!-- /cpu -->\n", re.S)
_PART = re.compile(r"<!-- part: (?P<name>\w+) -->\n(?P<body>.*?)<!-- /part -->\n", re.S)


def merge(previous: str, kind: str, parts: dict[str, str]) -> str:
    """``previous`` RESULTS.md with ``parts`` written into the section of CPU ``kind``."""
    sections = {
        m["kind"]: {p["name"]: p["body"] for p in _PART.finditer(m["body"])}
        for m in _SECTION.finditer(previous)
    }
    sections.setdefault(kind, {}).update({name: demote(body) for name, body in parts.items()})
    text = [INTRO]
    for cpu, found in sections.items():
        text += [f"<!-- cpu: {cpu} -->", f"## {cpu}", ""]
        for name in sorted(found, key=lambda n: ORDER.index(n) if n in ORDER else -1):
            text += [f"<!-- part: {name} -->", found[name].rstrip(), "", "<!-- /part -->"]
        text += ["<!-- /cpu -->"]
    return "\n".join(text) + "\n"


def write_part(kind: str, name: str, command: str, text: str) -> None:
    """Part ``name`` of CPU ``kind`` in RESULTS.md, stamped with today and ``command``."""
    import time

    stamp = f"*Measured {time.strftime('%Y-%m-%d')} by `{command}`.*"
    RESULTS.write_text(merge(RESULTS.read_text(), kind, {name: f"{stamp}\n\n{text}"}))


def demote(markdown: str) -> str:
    """A part's headings one level down, under its CPU's heading."""
    return re.sub(r"^(#+) ", r"#\1 ", markdown, flags=re.M)
