"""What `tidy-status` answers, in OpenBao 2.7.2's shape: every field, null until a tidy ran.

A run's settings are a full tidy config (`TIDY_DEFAULTS` and what the request or the
auto-tidy config set); the status repeats them beside the counts, as OpenBao's does. The
counts of what this engine never tidies (ACME accounts and orders, issuer associations)
are zero after a run; the store counts are null, as OpenBao leaves them unless it is told
to maintain them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from tenantvault._durations import format_duration

__all__ = ["TIDY_DEFAULTS", "TIDY_KINDS", "finished_status", "inactive_status", "settings_shown"]

TIDY_KINDS: Final = (
    "tidy_cert_store",
    "tidy_revoked_certs",
    "tidy_invalid_certs",
    "tidy_revoked_cert_issuer_associations",
    "tidy_expired_issuers",
    "tidy_move_legacy_ca_bundle",
    "tidy_acme",
)
# A tidy's settings by default (durations in seconds), as OpenBao's tidy config has them.
TIDY_DEFAULTS: Final[Mapping[str, Any]] = {
    **dict.fromkeys(TIDY_KINDS, False),
    "safety_buffer": 72 * 3600,
    "revoked_safety_buffer": None,  # None: the safety_buffer's
    "issuer_safety_buffer": 365 * 24 * 3600,
    "acme_account_safety_buffer": 30 * 24 * 3600,
    "pause_duration": 0,
    "page_size": 1000,
}
_COUNTS: Final = (
    "acme_account_deleted_count",
    "acme_account_revoked_count",
    "acme_orders_deleted_count",
    "cert_store_deleted_count",
    "missing_issuer_cert_count",
    "revoked_cert_deleted_count",
    "total_acme_account_count",
)
_FIELDS: Final = (
    *TIDY_DEFAULTS,
    *_COUNTS,
    "current_cert_store_count",
    "current_revoked_cert_count",
    "error",
    "message",
    "state",
    "time_finished",
    "time_started",
)


def settings_shown(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A tidy's settings as OpenBao shows them (the revoked buffer resolved, pause as text)."""
    shown = {name: settings.get(name, default) for name, default in TIDY_DEFAULTS.items()}
    if shown["revoked_safety_buffer"] is None:
        shown["revoked_safety_buffer"] = shown["safety_buffer"]
    shown["pause_duration"] = format_duration(int(shown["pause_duration"]))
    return shown


def inactive_status(backend_uuid: str) -> dict[str, Any]:
    """Before the mount's first tidy: every field null."""
    return {**dict.fromkeys(_FIELDS), "state": "Inactive", "internal_backend_uuid": backend_uuid}


def finished_status(
    settings: Mapping[str, Any],
    *,
    started: str,
    finished: str,
    deleted: int,
    revoked_deleted: int,
) -> dict[str, Any]:
    """A finished tidy's report (stored; `internal_backend_uuid` is added when read)."""
    return {
        **dict.fromkeys(_FIELDS),
        **settings_shown(settings),
        **dict.fromkeys(_COUNTS, 0),
        "cert_store_deleted_count": deleted,
        "revoked_cert_deleted_count": revoked_deleted,
        "state": "Finished",
        "time_started": started,
        "time_finished": finished,
        # OpenBao's name; it shows the end of any tidy, manual or automatic.
        "last_auto_tidy_finished": finished,
    }
