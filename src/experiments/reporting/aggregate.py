"""Runs that differ only in their seed, aggregated into configurations, each tested
against the best one (``stats`` says how), with their cost and their Pareto fronts.

Every function here works on the runs of one evaluation set (``evaluation_sets``).
"""

from __future__ import annotations

import csv
import io

from experiments.metrics import lower_is_better, sort_key
from experiments.reporting import labels, pareto, stats

AGGREGATED = ("test_accuracy", "best_val_accuracy")  # shown for every configuration
COSTS = ("latency_ms", "size_mb", "macs", "throughput_ips", "epoch_time_mean_s", "test_ece")
SMALL_SET = 100  # below this many images, an accuracy ranks by the low end of its interval


def configurations(table: list[dict], metric: str, predictions=None) -> list[dict]:
    """Runs that differ only in their seed, aggregated; best first by ``metric``.

    Each has ``label`` (what sets it apart), ``runs``, a ``stats.Spread`` per aggregated
    metric and cost, ``interval`` (95% Wilson, accuracies), ``fronts``, and ``vs_best``:
    "best", "≈ best" (Holm-adjusted p >= 0.05), "worse", or "?" (no test; ``method`` says
    why). ``predictions(run_id, part)`` gives a run's saved per-image predictions.
    """
    key = sort_key(metric)
    finished = [row for row in table if row["status"] == "FINISHED" and row.get(key) is not None]
    grouped: dict[tuple, list[dict]] = {}
    for row in finished:
        grouped.setdefault(row["configuration"], []).append(row)
    named = labels.labels(list(grouped))
    groups = []
    for configuration, members in grouped.items():
        group = {"label": named[configuration], "runs": members, "key": key}
        for name in dict.fromkeys([*AGGREGATED, key, *COSTS]):
            values = [row[name] for row in members if row.get(name) is not None]
            group[name] = stats.spread(values) if values else None
        group["size"] = _size(members, key)
        group["interval"] = _interval(group, key)
        groups.append(group)
    groups.sort(key=_rank(key))
    _test_against_best(groups, key, predictions)
    pareto.mark(groups, key if key.endswith("accuracy") else "test_accuracy")
    return groups


def _size(members: list[dict], key: str) -> int | None:
    """How many images ``key`` was measured on (test or validation split)."""
    part = "test" if key.startswith("test_") else "val"
    return members[0]["sizes"].get(part)


def _interval(group: dict, key: str) -> tuple[float, float] | None:
    if not key.endswith("accuracy") or group["size"] is None or group[key] is None:
        return None
    return stats.wilson_interval(group[key].mean, group["size"])


def _rank(key: str):
    """Best first: by the mean, or by the interval's low end when the set is small."""
    lower = lower_is_better(key)

    def order(group):
        value = group[key].mean
        if group["interval"] is not None and (group["size"] or 0) < SMALL_SET:
            value = group["interval"][0]
        return value if lower else -value

    return order


def _test_against_best(groups: list[dict], key: str, predictions) -> None:
    if not groups:
        return
    best = groups[0]
    best.update(p_value=None, p_raw=None, method=None, vs_best="best")
    others = groups[1:]
    for group in others:
        group["p_raw"], group["method"] = _p_value(best, group, key, predictions)
    for group, adjusted in zip(others, stats.holm([g["p_raw"] for g in others]), strict=True):
        group["p_value"] = adjusted
        if adjusted is None:
            group["vs_best"] = "?"
        else:
            group["vs_best"] = "≈ best" if adjusted >= stats.ALPHA else "worse"


def _by_seed(group: dict, key: str) -> dict[int, float]:
    return {int(row["seed"]): row[key] for row in group["runs"] if row.get("seed") is not None}


PAIRED, MCNEMAR = "paired t-test over shared seeds", "McNemar's exact test on the images"


def _p_value(best: dict, other: dict, key: str, predictions) -> tuple[float | None, str]:
    """Paired across shared seeds; else, for one run each, image by image (McNemar)."""
    paired = stats.paired_p_value(_by_seed(best, key), _by_seed(other, key))
    if paired is not None:
        return paired, PAIRED
    if len(best["runs"]) > 1 or len(other["runs"]) > 1:
        return None, "fewer than 2 seeds shared with the best"
    if not key.endswith("accuracy"):
        return None, f"{key} is not an accuracy: no image-by-image test"
    if any(g["runs"][0].get("search_state") == "PRUNED" for g in (best, other)):
        return None, "pruned by its search, which saves no predictions"
    part = "test" if key.startswith("test_") else "val"
    saved = [
        predictions(g["runs"][0]["run_id"], part) if predictions else None for g in (best, other)
    ]
    if None in saved:
        return None, "no saved predictions (a run from before they were saved)"
    a, b = saved
    if str(a["digest"]) != str(b["digest"]) or len(a["label"]) != len(b["label"]):
        return None, "scored on different images (another seed's split)"
    return stats.mcnemar_p_value(
        a["predicted"] == a["label"], b["predicted"] == b["label"]
    ), MCNEMAR


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


