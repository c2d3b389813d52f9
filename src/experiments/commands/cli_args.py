"""``key=value`` arguments for the small commands (compare, predict), checked against a schema."""

from __future__ import annotations

import logging
import sys
from typing import NoReturn

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from experiments.config import keys
from experiments.errors import ConfigError, ExperimentError, first_line

log = logging.getLogger("experiments")


def parse(argv: list[str], schema: type, prog: str, examples: tuple[str, ...] = ()):
    """Merge ``key=value`` items onto dataclass ``schema``; unknown keys and bad types fail.

    ``--help`` prints each key with its default and the comment on its line in ``schema``,
    then ``examples`` (argument lists for ``python -m prog``).
    """
    items = []
    for arg in argv:
        if arg in ("-h", "--help"):
            print(_help(schema, prog, examples))
            raise SystemExit(0)
        if "=" not in arg:
            raise ConfigError(arg, "arguments are key=value pairs (see --help)")
        items.append(arg)
    base = OmegaConf.structured(schema)
    try:
        return OmegaConf.merge(base, OmegaConf.from_dotlist(items))
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "argument"
        raise ConfigError(str(key), first_line(exc)) from None


def _help(schema: type, prog: str, examples: tuple[str, ...]) -> str:
    lines = [f"usage: python -m {prog} key=value ...", "", "keys (default):"]
    for key, _, default, meaning in keys.schema_keys(schema):
        lines.append(f"  {key}={keys.shown(default):<{30 - len(key)}} {meaning}")
    lines += ["", "examples:", *(f"  python -m {prog} {example}" for example in examples)]
    return "\n".join(lines)


def run_command(function, argv: list[str] | None = None) -> None:
    """Call ``function(argv)``; a user error becomes one line on stderr and exit status 2."""
    try:
        code = function(sys.argv[1:] if argv is None else argv)
    except ExperimentError as exc:
        exit_on_error(exc)
    raise SystemExit(code or 0)


def print_error(exc: ExperimentError, *, to_log: bool = False) -> None:
    """A user error as one line on stderr; with ``to_log``, in the job's log file too.

    Only in the file: Hydra's console handler would print it a second time, as a
    ``[ERROR]`` line above the ``error:`` one.
    """
    if to_log:
        _to_log_files(f"{exc}")
    print(f"error: {exc}", file=sys.stderr)


def _to_log_files(message: str) -> None:
    """``message`` as an ERROR record, to the log's file handlers alone."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, "%s", (message,), None)
    logger = log
    while logger is not None:
        for handler in logger.handlers:
            if isinstance(handler, logging.FileHandler) and record.levelno >= handler.level:
                handler.handle(record)
        logger = logger.parent if logger.propagate else None


def exit_on_error(exc: ExperimentError, *, to_log: bool = False) -> NoReturn:
    """Say what is wrong in one line and exit with status 2, the command line's for bad input."""
    print_error(exc, to_log=to_log)
    raise SystemExit(2) from None
