"""``hydra.sweeper.params`` and the command line's sweeps as Optuna distributions.

Each value is read with Hydra's override grammar, as Hydra's own Optuna sweeper read it:
``interval(a, b)`` a float range, ``tag(log, interval(a, b))`` on a log scale,
``choice(x, y)`` a category, ``range(a, b, step)`` the values Python's range gives (ints,
or floats with a float step; a categorical when shuffled). Anything else is a fixed value
every trial gets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from experiments.errors import ConfigError


@dataclass
class Space:
    distributions: dict[str, Any] = field(default_factory=dict)  # name: optuna distribution
    fixed: list[str] = field(default_factory=list)  # overrides every trial gets as written

    def overrides(self, params: dict[str, Any]) -> list[str]:
        """A trial's command-line overrides: its sampled values, then the fixed ones."""
        return [f"{name}={_as_override(value)}" for name, value in params.items()] + self.fixed


def parse(params: dict[str, str] | None, arguments: list[str]) -> Space:
    """The search space of ``params`` (the sweeper's) and ``arguments`` (the command line's)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    lines = [f"{key}={value}" for key, value in (params or {}).items()] + list(arguments)
    space = Space()
    parser = OverridesParser.create()
    for line in lines:
        try:
            override = parser.parse_override(line)
        except HydraException as exc:
            raise ConfigError("hydra.sweeper.params", f"cannot read {line!r}: {exc}") from None
        name = override.get_key_element()
        space.fixed = [f for f in space.fixed if f.partition("=")[0] != name]
        space.distributions.pop(name, None)  # the command line's wins over the preset's
        if override.is_sweep_override():
            space.distributions[name] = distribution(override)
        else:
            space.fixed.append(override.input_line)
    return space


def distribution(override):
    """One sweep override (choice, range, interval, with or without ``log``) as a distribution."""
    from hydra.core.override_parser.types import Transformer
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    value = override.value()
    if override.is_choice_sweep() or (override.is_range_sweep() and value.shuffle):
        return CategoricalDistribution(list(override.sweep_iterator(Transformer.encode)))
    if override.is_range_sweep():
        values = list(override.sweep_iterator())
        if not values:
            raise ConfigError(override.input_line, "this range is empty")
        if all(isinstance(v, int) for v in (value.start, value.stop, value.step)):
            return IntDistribution(values[0], values[-1], step=value.step)
        return FloatDistribution(values[0], values[-1], step=value.step)
    if override.is_interval_sweep():  # Hydra reads an interval's ends as floats
        return FloatDistribution(value.start, value.end, log="log" in value.tags)
    raise ConfigError(
        override.input_line, "use interval(), tag(log, interval()), choice() or range()"
    )


def _as_override(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)  # a category is kept as Hydra encoded it
