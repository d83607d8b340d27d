"""The numbers behind the metrics: counters, latency histograms and per-minute history.

Plain dicts and lists, updated on the event loop a batch at a time (`Metrics.record`): no
locks, no threads. Requests with the same labels are added as one `Histogram` of their
durations, so the work done per request is binning its duration. `prometheus_client`
renders them at scrape time (`_collector`); the dashboard reads them too.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "BUCKETS",
    "HISTORY_MINUTES",
    "Histogram",
    "History",
    "Series",
    "merged",
    "outcome_of",
]

# Latency buckets in seconds: from a cached read (~0.1 ms) to a slow upstream (10 s).
BUCKETS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
# How far back the dashboard's charts reach (one slot per minute).
HISTORY_MINUTES = 60


def outcome_of(status: int) -> str:
    """The `outcome` label of a status: success, denied (403), invalid (4xx), error (5xx)."""
    if status < 400:
        return "success"
    if status == 403:
        return "denied"
    return "invalid" if status < 500 else "error"


@dataclass(slots=True)
class Histogram:
    """Cumulative-at-render latency histogram: counts per bucket (last one is +Inf) and sum."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0

    @classmethod
    def of(cls, durations: Iterable[float]) -> Histogram:
        """A histogram of these durations (seconds)."""
        histogram = cls()
        counts, where = histogram.counts, bisect.bisect_left
        total = 0.0
        for seconds in durations:
            counts[where(BUCKETS, seconds)] += 1
            total += seconds
        histogram.total = total
        return histogram

    def merge(self, other: Histogram) -> None:
        for index, count in enumerate(other.counts):
            self.counts[index] += count
        self.total += other.total

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, float]]:
        """(le, cumulative count) pairs as Prometheus wants them, ending with +Inf."""
        running = 0
        pairs: list[tuple[str, float]] = []
        for bound, count in zip((*map(str, BUCKETS), "+Inf"), self.counts, strict=True):
            running += count
            pairs.append((bound, float(running)))
        return pairs

    def quantile(self, q: float) -> float | None:
        """The upper bound of the bucket holding the q-quantile (None if empty): the
        estimate `histogram_quantile` would give, without interpolation."""
        total = self.count
        if not total:
            return None
        rank = q * total
        running = 0
        for index, count in enumerate(self.counts):
            running += count
            if running >= rank:
                return BUCKETS[index] if index < len(BUCKETS) else BUCKETS[-1]
        return BUCKETS[-1]


@dataclass(slots=True)
class Series:
    """One label value's numbers (a tenant, `other`, or the root namespace)."""

    # (operation, mount, outcome) -> requests
    requests: dict[tuple[str, str, str], int] = field(default_factory=dict)
    # (operation, mount) -> latency
    latency: dict[tuple[str, str], Histogram] = field(default_factory=dict)
    total: int = 0

    def add(self, operation: str, mount: str, outcome: str, durations: Histogram) -> None:
        """Count the requests whose `durations` these are, all with these labels."""
        n = durations.count
        key = (operation, mount, outcome)
        self.requests[key] = self.requests.get(key, 0) + n
        histogram = self.latency.get((operation, mount))
        if histogram is None:
            histogram = self.latency[(operation, mount)] = Histogram()
        histogram.merge(durations)
        self.total += n

    @property
    def denied(self) -> int:
        return sum(n for (_, _, outcome), n in self.requests.items() if outcome == "denied")

    @property
    def errors(self) -> int:
        return sum(n for (_, _, outcome), n in self.requests.items() if outcome == "error")

    def latency_total(self) -> Histogram:
        merged = Histogram()
        for histogram in self.latency.values():
            merged.merge(histogram)
        return merged


class History:
    """Requests, errors and denials per minute over the last `HISTORY_MINUTES` (a ring).

    Four flat int arrays (about 2 KB), allocated on first use: one per tenant is kept, so
    its size is what bounds the tracked tenants' memory.
    """

    __slots__ = ("_counts", "_latency", "_minutes")

    def __init__(self, *, latency: bool = False) -> None:
        self._minutes: array[int] | None = None
        # requests, errors, denied: three rows of HISTORY_MINUTES, one array.
        self._counts: array[int] | None = None
        # Only the global history keeps a histogram per minute (p50/p99 over time).
        self._latency: list[Histogram | None] | None = [None] * HISTORY_MINUTES if latency else None

    def add(self, minute: int, outcome: str, durations: Histogram) -> None:
        """Count the requests of `durations` (one outcome) in `minute`."""
        n = durations.count
        minutes, counts = self._minutes, self._counts
        if minutes is None or counts is None:
            minutes = self._minutes = array("q", [-1]) * HISTORY_MINUTES
            counts = self._counts = array("q", [0]) * (3 * HISTORY_MINUTES)
        index = minute % HISTORY_MINUTES
        if minutes[index] != minute:
            minutes[index] = minute
            counts[index] = counts[HISTORY_MINUTES + index] = counts[
                2 * HISTORY_MINUTES + index
            ] = 0
            if self._latency is not None:
                self._latency[index] = Histogram()
        counts[index] += n
        if outcome == "error":
            counts[HISTORY_MINUTES + index] += n
        elif outcome == "denied":
            counts[2 * HISTORY_MINUTES + index] += n
        if self._latency is not None:
            histogram = self._latency[index]
            if histogram is not None:
                histogram.merge(durations)

    def points(self, now_minute: int) -> list[dict[str, float | int | None]]:
        """One point per minute, oldest first, ending with the current minute (zeros where
        nothing happened)."""
        points: list[dict[str, float | int | None]] = []
        minutes, counts = self._minutes, self._counts
        for minute in range(now_minute - HISTORY_MINUTES + 1, now_minute + 1):
            index = minute % HISTORY_MINUTES
            live = minutes is not None and counts is not None and minutes[index] == minute
            point: dict[str, float | int | None] = {
                "minute": minute,
                "requests": counts[index] if live and counts else 0,
                "errors": counts[HISTORY_MINUTES + index] if live and counts else 0,
                "denied": counts[2 * HISTORY_MINUTES + index] if live and counts else 0,
            }
            if self._latency is not None:
                histogram = self._latency[index] if live else None
                point["p50"] = histogram.quantile(0.5) if histogram else None
                point["p99"] = histogram.quantile(0.99) if histogram else None
            points.append(point)
        return points

    def sparkline(self, now_minute: int) -> list[int]:
        """Requests per minute, oldest first."""
        return [int(point["requests"] or 0) for point in self.points(now_minute)]


def merged(series: Iterable[Series]) -> Series:
    """The sum of several series (the whole server's)."""
    out = Series()
    for one in series:
        for key, count in one.requests.items():
            out.requests[key] = out.requests.get(key, 0) + count
        for pair, histogram in one.latency.items():
            out.latency.setdefault(pair, Histogram()).merge(histogram)
        out.total += one.total
    return out
