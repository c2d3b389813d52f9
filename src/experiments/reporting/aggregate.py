"""Runs that differ only in their seed, aggregated into configurations, each tested
against the best one (``stats`` says how)."""

from __future__ import annotations

import csv
import io

from experiments.metrics import lower_is_better, sort_key
from experiments.reporting import stats

AGGREGATED = ("test_accuracy", "best_val_accuracy")  # shown for every configuration


def configurations(table: list[dict], metric: str) -> list[dict]:
    """Runs that differ only in their seed, aggregated; best first by the mean of ``metric``.

    Each has ``label`` (what sets it apart), ``runs``, a ``stats.Spread`` per aggregated
    metric, and ``vs_best``: "best", "≈ best" (p >= 0.05), "worse", or "?" (no test).
    """
    key = sort_key(metric)
    finished = [row for row in table if row["status"] == "FINISHED" and row.get(key) is not None]
    grouped: dict[tuple, list[dict]] = {}
    for row in finished:
        grouped.setdefault(row["configuration"], []).append(row)
    labels = _labels(list(grouped))
    groups = []
    for configuration, members in grouped.items():
        group = {"label": labels[configuration], "runs": members, "key": key}
        for name in dict.fromkeys([*AGGREGATED, key]):
            values = [row[name] for row in members if row.get(name) is not None]
            group[name] = stats.spread(values) if values else None
        groups.append(group)
    lower = lower_is_better(metric)
    groups.sort(key=lambda g: g[key].mean if lower else -g[key].mean)
    for group in groups:
        group["p_value"] = _p_value(groups[0], group, key) if group is not groups[0] else None
        group["vs_best"] = _verdict(group, groups[0])
    return groups


# The choices a configuration is first known by, shown by their value alone and in this order.
NAMED = ("backbone.name", "phase.name", "dataset.name", "optimizer.name")
SHOWN = 5  # settings in a label at most


def _labels(configurations: list[tuple]) -> dict[tuple, str]:
    """Each configuration named by the settings that differ between them: the backbone,
    phase, dataset and optimizer first (by their names), then other keys (``lr=0.003``)."""
    as_dicts = [dict(c) for c in configurations]
    keys = sorted({k for d in as_dicts for k in d})
    differing = [k for k in keys if len({d.get(k) for d in as_dicts}) > 1]
    ordered = [k for k in NAMED if k in differing] + [k for k in differing if k not in NAMED]
    labels = {}
    for configuration, values in zip(configurations, as_dicts, strict=True):
        shown = [_setting(k, values.get(k, "-")) for k in ordered[:SHOWN]]
        if len(ordered) > SHOWN:
            shown.append("...")
        fallback = [values.get(k, "?") for k in NAMED] + [f"lr={values.get('optimizer.lr')}"]
        labels[configuration] = " ".join(shown or fallback)
    return labels


def _setting(key: str, value: str) -> str:
    return _short(value) if key in NAMED else f"{key}={_short(value)}"


def _short(value: str) -> str:
    """A param as logged, with a sampled float cut to 4 significant digits."""
    try:
        number = float(value)
    except ValueError:
        return value
    return f"{number:.4g}" if len(value) > 8 else value


def _by_seed(group: dict, key: str) -> dict[int, float]:
    return {int(row["seed"]): row[key] for row in group["runs"] if row.get("seed") is not None}


def _p_value(best: dict, other: dict, key: str) -> float | None:
    """Paired across shared seeds; else, for one accuracy each, a test on their counts."""
    paired = stats.paired_p_value(_by_seed(best, key), _by_seed(other, key))
    if paired is not None or best[key].n > 1 or other[key].n > 1:
        return paired
    part = "test" if key.startswith("test_") else "val"
    sizes = [group["runs"][0]["sizes"].get(part) for group in (best, other)]
    if not key.endswith("accuracy") or None in sizes:
        return None
    return stats.two_proportion_p_value(best[key].mean, sizes[0], other[key].mean, sizes[1])


def _verdict(group: dict, best: dict) -> str:
    if group is best:
        return "best"
    if group["p_value"] is None:
        return "?"
    return "≈ best" if group["p_value"] >= stats.ALPHA else "worse"


def champion(groups: list[dict]) -> dict | None:
    """The run that stands for the best configuration: its best seed by the ranking metric."""
    if not groups:
        return None
    best, key = groups[0], groups[0]["key"]
    lower = lower_is_better(key)
    return sorted(best["runs"], key=lambda row: row[key] if lower else -row[key])[0]


def fixed_width(headers: list[str], cells: list[list[str]]) -> str:
    """Columns padded to their widest cell, under a header and a rule."""
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = [
        "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def _cell(spread: stats.Spread | None) -> list[str]:
    if spread is None:
        return ["-", "-", "-"]
    return [f"{spread.mean:.4f} ± {spread.std:.4f}", f"{spread.low:.4f}", f"{spread.high:.4f}"]


def to_text(groups: list[dict], metric: str) -> str:
    """The configurations as a fixed-width table, best first by the mean of ``metric``."""
    if not groups:
        return "no finished runs to aggregate"
    names = list(dict.fromkeys([*AGGREGATED, groups[0]["key"]]))
    headers = ["configuration", "n"]
    for name in names:
        short = name.replace("accuracy", "acc").replace("best_val", "best_val")
        headers += [f"{short} mean ± sd", "min", "max"]
    headers += ["p vs best", "vs best"]
    cells = []
    for group in groups:
        row = [group["label"], str(len(group["runs"]))]
        for name in names:
            row += _cell(group[name])
        p = group["p_value"]
        row += ["-" if p is None else f"{p:.3f}", group["vs_best"]]
        cells.append(row)
    title = (
        f"{len(groups)} configuration(s), runs that differ only in seed aggregated, "
        f"best first by mean {groups[0]['key']}:"
    )
    return title + "\n" + fixed_width(headers, cells)


def to_csv(groups: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    names = list(dict.fromkeys([*AGGREGATED, *(g["key"] for g in groups[:1])]))
    header = ["configuration", "n"]
    for name in names:
        header += [f"{name}_mean", f"{name}_std", f"{name}_min", f"{name}_max"]
    writer.writerow([*header, "p_vs_best", "vs_best", "run_ids"])
    for group in groups:
        row = [group["label"], len(group["runs"])]
        for name in names:
            spread = group[name]
            row += [spread.mean, spread.std, spread.low, spread.high] if spread else [""] * 4
        p = group["p_value"]
        ids = " ".join(r["run_id"] for r in group["runs"])
        writer.writerow([*row, "" if p is None else p, group["vs_best"], ids])
    return out.getvalue()
