"""The statistics behind a comparison: intervals for one run, tests between configurations.

- A run's accuracy on n test images is a proportion: its 95% interval is Wilson's score
  interval, which stays honest for small n (18 images give about ±20 points, 10,000
  about ±0.5) and never leaves [0, 1].
- Two configurations trained with the same seeds are compared by a paired t-test on the
  per-seed differences: the seed fixes the split, the initial weights and the order of
  the batches, so pairing removes what the seed alone explains.
- Two single runs scored on the same images are compared image by image: McNemar's exact
  test counts the images only one of them got right, and asks whether the split of those
  discordant pairs could be a fair coin's (Dietterich 1998). Both runs saw the same
  images, so a test for independent samples would be wrong.
- Several configurations tested against the best are several tests: their p-values are
  adjusted by Holm's step-down method, which keeps the chance of any false "worse"
  below 5% whatever the number of configurations.

"Indistinguishable from the best" means the adjusted two-sided p-value is at least 0.05.
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


def mcnemar_p_value(correct_a, correct_b) -> float:
    """Two-sided p-value of McNemar's exact test on two runs' right/wrong per image.

    ``correct_a`` and ``correct_b`` are booleans over the same images, in the same order.
    Only the discordant images count: under "equally accurate", the ones only ``a`` got
    right follow Binomial(discordant, 1/2).
    """
    only_a = sum(bool(a) and not bool(b) for a, b in zip(correct_a, correct_b, strict=True))
    only_b = sum(bool(b) and not bool(a) for a, b in zip(correct_a, correct_b, strict=True))
    if only_a + only_b == 0:
        return 1.0
    from scipy import stats

    return float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of ``p_values`` (None stays None: no test)."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(tested)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))  # never below an earlier one
        adjusted[i] = running
    return adjusted
