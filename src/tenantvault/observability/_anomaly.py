"""Anomaly alerts that explain themselves: per-token and per-tenant baselines, EWMA + z-score.

Time is cut into intervals (`interval_seconds`, default one minute). For every token
(by accessor) the detector counts, in the current interval, its reads and the distinct
secrets it read; for every tenant its requests and denials. When an interval closes, its
counts update an exponentially weighted mean and variance (`alpha`): the baseline.
Idle intervals are not counted in a token's baseline (it describes the token when active).

An alert fires, at most once per subject and kind per interval, as soon as the current
interval's count passes the baseline:

- `distinct_secrets`: a token read more distinct secrets than `mean + z * std` (std
  floored at `min_std`), and at least `min_distinct`, after `warmup` intervals of history;
- `new_client_address`: a token with `warmup` intervals of history sent a request from an
  address it never used before;
- `denial_spike`: a tenant's denials passed `mean + z * std` and `min_denials`.

Each alert carries the numbers that triggered it (observed, mean, std, z-score, threshold,
intervals of history). Memory is bounded: at most `max_tokens` tokens and `max_tenants`
tenants are tracked (least recently seen dropped), `max_addresses` addresses per token,
`max_alerts` alerts kept. Every step is a few dict operations on the event loop; the server
scores requests in batches off the request path (`score`, each request with the clock
reading of when it ended, so batching changes no interval, number or alert).
"""

from __future__ import annotations

import math
import operator
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from tenantvault._clock import Clock, format_time
from tenantvault._observe import RequestOutcome

__all__ = ["Alert", "AlertKind", "AnomalyDetector", "AnomalySettings", "Baseline"]

AlertKind = Literal["distinct_secrets", "new_client_address", "denial_spike"]
_NS: Final = 1_000_000_000
# Mounts whose reads are not secret reads (policies, tokens, health).
_NOT_SECRETS: Final = frozenset({"", "sys", "auth", "none"})
# Every field of an outcome the steps below read, but the tenant's name and the token's
# display name (read only when a subject is first seen or an alert is raised, which a
# repeated request never does). Fetched by name: reordering the tuple cannot break it.
_SCORED: Final = operator.itemgetter(
    *map(
        RequestOutcome._fields.index,
        (
            "tenant_uid",
            "accessor",
            "client_address",
            "operation",
            "mount",
            "status",
            "denied",
            "target",
        ),
    )
)


@dataclass(frozen=True, slots=True)
class AnomalySettings:
    """The detector's knobs; the defaults suit a minute-by-minute baseline."""

    interval_seconds: int = 60
    alpha: float = 0.3
    z: float = 4.0
    min_std: float = 1.0
    warmup: int = 5
    min_distinct: int = 10
    min_denials: int = 10
    max_tokens: int = 10_000
    max_tenants: int = 10_000
    max_addresses: int = 16
    max_alerts: int = 1_000
    max_distinct_per_interval: int = 10_000

    def __post_init__(self) -> None:
        if self.interval_seconds < 1 or not 0 < self.alpha <= 1 or self.z <= 0:
            raise ValueError("interval_seconds >= 1, 0 < alpha <= 1 and z > 0 are required")


@dataclass(slots=True)
class Baseline:
    """An EWMA of one count per interval, with its variance."""

    mean: float = 0.0
    variance: float = 0.0
    intervals: int = 0

    def update(self, value: float, alpha: float) -> None:
        if self.intervals == 0:
            self.mean, self.variance = value, 0.0
        else:
            # West's EWMA variance: the squared deviation from the previous mean, weighted.
            deviation = value - self.mean
            self.mean += alpha * deviation
            self.variance = (1 - alpha) * (self.variance + alpha * deviation * deviation)
        self.intervals += 1

    def threshold(self, z: float, min_std: float) -> tuple[float, float]:
        """(std, mean + z * std) with std floored at `min_std`."""
        std = max(math.sqrt(self.variance), min_std)
        return std, self.mean + z * std


@dataclass(slots=True)
class _Token:
    tenant: str | None
    tenant_uid: str
    display_name: str
    interval: int = -1
    reads: int = 0
    distinct: set[str] = field(default_factory=set)
    read_rate: Baseline = field(default_factory=Baseline)
    distinct_baseline: Baseline = field(default_factory=Baseline)
    addresses: OrderedDict[str, None] = field(default_factory=OrderedDict)
    alerted: set[str] = field(default_factory=set)
    # (std, threshold) of `distinct_baseline`, worked out once per interval (it changes
    # only when an interval closes); None until the first read that needs it.
    limit: tuple[float, float] | None = None


