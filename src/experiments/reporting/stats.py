"""The statistics behind a comparison: intervals for one run, tests between configurations.

- A run's accuracy on n test images is a proportion: its 95% interval is Wilson's score
  interval, which stays honest for small n (18 images give about ±20 points, 10,000
  about ±0.5) and never leaves [0, 1].
- Two configurations trained with the same seeds are compared by a paired t-test on the
  per-seed differences: the seed fixes the split, the initial weights and the order of
  the batches, so pairing removes what the seed alone explains.
- With fewer than two shared seeds there is nothing to pair: the two accuracies are then
  compared by a two-proportion z-test on their test counts. It ignores that both models
  saw the same images, which makes it conservative (slower to call a difference).

"Indistinguishable from the best" means the test's two-sided p-value is at least 0.05.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ALPHA = 0.05
Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


def wilson_interval(accuracy: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion ``accuracy`` measured on ``n`` items."""
    if n <= 0:
        return (0.0, 1.0)
    centre = (accuracy + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass
class Spread:
    n: int
    mean: float
    std: float  # the sample standard deviation (0 for one value)
    low: float
    high: float


def spread(values: list[float]) -> Spread:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return Spread(n, mean, std, min(values), max(values))


def paired_p_value(a: dict[int, float], b: dict[int, float]) -> float | None:
    """Two-sided p-value of a paired t-test on the seeds ``a`` and ``b`` share (None: < 2)."""
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        return None
    differences = [a[s] - b[s] for s in seeds]
    mean = sum(differences) / len(differences)
    sd = spread(differences).std
    if sd == 0:
        return 1.0 if mean == 0 else 0.0
    from scipy import stats

    t = mean / (sd / math.sqrt(len(differences)))
    return float(2 * stats.t.sf(abs(t), df=len(differences) - 1))


def two_proportion_p_value(p1: float, n1: int, p2: float, n2: int) -> float | None:
    """Two-sided p-value of a z-test that two proportions measured on n1 and n2 items differ."""
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0 if p1 == p2 else 0.0
    return math.erfc(abs(p1 - p2) / se / math.sqrt(2))
