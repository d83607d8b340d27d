"""Auto-tidy: `config/auto-tidy` (OpenBao's fields, defaults and texts), `tidy-cancel`, and
the scheduler that runs a mount's tidy every `interval_duration` once it is enabled.

The config is one record of the mount, which also keeps when auto-tidy last ran (never
shown). A pass visits the pki mounts of the root namespace and of the tenants in the
`pki-auto-tidy` `TenantSet` (a tenant joins before its first enabling write), and runs a due
mount's tidy after a check-and-set stamp of the run time on that record: two schedulers (or
instances) never both run one interval's tidy. The first run comes one interval after
auto-tidy is enabled, as in OpenBao.

Of the `tidy_*` kinds, the cert store and revoked certificates (each past its own safety
buffer) are what this engine tidies, as `POST tidy` does; the other flags are kept and shown
as OpenBao shows them, with nothing of theirs to remove here (no ACME, no legacy CA bundle;
expired issuers and cross-issuer revocation links are left in place). A tidy runs to
completion inside its pass, so `tidy-cancel` never finds one running.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from tenantvault._cas import retry_on_conflict
from tenantvault._clock import Clock
from tenantvault._durations import parse_duration
from tenantvault._exceptions import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    TenantVaultError,
)
from tenantvault._fields import get_bool, get_int
from tenantvault._pacing import run_paced
from tenantvault._request import Response
from tenantvault._tenant_sets import TenantSet
from tenantvault.backends._protocol import SYSTEM_TENANT, Backend
from tenantvault.engines._protocol import Mount, MountSource
from tenantvault.engines._route import Call
from tenantvault.engines.pki._revocation import Revocations
from tenantvault.engines.pki._store import PkiStore
from tenantvault.engines.pki._tidy_status import TIDY_DEFAULTS, TIDY_KINDS, settings_shown

if TYPE_CHECKING:
    from tenantvault._core import Core

__all__ = ["AUTO_TIDY_FIELDS", "KIND", "AutoTidy", "run_auto_tidy"]

logger = logging.getLogger("tenantvault.pki")

KIND: Final = "pki-auto-tidy"
_NS: Final = 1_000_000_000
_DEFAULT_PASS_SECONDS: Final = 60.0  # OpenBao's periodic function runs once a minute too

_FLAGS: Final = (
    "enabled",
    *TIDY_KINDS,
    "maintain_stored_certificate_counts",
    "publish_stored_certificate_count_metrics",
)
# Durations that must be at least a second, with the name OpenBao's error gives each.
_BUFFERS: Final = {
    "safety_buffer": "given safety_buffer",
    "revoked_safety_buffer": "revoked_safety_buffer",
    "issuer_safety_buffer": "given safety_buffer",  # sic: OpenBao's text for this one
    "acme_account_safety_buffer": "given acme_account_safety_buffer",
}
AUTO_TIDY_FIELDS: Final = frozenset(
    {*_FLAGS, *_BUFFERS, "interval_duration", "pause_duration", "page_size"}
)
_DEFAULTS: Final[Mapping[str, Any]] = {
    "enabled": False,
    "interval_duration": 12 * 3600,
    **TIDY_DEFAULTS,
    "maintain_stored_certificate_counts": False,
    "publish_stored_certificate_count_metrics": False,
}
_NO_KIND: Final = (
    "Auto-tidy enabled but no tidy operations were requested. Enable at least one tidy "
    "operation to be run (tidy_cert_store / tidy_revoked_certs / tidy_invalid_certs / "
    "tidy_revoked_cert_issuer_associations / tidy_expired_issuers / "
    "tidy_move_legacy_ca_bundle / tidy_acme)."
)
_NOTHING_TO_CANCEL: Final = "Tidy operation cannot be cancelled as none is currently running."


def _config(stored: Mapping[str, Any] | None) -> dict[str, Any]:
    return {**_DEFAULTS, **(stored or {})}


def _shown(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config as OpenBao's `config/auto-tidy` answers it (durations in seconds)."""
    return {**{name: config[name] for name in _DEFAULTS}, **settings_shown(config)}


