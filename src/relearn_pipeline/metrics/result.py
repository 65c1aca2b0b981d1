"""The shape every metric returns: one aggregate figure plus the per-sample values behind it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class MetricResult:
    """An aggregate ``value`` and the ``per_sample`` values it summarises (same order as the input)."""

    value: float
    per_sample: list[float] = field(default_factory=list)


def mean(values: list[float]) -> float:
    """Arithmetic mean, NaN for no values (an empty split has no figure, not a zero)."""
    return math.fsum(values) / len(values) if values else math.nan
