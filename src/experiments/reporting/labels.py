"""Names for the configurations of one table: the settings that differ, and nothing cut.

A label holds only the keys whose values differ within its table: the backbone, phase,
dataset and optimizer first, by their names alone, then every other key as ``key=value``.
The legend under the table maps each label to the overrides its runs were started with.
"""

from __future__ import annotations

# The choices a configuration is first known by, shown by their value alone and in this order.
NAMED = ("backbone.name", "phase.name", "dataset.name", "optimizer.name")


def labels(configurations: list[tuple]) -> dict[tuple, str]:
    """Each configuration (a sorted tuple of ``(key, value)``) named by what sets it apart."""
    as_dicts = [dict(c) for c in configurations]
    keys = sorted({k for d in as_dicts for k in d})
    differing = [k for k in keys if len({d.get(k) for d in as_dicts}) > 1]
    ordered = [k for k in NAMED if k in differing] + [k for k in differing if k not in NAMED]
    named = {}
    for configuration, values in zip(configurations, as_dicts, strict=True):
        shown = [_setting(k, values.get(k, "-")) for k in ordered]
        fallback = [values.get(k, "?") for k in NAMED] + [f"lr={values.get('optimizer.lr')}"]
        named[configuration] = " ".join(shown or fallback)
    return named


def _setting(key: str, value: str) -> str:
    return short(value) if key in NAMED else f"{key}={short(value)}"


def short(value: str) -> str:
    """A param as logged, with a sampled float cut to 4 significant digits."""
    try:
        number = float(value)
    except ValueError:
        return value
    return f"{number:.4g}" if len(value) > 8 else value


def overrides(runs: list[dict]) -> str:
    """The command-line overrides the runs of one configuration share (seeds left out)."""
    found = [(row.get("overrides") or "").split() for row in runs]
    shared = [o for o in found[0] if all(o in other for other in found[1:])] if found else []
    kept = [o for o in shared if not o.startswith(("seed=", "hydra", "mlflow."))]
    return " ".join(kept) or "(the defaults)"


def legend(groups: list[dict]) -> str:
    """``label: overrides`` for each configuration, one per line."""
    lines = ["legend (label: the overrides its runs were started with):"]
    lines += [f"  {g['label']}: {overrides(g['runs'])}" for g in groups]
    return "\n".join(lines)
