"""What a URI or path setting names: a logged model, an embedded store, a secret to hide."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlparse

MODEL_URI_SCHEMES = ("runs:/", "models:/", "mlflow-artifacts:/")

_CREDENTIALS = re.compile(r"(?<=://)[^/\s]*@")  # greedy: up to the authority's last @


def is_model_uri(value: str | None) -> bool:
    """A model that MLflow resolves (``runs:/<id>/model``, ``models:/name@alias``...)."""
    return bool(value) and value.startswith(MODEL_URI_SCHEMES)


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, or None for other stores."""
    if not uri.startswith("sqlite:"):
        return None
    return Path(unquote(urlparse(uri).path)).resolve()


def redact(text: str) -> str:
    """``text`` with any ``user:password@`` of a URI replaced, for params, tags and logs."""
    return _CREDENTIALS.sub("***@", text)