def updated_config(config: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
    """`config` with the fields of a `config/auto-tidy` write; OpenBao's refusals."""
    changed = dict(config)
    for name in _FLAGS:
        flag = get_bool(data, name)
        if flag is not None:
            changed[name] = flag
    if data.get("interval_duration") not in (None, ""):
        changed["interval_duration"] = parse_duration(
            data["interval_duration"], field="interval_duration"
        )
    for name, spelled in _BUFFERS.items():
        if data.get(name) not in (None, ""):
            seconds = parse_duration(data[name], field=name)
            if seconds < 1:
                raise InvalidRequestError(f"{spelled} must be at least one second; got: {seconds}")
            changed[name] = seconds
    if data.get("pause_duration") not in (None, ""):
        changed["pause_duration"] = parse_duration(data["pause_duration"], field="pause_duration")
    if data.get("page_size") not in (None, ""):
        page_size = get_int(data, "page_size") or 0
        if page_size < 5:
            raise InvalidRequestError("page_size must be at least 5")
        changed["page_size"] = page_size
    if changed["enabled"] and not any(changed[name] for name in TIDY_KINDS):
        raise InvalidRequestError(_NO_KIND)
    return changed


class AutoTidy:
    """The `config/auto-tidy` and `tidy-cancel` handlers and the scheduler's passes."""

    def __init__(self, revocations: Revocations, *, clock: Clock) -> None:
        self._revocations = revocations
        self._clock = clock
        # Both None until attached: a pass then tidies nothing, a write joins no set.
        self._mounts: MountSource | None = None
        self.holders: TenantSet | None = None

    def __repr__(self) -> str:
        return f"<AutoTidy attached={self.holders is not None}>"

    def attach(self, backend: Backend, mounts: MountSource) -> None:
        """Find mounts with `mounts`; keep the set of tenants to visit in `backend`."""
        self._mounts = mounts
        self.holders = TenantSet(backend, KIND, holds=self._holds_enabled)

    async def _mounts_in(self, tenant: str) -> list[Mount] | None:
        return None if self._mounts is None else await self._mounts(tenant, "pki")

    async def _holds_enabled(self, tenant: str) -> bool:
        """Whether a pki mount of `tenant` has auto-tidy enabled (a store's one-time scan)."""
        for mount in await self._mounts_in(tenant) or []:
            try:
                stored, _ = await PkiStore(mount.storage).auto_tidy()
            except NotFoundError:
                return False  # the tenant was deleted meanwhile
            if stored is not None and stored.get("enabled"):
                return True
        return False

    # -- handlers --------------------------------------------------------------------------

    async def read_config(self, call: Call, store: PkiStore, mount: Mount) -> Response:
        """`GET config/auto-tidy`."""
        stored, _ = await store.auto_tidy()
        return Response(data=_shown(_config(stored)))

    async def write_config(self, call: Call, store: PkiStore, mount: Mount) -> Response:
        """`POST config/auto-tidy`: the fields given change, the others stay."""
        tenant = mount.storage.tenant
        if self.holders is not None and tenant != SYSTEM_TENANT:
            await self.holders.add(tenant)  # before the record a pass must find

        async def attempt() -> Response:
            # A pass that stamped a run meanwhile makes this a conflict: applied to that.
            stored, revision = await store.auto_tidy()
            config = _config(stored)
            changed = updated_config(config, call.data)
            if changed["enabled"] and not config["enabled"]:
                changed["last_run_ns"] = self._clock()  # the first run: one interval on
            await store.put_auto_tidy(changed, expected_revision=revision)
            return Response(data=_shown(changed))

        return await retry_on_conflict(attempt, what="the auto-tidy config")

    async def cancel(self, call: Call, store: PkiStore, mount: Mount) -> Response:
        """`POST tidy-cancel`: a tidy here runs to completion in its request or pass."""
        return Response(warnings=[_NOTHING_TO_CANCEL])

    # -- the scheduler ---------------------------------------------------------------------

    async def tidy_due(self, now_ns: int | None = None) -> list[tuple[str, str]]:
        """Run the tidy of every pki mount (root namespace and member tenants) whose
        auto-tidy is enabled and whose interval has passed; the (tenant, mount) pairs run."""
        now = self._clock() if now_ns is None else now_ns
        ran: list[tuple[str, str]] = []
        if self.holders is None:
            return ran
        for tenant in [SYSTEM_TENANT, *await self.holders.members()]:
            mounts = await self._mounts_in(tenant)
            if mounts is None:
                await self.holders.forget(tenant)
                continue
            for mount in mounts:
                try:
                    if await self._tidy_if_due(PkiStore(mount.storage), now):
                        ran.append((tenant, mount.path))
                except NotFoundError:
                    break  # the tenant was deleted meanwhile
                except TenantVaultError as error:
                    logger.warning(
                        "auto-tidy of a pki mount in tenant %s failed (%s)",
                        tenant or "(root)",
                        type(error).__name__,
                    )
        return ran

    async def _tidy_if_due(self, store: PkiStore, now_ns: int) -> bool:
        stored, revision = await store.auto_tidy()
        if stored is None or not stored.get("enabled"):
            return False
        config = _config(stored)
        if now_ns - int(config.get("last_run_ns", 0)) < config["interval_duration"] * _NS:
            return False
        try:
            await store.put_auto_tidy({**stored, "last_run_ns": now_ns}, expected_revision=revision)
        except ConflictError:
            return False  # another pass (or a config write) got there first
        await self._revocations.run_tidy(store, config)
        return True


async def run_auto_tidy(
    core: Core,
    *,
    interval_seconds: float = _DEFAULT_PASS_SECONDS,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Run due auto-tidies every `interval_seconds`, until cancelled (a supervised service).

    A failing pass is logged and retried at the next tick; cancellation is never swallowed.
    """
    await run_paced(
        lambda: core.pki.auto_tidy.tidy_due(core.clock()),
        interval_seconds=interval_seconds,
        what="pki auto-tidy",
        log=logger,
        sleep=sleep,
        clock=clock,
    )