def _cost(spread: stats.Spread | None, digits: int = 2) -> str:
    return "-" if spread is None else f"{spread.mean:.{digits}f}"


def to_text(groups: list[dict], metric: str) -> str:
    """The configurations as a fixed-width table, best first, then its notes and legend."""
    if not groups:
        return "no finished runs to aggregate"
    key = groups[0]["key"]
    names = list(dict.fromkeys([*AGGREGATED, key]))
    headers = ["configuration", "n"]
    for name in names:
        headers += [f"{name.replace('accuracy', 'acc')} mean ± sd", "min", "max"]
    headers += ["95% CI", "latency_ms", "size_MB", "MMACs", "ece", "front", "p vs best", "vs best"]
    cells = []
    for group in groups:
        row = [group["label"], str(len(group["runs"]))]
        for name in names:
            row += _cell(group[name])
        low_high = group["interval"]
        macs = group["macs"]
        row += [
            "-" if low_high is None else f"[{low_high[0]:.4f}, {low_high[1]:.4f}]",
            _cost(group["latency_ms"]),
            _cost(group["size_mb"]),
            "-" if macs is None else f"{macs.mean / 1e6:.1f}",
            _cost(group["test_ece"], 4),
            ",".join(group["fronts"]) or "-",
            "-" if group["p_value"] is None else f"{group['p_value']:.3f}",
            group["vs_best"],
        ]
        cells.append(row)
    title = (
        f"{len(groups)} configuration(s), runs that differ only in seed aggregated, "
        f"best first by mean {key}:"
    )
    notes = "\n".join(notes_for(groups))
    return f"{title}\n{fixed_width(headers, cells)}\n{notes}\n{labels.legend(groups)}"


def notes_for(groups: list[dict]) -> list[str]:
    """What the table's intervals, tests and marks mean, and how it was ranked."""
    key, size = groups[0]["key"], groups[0]["size"]
    methods = sorted({g["method"] for g in groups[1:] if g["method"] in (PAIRED, MCNEMAR)})
    tested = sum(g["p_raw"] is not None for g in groups[1:])
    part = "test" if key.startswith("test_") else "validation"
    lines = []
    if groups[0]["interval"] is not None:
        lines.append(
            f"95% CI: Wilson score interval of the mean {key} on the {size:,} {part} images."
        )
    if methods:
        lines.append(
            f"p vs best: {'; '.join(methods)}; Holm-adjusted over {tested} comparison(s). "
            "≈ best: p >= 0.05."
        )
    for group in groups[1:]:
        if group["p_raw"] is None:
            lines.append(f"?: {group['label']}: not tested ({group['method']}).")
    lines.append(
        "front: on the accuracy–latency (latency) or accuracy–size (size) Pareto front; "
        "latency at batch 1, median of 50 calls; MMACs: millions of multiply-adds per image."
    )
    if key.endswith("accuracy") and size is not None and size < SMALL_SET:
        lines.append(
            f"Only {size} {part} images: each accuracy is uncertain by up to "
            f"±{_half_width(size):.0%}, so the table ranks by the low end of the 95% CI."
        )
    return lines


def _half_width(n: int) -> float:
    low, high = stats.wilson_interval(0.5, n)
    return (high - low) / 2


def to_csv(groups: list[dict], evaluation_set: str = "") -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    write_csv_rows(writer, groups, evaluation_set, header=True)
    return out.getvalue()


def write_csv_rows(writer, groups: list[dict], evaluation_set: str, header: bool) -> None:
    names = list(dict.fromkeys([*AGGREGATED, *(g["key"] for g in groups[:1])]))
    if header:
        columns = ["evaluation_set", "configuration", "n"]
        for name in names:
            columns += [f"{name}_mean", f"{name}_std", f"{name}_min", f"{name}_max"]
        columns += ["ci95_low", "ci95_high", *(f"{c}_mean" for c in COSTS)]
        writer.writerow(
            [*columns, "fronts", "p_vs_best", "p_unadjusted", "test", "vs_best", "run_ids"]
        )
    for group in groups:
        row = [evaluation_set, group["label"], len(group["runs"])]
        for name in names:
            spread = group[name]
            row += [spread.mean, spread.std, spread.low, spread.high] if spread else [""] * 4
        row += list(group["interval"] or ("", ""))
        row += [group[c].mean if group[c] else "" for c in COSTS]
        p, raw = group["p_value"], group["p_raw"]
        ids = " ".join(r["run_id"] for r in group["runs"])
        writer.writerow(
            [
                *row,
                " ".join(group["fronts"]),
                "" if p is None else p,
                "" if raw is None else raw,
                group["method"] or "",
                group["vs_best"],
                ids,
            ]
        )
