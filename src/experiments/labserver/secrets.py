"""The lab server's secrets: the admin's password comes from the user, the rest is made here.

No secret is ever taken from, or put on, a command line (``ps`` shows those to every user):
the admin's password comes from MLflow's own variable or a file only its owner can read,
and the generated ones (the database's password, the web session key) are kept in
``<folder>/secrets/``, mode 600.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from experiments.errors import ConfigError

ADMIN_PASSWORD_ENV = "MLFLOW_AUTH_ADMIN_PASSWORD"  # MLflow's own name for it
MIN_LENGTH = 12
# MLflow's old default admin password, and the like: a server with one is an open server.
WEAK = {"password1234", "password", "admin", "mlflow", "changeme"}


def admin_password(password_file: str | None) -> str:
    """The password the admin signs in with, from ``password_file`` or the environment."""
    if password_file:
        value = private_file(Path(password_file), "password_file").read_text().strip()
        where = f"password_file={password_file}"
    else:
        value = os.environ.get(ADMIN_PASSWORD_ENV, "").strip()
        where = ADMIN_PASSWORD_ENV
    if not value:
        raise ConfigError(
            "admin password",
            f"not set: export {ADMIN_PASSWORD_ENV}=<a password of {MIN_LENGTH}+ characters>, "
            "or pass password_file=<a file only you can read>; the server never starts with "
            "a default password",
        )
    if value.lower() in WEAK or len(value) < MIN_LENGTH:
        raise ConfigError(
            "admin password",
            f"the one in {where} is too easy to guess: use {MIN_LENGTH} characters or more, "
            "not a default",
        )
    return value


def private_file(path: Path, key: str) -> Path:
    """``path``, refused unless it is a file that only its owner, this user, can read."""
    try:
        info = path.stat()
    except OSError as exc:
        raise ConfigError(key, f"cannot read {path} ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(key, f"{path} is not a file")
    if info.st_mode & 0o077:
        raise ConfigError(
            key,
            f"{path} can be read by others (mode {stat.S_IMODE(info.st_mode):o}): chmod 600 {path}",
        )
    if info.st_uid != os.geteuid():
        raise ConfigError(key, f"{path} belongs to another user: use a file of your own")
    return path


def kept(folder: Path, name: str) -> str:
    """A random secret kept in ``<folder>/secrets/<name>`` (mode 600), made on first use."""
    path = secret_path(folder, name)
    if path.exists():
        return private_file(path, f"{folder}/secrets").read_text().strip()
    value = secrets.token_urlsafe(24)
    write_private(path, value)
    return value


def secret_path(folder: Path, name: str) -> Path:
    directory = folder / "secrets"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory / name


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by its owner only from the first byte."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
