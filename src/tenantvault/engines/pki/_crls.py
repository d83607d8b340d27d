"""An issuer's CRLs under the mount's `config/crl`: the complete CRL and its delta CRL.

Both live in one record per issuer (`crls/<issuer id>`) and share one CRL-number sequence,
as RFC 5280 asks and OpenBao does (a complete CRL numbered N, the delta after it N+1 with a
DeltaCRLIndicator of N). Every write is a check-and-set of that one record, retried on a
lost race, so no number is ever published twice and the last complete CRL written lists
every revocation marked before it.

What a single node can honour of `config/crl`, and when (OpenBao does the timed parts in a
periodic function; here they happen on the next fetch or revoke, which is when the CRL is
observable):
- `expiry` is each CRL's nextUpdate minus its thisUpdate;
- `disable` signs an empty CRL when first built or when the setting changes, and leaves it
  as it is afterwards (OpenBao's "long-lived empty CRL");
- `auto_rebuild`: a revoke does not re-sign the complete CRL; a fetch or revoke re-signs it
  once it is within `auto_rebuild_grace_period` of its nextUpdate;
- `enable_delta`: the delta CRL lists the revocations the complete CRL does not list yet; a
  delta fetch re-signs it when there are new ones and `delta_rebuild_interval` has passed
  since it was signed (`crl/rotate-delta` at once). Without it the delta is empty, as
  OpenBao's is (OpenBao records no delta entries then). OpenBao signs a delta after every
  complete CRL; here it is signed when first fetched after one, so a mount whose deltas
  nobody fetches uses one number per complete CRL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from tenantvault._cas import retry_on_conflict
from tenantvault._clock import Clock
from tenantvault._exceptions import ConflictError
from tenantvault.engines.pki._crl_config import CrlConfig, load_crl_config
from tenantvault.engines.pki._keys import PrivateKey
from tenantvault.engines.pki._store import PkiStore
from tenantvault.engines.pki._x509 import build_crl, crl_pem, load_certificates

__all__ = ["KeyLoader", "current_complete", "current_delta", "rebuild_complete", "rebuild_delta"]

KeyLoader = Callable[[], Awaitable[PrivateKey]]
_NS: Final = 1_000_000_000
_LAST: Final = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def _utc(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / _NS, UTC)


async def _revoked(store: PkiStore, issuer_id: str) -> list[tuple[str, int]]:
    """The issuer's revoked serials (hyphen form) and their revocation times (ns)."""
    found = []
    for serial in await store.revoked_serials():
        record = await store.cert(serial)
        if record is not None and record["issuer_id"] == issuer_id:
            if record.get("revocation_time_ns"):
                found.append((serial, int(record["revocation_time_ns"])))
    return found


def _entries(revoked: list[tuple[str, int]]) -> list[tuple[int, datetime]]:
    return [(int(serial.replace("-", ""), 16), _utc(ns)) for serial, ns in revoked]


def _sign(
    issuer: dict[str, Any],
    key: PrivateKey,
    revoked: list[tuple[str, int]],
    *,
    number: int,
    now_ns: int,
    config: CrlConfig,
    delta_of: int | None = None,
) -> tuple[str, int]:
    """A signed CRL (PEM) and its nextUpdate (unix seconds)."""
    now = _utc(now_ns)
    # Go signs a nextUpdate before thisUpdate (a negative `expiry`) or centuries ahead; X.509
    # and `cryptography` want it between thisUpdate and the year 9999.
    try:
        next_update = max(now, now + timedelta(seconds=config.expiry_seconds))
    except OverflowError:
        next_update = _LAST
    crl = build_crl(
        issuer=load_certificates(issuer["certificate"])[0],
        signing_key=key,
        revoked=_entries(revoked),
        number=number,
        this_update=now,
        next_update=next_update,
        delta_of=delta_of,
    )
    return crl_pem(crl), int(next_update.timestamp())


