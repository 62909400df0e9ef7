"""Summaries and histograms for the text exposition (not thread-safe: their owners lock).

``Summary`` keeps an exact count and sum, and quantiles over a sliding time window like
prometheus-cpp's defaults (``max_age`` 60 s in 5 age buckets: a quantile covers the last 48–60 s).
An observation goes to the newest age bucket and a query merges them all. Where prometheus-cpp keeps a
CKMS stream per age bucket (a rank-error bound), each bucket here is a log-bucketed sketch
(DDSketch-style): a reported quantile is within ``RELATIVE_ERROR`` of the value at the requested rank,
and a batch of observations is taken in with a few numpy calls. A CKMS merge in CPython would cost
tens of µs per request; the error part of ``summary_quantiles`` is accepted and not used.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

#: default ``summary_quantiles`` of Triton (quantile, allowed rank error)
DEFAULT_QUANTILES: tuple[tuple[float, float], ...] = ((0.5, 0.05), (0.9, 0.01), (0.95, 0.001), (0.99, 0.001), (0.999, 0.001))
RELATIVE_ERROR = 0.01
MAX_AGE_NS = 60 * 1_000_000_000
AGE_BUCKETS = 5

_GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
_INV_LOG_GAMMA = 1.0 / math.log(_GAMMA)
_ZERO = -(2**31)  # key of observations <= 0 (and of tiny positive ones)
_MIN_POSITIVE = 1e-9


def _key(value: float) -> int:
    if value <= _MIN_POSITIVE:
        return _ZERO
    return math.ceil(math.log(value) * _INV_LOG_GAMMA)


def _value(key: int) -> float:
    if key == _ZERO:
        return 0.0
    # the midpoint of (gamma^(k-1), gamma^k] in the relative sense: within RELATIVE_ERROR of both ends
    return 2.0 * _GAMMA**key / (_GAMMA + 1.0)


class Summary:
    """Exact ``_count``/``_sum``; windowed quantiles. ``observe`` takes the observation time (ns, monotonic)."""

    __slots__ = ("quantiles", "count", "sum", "_buckets", "_current", "_rotated_ns", "_interval_ns")

    def __init__(
        self, quantiles: Sequence[tuple[float, float]], now_ns: int, max_age_ns: int = MAX_AGE_NS, age_buckets: int = AGE_BUCKETS
    ) -> None:
        self.quantiles = tuple(q for q, _ in quantiles)
        self.count = 0
        self.sum = 0.0
        self._buckets: list[dict[int, int]] = [{} for _ in range(age_buckets)]
        self._current = 0
        self._rotated_ns = now_ns
        self._interval_ns = max(1, max_age_ns // age_buckets)

    def observe(self, value: float, now_ns: int) -> None:
        self.count += 1
        self.sum += value
        if now_ns - self._rotated_ns > self._interval_ns:
            self._rotate(now_ns)
        key = _key(value)
        bucket = self._buckets[self._current]  # the newest age bucket; queries merge them all
        bucket[key] = bucket.get(key, 0) + 1

    def observe_many(self, values: np.ndarray, times_ns: np.ndarray) -> None:
        """Record a batch (``values[i]`` observed at ``times_ns[i]``); those already out of the window are
        counted in ``_count``/``_sum`` only. The batch goes to the age bucket of its latest time."""
        if not len(values):
            return
        self.count += int(len(values))
        self.sum += float(values.sum())
        latest = int(times_ns.max())
        if latest - self._rotated_ns > self._interval_ns:
            self._rotate(latest)
        oldest_kept = self._rotated_ns - (len(self._buckets) - 1) * self._interval_ns
        recent = values[times_ns >= oldest_kept]
        if not len(recent):
            return
        positive = recent > _MIN_POSITIVE
        keys = np.full(len(recent), _ZERO, dtype=np.int64)
        keys[positive] = np.ceil(np.log(recent[positive]) * _INV_LOG_GAMMA).astype(np.int64)
        uniq, counts = np.unique(keys, return_counts=True)
        bucket = self._buckets[self._current]
        for k, c in zip(uniq.tolist(), counts.tolist()):
            bucket[k] = bucket.get(k, 0) + c

    def _rotate(self, now_ns: int) -> None:
        """Start a new age bucket per elapsed interval, dropping the oldest one each time."""
        n = len(self._buckets)
        steps = 0
        while now_ns - self._rotated_ns > self._interval_ns and steps < n:
            self._current = (self._current + 1) % n
            self._buckets[self._current] = {}
            self._rotated_ns += self._interval_ns
            steps += 1
        if now_ns - self._rotated_ns > self._interval_ns:  # idle for a whole window: start afresh
            self._rotated_ns = now_ns

    def values(self, now_ns: int) -> list[tuple[float, float]]:
        """``[(quantile, value)]`` over the window; NaN when the window is empty (as prometheus-cpp)."""
        if now_ns - self._rotated_ns > self._interval_ns:
            self._rotate(now_ns)
        bucket: dict[int, int] = {}
        for age in self._buckets:
            for k, c in age.items():
                bucket[k] = bucket.get(k, 0) + c
        total = sum(bucket.values())
        if not total:
            return [(q, math.nan) for q in self.quantiles]
        keys = sorted(bucket)
        out = []
        for q in self.quantiles:
            rank = max(1.0, q * total - 1e-9)  # nearest rank: the smallest value with at least q*n observations <= it
            seen = 0
            chosen = keys[-1]
            for k in keys:
                seen += bucket[k]
                if seen >= rank:
                    chosen = k
                    break
            out.append((q, _value(chosen)))
        return out


class Histogram:
    """Cumulative-bucket histogram: ``le`` upper bounds (sorted, ``+Inf`` implied), count and sum."""

    __slots__ = ("bounds", "counts", "count", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(sorted(float(b) for b in bounds))
        self.counts = [0] * len(self.bounds)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.count += 1
        self.sum += value
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1
                break

    def cumulative(self) -> list[tuple[float, int]]:
        """``[(le, cumulative count)]`` including ``+Inf``."""
        out = []
        running = 0
        for bound, c in zip(self.bounds, self.counts):
            running += c
            out.append((bound, running))
        out.append((math.inf, self.count))
        return out


def parse_quantiles(text: str) -> tuple[tuple[float, float], ...]:
    """Triton's ``summary_quantiles`` form ``"0.5:0.05,0.9:0.01"``; raises ValueError on a bad entry."""
    out = []
    for part in text.replace(" ", ",").split(","):
        if not part:
            continue
        q, sep, err = part.partition(":")
        if not sep:
            raise ValueError(f"invalid summary quantile '{part}': expected <quantile>:<error>")
        qv, ev = float(q), float(err)
        if not 0.0 <= qv <= 1.0:
            raise ValueError(f"invalid summary quantile '{part}': the quantile must be within [0, 1]")
        out.append((qv, ev))
    return tuple(out)


__all__ = ["DEFAULT_QUANTILES", "Histogram", "RELATIVE_ERROR", "Summary", "parse_quantiles"]
