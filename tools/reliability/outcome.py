"""A scenario's result: the figures it measured (for benchmarks/reliability.md) and the criteria it failed."""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Outcome:
    name: str
    figures: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    table: list[dict[str, Any]] = field(default_factory=list)  # samples over time, when the scenario has them
    seconds: float = 0.0

    def check(self, ok: bool, failure: str) -> bool:
        """Record ``failure`` unless ``ok``; returns ok."""
        if not ok:
            self.failures.append(failure)
        return ok

    @property
    def held(self) -> bool:
        return not self.failures


def quarter_ratio(values: list[float]) -> float:
    """Mean of the last quarter of ``values`` over the mean of the first quarter (1.0 when too few)."""
    q = len(values) // 4
    if q == 0 or not values[:q] or statistics.fmean(values[:q]) == 0:
        return 1.0
    return statistics.fmean(values[-q:]) / statistics.fmean(values[:q])


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def number(values: dict[str, str], key: str, default: float = 0.0) -> float:
    """A /diagnostics value as a number (missing: ``default``)."""
    try:
        return float(values.get(key, default))
    except ValueError:
        return default