async def rebuild_complete(
    store: PkiStore, issuer: dict[str, Any], key: KeyLoader, clock: Clock, *, force: bool
) -> dict[str, Any]:
    """Sign the issuer's complete CRL afresh (empty when `disable`; while disabled, only a
    `force`d rebuild or a first one signs anything, as in OpenBao)."""
    config = await load_crl_config(store)
    issuer_id = issuer["issuer_id"]
    signing_key = await key()

    async def attempt() -> dict[str, Any]:
        # The revoked serials are read after the record's revision: a revocation marked
        # meanwhile is in this CRL or in a later writer's, whose write makes this conflict.
        previous, revision = await store.crl_versioned(issuer_id)
        if previous is not None and config.disable and not force:
            return previous
        revoked = [] if config.disable else await _revoked(store, issuer_id)
        number = previous["number"] + 1 if previous else 1
        pem, next_update = _sign(
            issuer, signing_key, revoked, number=number, now_ns=clock(), config=config
        )
        fresh = {
            **(previous or {}),
            "number": number,
            "crl": pem,
            "complete_number": number,
            "next_update": next_update,
            "listed": [serial for serial, _ in revoked],
        }
        await store.put_crl(issuer_id, fresh, expected_revision=revision)
        return fresh

    return await retry_on_conflict(attempt, what="the CRL")


async def current_complete(
    store: PkiStore, issuer: dict[str, Any], key: KeyLoader, clock: Clock
) -> dict[str, Any]:
    """The issuer's complete CRL record: the first one signed now; with `auto_rebuild`, one
    re-signed when the stored one is within the grace period of its nextUpdate."""
    record = await store.crl(issuer["issuer_id"])
    if record is None:
        return await rebuild_complete(store, issuer, key, clock, force=True)
    config = await load_crl_config(store)
    if config.auto_rebuild and not config.disable:
        next_update = record.get("next_update")
        if next_update is None or clock() / _NS >= next_update - config.grace_seconds:
            return await rebuild_complete(store, issuer, key, clock, force=False)
    return record


def _pending(
    record: dict[str, Any], revoked: list[tuple[str, int]], config: CrlConfig
) -> list[tuple[str, int]]:
    """What the delta CRL lists: revocations the complete CRL does not (none unless delta
    CRLs are enabled). A record from before delta CRLs lists no serials: none pending."""
    if config.disable or not config.enable_delta or "listed" not in record:
        return []
    listed = set(record["listed"])
    return [(serial, ns) for serial, ns in revoked if serial not in listed]


async def rebuild_delta(
    store: PkiStore, issuer: dict[str, Any], key: KeyLoader, clock: Clock
) -> dict[str, Any]:
    """Sign the issuer's delta CRL afresh, numbered after the last CRL of either kind."""
    config = await load_crl_config(store)
    issuer_id = issuer["issuer_id"]
    await current_complete(store, issuer, key, clock)
    signing_key = await key()

    async def attempt() -> dict[str, Any]:
        previous, revision = await store.crl_versioned(issuer_id)
        if previous is None:  # gone since `current_complete`: sign a base, then try again
            await rebuild_complete(store, issuer, key, clock, force=True)
            raise ConflictError("the CRL record was replaced meanwhile")
        base = int(previous.get("complete_number", previous["number"]))
        pending = _pending(previous, await _revoked(store, issuer_id), config)
        number = previous["number"] + 1
        now_ns = clock()
        pem, _ = _sign(
            issuer,
            signing_key,
            pending,
            number=number,
            now_ns=now_ns,
            config=config,
            delta_of=base,
        )
        fresh = {
            **previous,
            "number": number,
            "complete_number": base,  # a record from before delta CRLs had none
            "delta": pem,
            "delta_base": base,
            "delta_built_ns": now_ns,
            "delta_serials": [serial for serial, _ in pending],
        }
        await store.put_crl(issuer_id, fresh, expected_revision=revision)
        return fresh

    return await retry_on_conflict(attempt, what="the delta CRL")


async def current_delta(
    store: PkiStore, issuer: dict[str, Any], key: KeyLoader, clock: Clock
) -> dict[str, Any]:
    """The issuer's CRL record with a delta CRL of its current complete CRL: signed now if
    there is none yet for that base, or if new revocations wait and the rebuild interval has
    passed since the last one."""
    record = await current_complete(store, issuer, key, clock)
    if "delta" not in record or record.get("delta_base") != record.get("complete_number"):
        return await rebuild_delta(store, issuer, key, clock)
    config = await load_crl_config(store)
    if config.enable_delta and not config.disable:
        waited = clock() - int(record["delta_built_ns"])
        if waited >= config.delta_interval_seconds * _NS:
            pending = _pending(record, await _revoked(store, issuer["issuer_id"]), config)
            if [serial for serial, _ in pending] != record["delta_serials"]:
                return await rebuild_delta(store, issuer, key, clock)
    return record
