"""What each config key means, read from the comment on its line in a dataclass schema.

One reader for the manual's reference (docs/_ext/generated.py), ``python -m experiments
--help`` and the small commands' ``--help``: a key's meaning is written once, in the code.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import tokenize

from omegaconf import OmegaConf

from experiments.config.schema import Config


def comments(cls) -> dict[str, str]:
    """The comment at the end of each field's line in the dataclass ``cls``'s source."""
    source = inspect.getsource(cls)
    by_line = {
        token.start[0]: token.string.lstrip("#").strip()
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    }
    fields = {}
    for node in ast.parse(source).body[0].body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            fields[node.target.id] = by_line.get(node.lineno, "")
    return fields


def schema_keys(cls=None, prefix: str = "") -> list[tuple[str, str, object, str]]:
    """``(key, type, default, meaning)`` for every key of ``cls`` (the run's schema by
    default), nested keys flattened; a key without a comment raises ValueError."""
    cls = cls or Config
    meanings = comments(cls)
    rows = []
    for field in dataclasses.fields(cls):
        key = f"{prefix}{field.name}"
        if field.default_factory is not dataclasses.MISSING:
            nested = field.default_factory()
            if dataclasses.is_dataclass(nested):
                rows += schema_keys(type(nested), f"{key}.")
                continue
            default = nested
        else:
            default = field.default
        if not meanings[field.name]:
            raise ValueError(
                f"schema key {key} ({cls.__name__}.{field.name} in "
                f"{inspect.getsourcefile(cls)}) has no description: add a comment on its line"
            )
        rows.append((key, str(field.type), default, meanings[field.name]))
    return rows


def help_text(root=None) -> str:
    """``key=value  meaning`` for every key of the run's schema, one line each, for
    ``python -m experiments --help``; values from the composed ``root`` when given."""
    lines = []
    for key, _, default, meaning in schema_keys():
        value = default if root is None else OmegaConf.select(root, key, default=default)
        lines.append(f"  {key}={shown(value)}".ljust(40) + f" {meaning}")
    return "\n".join(lines).replace("$", "$$")  # Hydra fills the template's $NAMES


def register_resolver() -> None:
    """``${experiments_keys:}`` in conf/hydra/help/experiments.yaml: ``help_text``."""
    if not OmegaConf.has_resolver("experiments_keys"):
        OmegaConf.register_new_resolver(
            "experiments_keys", lambda *, _root_: help_text(_root_), use_cache=False
        )


def shown(value) -> str:
    """``value`` as it is typed on the command line: null, true/false, or as it is."""
    if value is None:
        return "null"
    return str(value).lower() if isinstance(value, bool) else f"{value}"
