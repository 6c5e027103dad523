"""Allowed numeric ranges of config fields, checked by the loader (so `goodhart validate` sees them).

A field declares its range in its metadata: `metadata={"help": ..., "range": (lo, hi)}` with
inclusive bounds (None = unbounded), or `Range(lo, hi, lo_open=True)` for an open bound such as
a learning rate (> 0). A value outside it is one ConfigError line naming the field and the range.
Why in the config layer: a negative batch size used to train 0 steps and exit 0, a zero one
ended in a traceback; both are knowable before any work starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Range:
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def __contains__(self, value: float) -> bool:
        if isinstance(value, float) and math.isnan(value):
            return False
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        return self.hi is None or (value < self.hi if self.hi_open else value <= self.hi)

    def __str__(self) -> str:
        lo = "-inf" if self.lo is None else f"{self.lo:g}"
        hi = "inf" if self.hi is None else f"{self.hi:g}"
        left = "(" if self.lo_open or self.lo is None else "["
        right = ")" if self.hi_open or self.hi is None else "]"
        return f"{left}{lo}, {hi}{right}"


def as_range(spec: Any) -> Range | None:
    """A field's `range` metadata as a Range: a Range, an inclusive (lo, hi) tuple, or None."""
    if spec is None or isinstance(spec, Range):
        return spec
    lo, hi = spec
    return Range(lo, hi)


def range_problem(spec: Any, value: Any) -> str | None:
    """Why `value` is outside the range `spec` (None when inside, unset, or not a number)."""
    allowed = as_range(spec)
    if allowed is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if value in allowed else f"{value:g} is out of range (allowed: {allowed})"


POSITIVE = Range(0, None, lo_open=True)  # > 0
AT_LEAST_1 = (1, None)
NON_NEGATIVE = (0, None)
UNIT = (0, 1)  # a probability or fraction
