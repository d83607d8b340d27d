"""The operator's rotation settings (the webhook allow-list is checked by `_allow_list`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from tenantvault._allow_list import check_allow_prefix, is_allowed_url
from tenantvault._exceptions import ConfigurationError

__all__ = [
    "DEFAULT_TICK_SECONDS",
    "RotationSettings",
    "is_allowed_url",
]

# How often the scheduler looks for due rotations (Vault's static-role loop ticks every 5 s).
DEFAULT_TICK_SECONDS: Final = 5.0
DEFAULT_WEBHOOK_TIMEOUT_SECONDS: Final = 10.0
# A hook answers `{"data": {...}}` with one new value: 64 KiB is far more than any API key.
DEFAULT_WEBHOOK_MAX_RESPONSE_BYTES: Final = 64 * 1024
# A rotation holds its lease this long and renews it before every phase; an instance that
# dies mid-rotation frees the secret for others when it runs out.
DEFAULT_LEASE_SECONDS: Final = 120
DEFAULT_RETRY_BASE_SECONDS: Final = 10
DEFAULT_RETRY_MAX_SECONDS: Final = 3600
DEFAULT_MAX_CONCURRENT: Final = 8


@dataclass(frozen=True, slots=True)
class RotationSettings:
    """What the operator decides about KV rotation (`serve --rotation-webhook-allow`).

    `webhook_allow` lists the URL prefixes a tenant's webhook rotator may call (none: the
    webhook rotator is refused); a tenant can point a hook nowhere else (no SSRF).
    """

    webhook_allow: tuple[str, ...] = ()
    webhook_timeout_seconds: float = DEFAULT_WEBHOOK_TIMEOUT_SECONDS
    webhook_max_response_bytes: int = DEFAULT_WEBHOOK_MAX_RESPONSE_BYTES
    tick_seconds: float = DEFAULT_TICK_SECONDS
    lease_seconds: int = DEFAULT_LEASE_SECONDS
    retry_base_seconds: int = DEFAULT_RETRY_BASE_SECONDS
    retry_max_seconds: int = DEFAULT_RETRY_MAX_SECONDS
    max_concurrent: int = DEFAULT_MAX_CONCURRENT

    def __post_init__(self) -> None:
        for prefix in self.webhook_allow:
            check_allow_prefix(prefix, flag="--rotation-webhook-allow")
        if self.webhook_timeout_seconds <= 0 or self.webhook_max_response_bytes <= 0:
            raise ConfigurationError("webhook timeout and response limit must be positive")
        if self.tick_seconds <= 0 or self.max_concurrent <= 0:
            raise ConfigurationError("rotation tick and concurrency must be positive")
        # Four phases, each bounded by the webhook timeout, must fit in one lease.
        if self.lease_seconds <= 4 * self.webhook_timeout_seconds:
            raise ConfigurationError("the rotation lease must outlast four webhook timeouts")
        if not 0 < self.retry_base_seconds <= self.retry_max_seconds:
            raise ConfigurationError("rotation retry delays must satisfy 0 < base <= max")
