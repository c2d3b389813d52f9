"""The manual's generated parts, written into the pages as Sphinx reads them.

A page asks for one with a line ``<!-- generated: NAME -->``; the line is replaced by the
Markdown that ``GENERATORS[NAME]`` makes from the code, so the reference cannot drift:

- ``config``: every config group, its options (``conf/`` and the registries) and every key
  of the schema (``src/experiments/config/schema.py``) with its type, default, meaning
  (the comment on its line: a key without one fails the build) and the options that set
  another default;
- ``backbones``: the backbone table (``experiments.models.registry``);
- ``commands``: each command's usage, as its ``--help`` prints it;
- ``packages``: the packages and modules under ``src/experiments`` with their docstrings;
- ``benchmarks``: ``benchmarks/RESULTS.md``, its headings one level down.
"""

from __future__ import annotations

import ast
import io
import re
from pathlib import Path

from sphinx.errors import ExtensionError

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "experiments"
MARK = re.compile(r"^<!-- generated: ([a-z_]+) -->$", re.MULTILINE)


def setup(app):
    app.connect("source-read", _expand)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def _expand(app, docname, source):
    def replace(match):
        name = match.group(1)
        if name not in GENERATORS:
            raise ExtensionError(f"{docname}: no generator {name!r}; known: {sorted(GENERATORS)}")
        return GENERATORS[name]()

    source[0] = MARK.sub(replace, source[0])


# --- configuration ------------------------------------------------------------------------


def schema_keys(cls=None, prefix: str = "") -> list[tuple[str, str, object, str]]:
    """``(key, type, default, meaning)`` for every schema key (experiments.config.keys)."""
    from experiments.config import keys

    try:
        return keys.schema_keys(cls, prefix)
    except ValueError as exc:  # a key without a description fails the build
        raise ExtensionError(str(exc)) from None


def _yaml_options(group: str) -> dict[str, tuple[str, dict[str, object]]]:
    """``{option: (its first comment line, {global key: value})}`` for ``conf/<group>/*.yaml``."""
    from omegaconf import OmegaConf

    from experiments.config.schema import CONF_DIR

    options = {}
    for path in sorted((CONF_DIR / group).glob("*.yaml")):
        text = path.read_text()
        head = []
        for line in text.splitlines():
            if not line.startswith("#"):
                break
            if "@package" not in line:
                head.append(line.lstrip("# ").strip())
        note = " ".join(head).split(". ")[0].rstrip(".")
        note = f"{note}." if note else f"the defaults in `conf/{group}/{path.name}`"
        flat = _flatten(OmegaConf.to_container(OmegaConf.load(path)))
        flat.pop("defaults", None)
        if "@package _global_" not in text:
            flat = {f"{group}.{key}": value for key, value in flat.items()}
        options[path.stem] = (note, flat)
    return options


def _flatten(node, prefix: str = "") -> dict[str, object]:
    flat = {}
    for key, value in (node or {}).items():
        if isinstance(value, dict) and key != "defaults":
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _registry_options(group: str) -> list[str]:
    from hydra.core.config_store import ConfigStore

    from experiments.training import settings  # noqa: F401  (registers every option)

    stored = ConfigStore.instance().repo.get(group, {})
    return [name.removesuffix(".yaml") for name in stored]


def _value(value) -> str:
    if value == "???":
        return "required"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def config() -> str:
    from experiments.config.schema import CONF_DIR

    keys = schema_keys()
    groups = sorted({key.split(".")[0] for key, *_ in keys if "." in key})
    extra = sorted(
        p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name not in [*groups, "hydra"]
    )
    lines = []
    for group in groups + extra:
        yaml = _yaml_options(group) if (CONF_DIR / group).is_dir() else {}
        rows = sorted(set(_registry_options(group)) - set(yaml))
        lines += [f"### `{group}`", "", "| option | what it is |", "| --- | --- |"]
        for name, (note, _) in yaml.items():
            lines.append(f"| `{group}={name}` | {_cell(note)} |")
        if rows:
            names = ", ".join(f"`{name}`" for name in rows)
            lines.append(f"| {names} | a row of the {group} table, with the schema's defaults |")
        group_keys = [row for row in keys if row[0].startswith(f"{group}.")]
        if group_keys:
            lines += ["", *_key_table(group_keys, yaml)]
        lines.append("")
    lines += ["### Top-level keys", "", *_key_table([r for r in keys if "." not in r[0]], {}), ""]
    lines += ["### `hydra/launcher`", "", "| option | what it is |", "| --- | --- |"]
    for name, (note, _) in _yaml_options("hydra/launcher").items():
        lines.append(f"| `hydra/launcher={name}` | {_cell(note)} |")
    return "\n".join(lines) + "\n"


def _key_table(rows, yaml) -> list[str]:
    from omegaconf import MISSING

    lines = [
        "| key | type | default | meaning | options that set it |",
        "| --- | --- | --- | --- | --- |",
    ]
    for key, kind, default, meaning in rows:
        shown = "set by the option" if default == MISSING else f"`{_cell(_value(default))}`"
        setters = [
            f"{name}: `{_cell(_value(flat[key]))}`"
            for name, (_, flat) in yaml.items()
            if key in flat and flat[key] != default and not key.endswith(".name")
        ]
        lines.append(
            f"| `{key}` | `{_cell(kind)}` | {shown} | {_cell(meaning)} | {', '.join(setters)} |"
        )
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


# --- backbones, commands, packages, benchmarks --------------------------------------------


def backbones() -> str:
    from experiments.models.registry import markdown_table

    return markdown_table()


def command_names() -> list[str]:
    """The ``python -m experiments.<name>`` commands: a module here and in ``commands/``."""
    return sorted(
        path.stem
        for path in SRC.glob("*.py")
        if (SRC / "commands" / path.name).exists() and path.stem != "__init__"
    )


def commands() -> str:
    import contextlib
    import importlib

    lines = []
    for name in command_names():
        module = importlib.import_module(f"experiments.commands.{name}")
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            module.main(["--help"])
        lines += [f"## `python -m experiments.{name}`", "", "```text", out.getvalue().rstrip()]
        lines += ["```", ""]
    return "\n".join(lines)


def packages() -> str:
    lines = ["```text"]
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC)
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        summary = " ".join(doc.split("\n\n")[0].split())
        if len(summary) > 110:
            summary = summary[:107].rsplit(" ", 1)[0] + " ..."
        lines.append(f"{str(relative):36} {summary}")
    return "\n".join([*lines, "```"]) + "\n"


def benchmarks() -> str:
    text = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    body = text.split("\n", 1)[1]  # its title is the page's
    return re.sub(r"^(#+) ", r"#\1 ", body, flags=re.MULTILINE)


GENERATORS = {
    "config": config,
    "backbones": backbones,
    "commands": commands,
    "packages": packages,
    "benchmarks": benchmarks,
}