@dataclass(slots=True)
class _Tenant:
    uid: str
    interval: int = -1
    requests: int = 0
    denials: int = 0
    denial_baseline: Baseline = field(default_factory=Baseline)
    alerted: bool = False


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert, with the numbers that triggered it."""

    id: int
    kind: AlertKind
    time_ns: int
    tenant: str | None
    tenant_uid: str
    # The token's accessor and display name ('' for a tenant-wide alert).
    accessor: str
    display_name: str
    message: str
    numbers: dict[str, float | int | str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "time": format_time(self.time_ns),
            "tenant": self.tenant if self.tenant is not None else "",
            "accessor": self.accessor,
            "display_name": self.display_name,
            "message": self.message,
            "numbers": dict(self.numbers),
        }


class AnomalyDetector:
    """A `RequestObserver` keeping baselines and raising `Alert`s (see the module)."""

    def __init__(self, *, clock: Clock, settings: AnomalySettings | None = None) -> None:
        self._clock = clock
        self.settings = settings if settings is not None else AnomalySettings()
        self._tokens: OrderedDict[str, _Token] = OrderedDict()
        self._tenants: OrderedDict[str, _Tenant] = OrderedDict()
        self._alerts: deque[Alert] = deque(maxlen=self.settings.max_alerts)
        self._next_id = 1
        self.counts: dict[str, int] = {}
        # Called with each new alert (the webhook queue); must not block.
        self.listeners: list[Callable[[Alert], None]] = []

    # -- the observer ----------------------------------------------------------------------

    def observe(self, outcome: RequestOutcome) -> None:
        """Account one request, now; may raise alerts (stored, and passed to `listeners`)."""
        self.score(((self._clock(), outcome),))

    def score(self, batch: Iterable[tuple[int, RequestOutcome]]) -> None:
        """Account a batch of requests in order, each with the clock reading of when it
        ended; may raise alerts (stored, and passed to `listeners`)."""
        span = self.settings.interval_seconds * _NS
        # Runs of one tenant's or one token's requests (the common case) look it up once.
        tenant_key: str | None = None
        tenant: _Tenant | None = None
        token_key: str | None = None
        token: _Token | None = None
        # The last request scored (its fields; None after a denial), its interval as
        # [start, end) in clock readings, and whether it counted a read.
        last: tuple[object, ...] | None = None
        start = end = 0
        read = False
        for now, outcome in batch:
            if outcome.refused:
                continue  # refused before the Core: no tenant, no token to keep a baseline for
            scored = _SCORED(outcome)
            if scored == last and start <= now < end:
                # The same request again in the same interval (a client reading one secret
                # over and over): its address is known and its secret counted, so no step
                # below could alert; only the counts move. Denials take the full path (a
                # denial can cross the tenant's threshold): `last` is None after one.
                if tenant is not None:
                    tenant.requests += 1
                if read and token is not None:
                    token.reads += 1
                continue
            interval = now // span
            start = interval * span
            end = start + span
            last = None if outcome.denied else scored
            read = False
            key = outcome.tenant_uid or "root"
            if tenant is None or key != tenant_key:
                tenant, tenant_key = self._tenant(key, outcome.tenant_uid), key
            self._tenant_step(tenant, outcome, interval, now)
            if outcome.accessor:
                if token is None or outcome.accessor != token_key:
                    token, token_key = self._token(outcome), outcome.accessor
                read = self._token_step(token, outcome, interval, now)

    def _tenant(self, key: str, uid: str) -> _Tenant:
        """The tenant's state, created if new, marked as the most recently seen."""
        tenant = self._tenants.get(key)
        if tenant is None:
            tenant = self._tenants[key] = _Tenant(uid=uid)
            if len(self._tenants) > self.settings.max_tenants:
                self._tenants.popitem(last=False)
        else:
            self._tenants.move_to_end(key)
        return tenant

    def _token(self, outcome: RequestOutcome) -> _Token:
        """The token's state, created if new, marked as the most recently seen."""
        key = outcome.accessor
        token = self._tokens.get(key)
        if token is None:
            token = self._tokens[key] = _Token(
                tenant=outcome.tenant,
                tenant_uid=outcome.tenant_uid,
                display_name=outcome.display_name,
            )
            if len(self._tokens) > self.settings.max_tokens:
                self._tokens.popitem(last=False)
        else:
            self._tokens.move_to_end(key)
        return token

    def _tenant_step(
        self, tenant: _Tenant, outcome: RequestOutcome, interval: int, now: int
    ) -> None:
        settings = self.settings
        if tenant.interval != interval:
            if tenant.interval >= 0:
                tenant.denial_baseline.update(tenant.denials, settings.alpha)
                # Intervals without any request had no denials: count them as zeros, so a
                # tenant quiet for a while does not keep a stale, high baseline (capped).
                for _ in range(min(interval - tenant.interval - 1, 10)):
                    tenant.denial_baseline.update(0, settings.alpha)
            tenant.interval, tenant.requests, tenant.denials, tenant.alerted = interval, 0, 0, False
        tenant.requests += 1
        if not outcome.denied:
            return
        tenant.denials += 1
        baseline = tenant.denial_baseline
        if tenant.alerted or baseline.intervals < settings.warmup:
            return
        std, threshold = baseline.threshold(settings.z, settings.min_std)
        if tenant.denials > threshold and tenant.denials >= settings.min_denials:
            tenant.alerted = True
            self._raise(
                "denial_spike",
                now,
                outcome,
                accessor="",
                display_name="",
                message=(
                    f"{tenant.denials} denied requests this interval; the baseline is "
                    f"{baseline.mean:.1f} ± {std:.1f}"
                ),
                numbers={
                    "observed": tenant.denials,
                    "requests": tenant.requests,
                    "baseline_mean": round(baseline.mean, 3),
                    "baseline_std": round(std, 3),
                    "z_score": round((tenant.denials - baseline.mean) / std, 2),
                    "threshold": round(threshold, 3),
                    "intervals": baseline.intervals,
                    "interval_seconds": settings.interval_seconds,
                },
            )

    def _token_step(self, token: _Token, outcome: RequestOutcome, interval: int, now: int) -> bool:
        """Account one request of the token; True if it counted as a secret read."""
        settings = self.settings
        key = outcome.accessor
        if token.interval != interval:
            if token.interval >= 0:
                token.read_rate.update(token.reads, settings.alpha)
                token.distinct_baseline.update(len(token.distinct), settings.alpha)
            token.interval, token.reads = interval, 0
            token.distinct = set()
            token.alerted = set()
            token.limit = None
        history = token.distinct_baseline.intervals
        address = outcome.client_address
        if address:
            if address not in token.addresses:
                if history >= settings.warmup and "address" not in token.alerted:
                    token.alerted.add("address")
                    self._raise(
                        "new_client_address",
                        now,
                        outcome,
                        accessor=key,
                        display_name=token.display_name,
                        message=(
                            f"first request from {address} after {history} intervals from "
                            f"{len(token.addresses)} known address(es)"
                        ),
                        numbers={
                            "address": address,
                            "known_addresses": len(token.addresses),
                            "intervals": history,
                        },
                    )
                token.addresses[address] = None
                if len(token.addresses) > settings.max_addresses:
                    token.addresses.popitem(last=False)
            else:
                token.addresses.move_to_end(address)
        if outcome.operation != "read" or outcome.denied or outcome.status >= 400:
            return False
        if outcome.mount in _NOT_SECRETS or not outcome.target:
            return False
        token.reads += 1
        if len(token.distinct) < settings.max_distinct_per_interval:
            token.distinct.add(outcome.target)
        distinct = len(token.distinct)
        baseline = token.distinct_baseline
        if "distinct" in token.alerted or history < settings.warmup:
            return True
        if token.limit is None:
            token.limit = baseline.threshold(settings.z, settings.min_std)
        std, threshold = token.limit
        if distinct > threshold and distinct >= settings.min_distinct:
            token.alerted.add("distinct")
            self._raise(
                "distinct_secrets",
                now,
                outcome,
                accessor=key,
                display_name=token.display_name,
                message=(
                    f"read {distinct} distinct secrets this interval; the baseline is "
                    f"{baseline.mean:.1f} ± {std:.1f}"
                ),
                numbers={
                    "observed": distinct,
                    "reads": token.reads,
                    "baseline_mean": round(baseline.mean, 3),
                    "baseline_std": round(std, 3),
                    "z_score": round((distinct - baseline.mean) / std, 2),
                    "threshold": round(threshold, 3),
                    "read_rate_mean": round(token.read_rate.mean, 3),
                    "intervals": history,
                    "interval_seconds": settings.interval_seconds,
                },
            )
        return True

    def _raise(
        self,
        kind: AlertKind,
        now: int,
        outcome: RequestOutcome,
        *,
        accessor: str,
        display_name: str,
        message: str,
        numbers: dict[str, float | int | str],
    ) -> None:
        alert = Alert(
            id=self._next_id,
            kind=kind,
            time_ns=now,
            tenant=outcome.tenant,
            tenant_uid=outcome.tenant_uid,
            accessor=accessor,
            display_name=display_name,
            message=message,
            numbers=numbers,
        )
        self._next_id += 1
        self._alerts.append(alert)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        for listener in self.listeners:
            listener(alert)

    # -- reading ---------------------------------------------------------------------------

    def alerts(self, *, tenant_uid: str | None = None, since_id: int = 0) -> Iterator[Alert]:
        """Alerts, oldest first; only one tenant incarnation's when `tenant_uid` is given."""
        for alert in self._alerts:
            if alert.id > since_id and (tenant_uid is None or alert.tenant_uid == tenant_uid):
                yield alert

    @property
    def tracked(self) -> tuple[int, int]:
        """(tokens, tenants) tracked now."""
        return len(self._tokens), len(self._tenants)
