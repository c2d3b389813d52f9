"""The configurations no other beats on both accuracy and cost: the Pareto fronts.

A configuration is on the accuracy–latency front when no other one of its table is at
least as accurate and at least as fast, and strictly better in one of the two; the same
for accuracy–size. Costs within 10% of each other count as equal (``TOLERANCE``).
The scatter plot draws each configuration's accuracy, with its 95%
interval, against its latency on a log axis, and the front as a step line.
"""

from __future__ import annotations

COSTS = {"latency": "latency_ms", "size": "size_mb"}  # front name: the cost metric it uses


# Two costs within 10% of each other are the same cost: two runs of the latency protocol
# on one quiet machine agree that closely, and the same network measured twice must not
# split into a "fast" and a "slow" one.
TOLERANCE = 0.10


def front(points: list[tuple[float, float] | None]) -> list[bool]:
    """Which ``(accuracy, cost)`` points no other point dominates (None: not on any front).

    Another point dominates when it is at least as accurate and not dearer (beyond
    ``TOLERANCE``), and better in one of the two: more accurate, or cheaper beyond it.
    """
    on = []
    for i, point in enumerate(points):
        if point is None:
            on.append(False)
            continue
        on.append(
            not any(_dominates(other, point) for j, other in enumerate(points) if j != i and other)
        )
    return on


def _dominates(other: tuple[float, float], point: tuple[float, float]) -> bool:
    accuracy, cost = point
    not_dearer = other[1] <= cost * (1 + TOLERANCE)
    cheaper = other[1] * (1 + TOLERANCE) < cost
    return other[0] >= accuracy and not_dearer and (other[0] > accuracy or cheaper)


def mark(groups: list[dict], accuracy_key: str) -> None:
    """Set ``group["fronts"]``: the names of the fronts (latency, size) each group is on."""
    for group in groups:
        group["fronts"] = []
    for name, metric in COSTS.items():
        points = []
        for group in groups:
            accuracy, cost = group.get(accuracy_key), group.get(metric)
            points.append(None if accuracy is None or cost is None else (accuracy.mean, cost.mean))
        for group, on in zip(groups, front(points), strict=True):
            if on:
                group["fronts"].append(name)


def scatter(panels: list[tuple[str, list[dict]]], accuracy_key: str):
    """One panel per evaluation set: accuracy (95% interval) against latency, front drawn."""
    import matplotlib.pyplot as plt

    from experiments.reporting import reports  # noqa: F401  sets the Agg backend

    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 4.5 * len(panels)), squeeze=False)
    for ax, (title, groups) in zip(axes[:, 0], panels, strict=True):
        shown = [g for g in groups if g.get(accuracy_key) and g.get("latency_ms")]
        for g in shown:
            x, y = g["latency_ms"].mean, g[accuracy_key].mean
            low, high = g.get("interval") or (y, y)
            colour = "tab:red" if "latency" in g["fronts"] else "tab:blue"
            ax.errorbar(x, y, yerr=[[y - low], [high - y]], fmt="o", color=colour, capsize=3)
            ax.annotate(g["label"], (x, y), xytext=(4, 4), textcoords="offset points", fontsize=7)
        line = sorted(
            (g["latency_ms"].mean, g[accuracy_key].mean) for g in shown if "latency" in g["fronts"]
        )
        if line:
            ax.step(
                *zip(*line, strict=True),
                where="post",
                color="tab:red",
                alpha=0.6,
                label="accuracy–latency front",
            )
            ax.legend(fontsize=8, loc="lower right")
        ax.set_xscale("log")
        ax.set_xlabel("latency at batch 1 (ms, median; log scale)")
        ax.set_ylabel(accuracy_key.replace("_", " "))
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig
