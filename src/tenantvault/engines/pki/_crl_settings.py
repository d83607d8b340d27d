"""The `config/crl` endpoint and `crl/rotate-delta`: how a mount's CRLs are built, on demand."""

from __future__ import annotations

from functools import partial

from tenantvault._request import Response
from tenantvault.engines._protocol import Mount
from tenantvault.engines._route import Call
from tenantvault.engines.pki._common import PkiHandlers
from tenantvault.engines.pki._crl_config import load_crl_config, updated
from tenantvault.engines.pki._crls import rebuild_delta
from tenantvault.engines.pki._store import PkiStore

__all__ = ["CrlSettings"]


class CrlSettings(PkiHandlers):
    """`GET`/`POST config/crl` and `GET crl/rotate-delta`."""

    async def read_crl_config(self, call: Call, store: PkiStore, mount: Mount) -> Response:
        """`GET config/crl`: the settings, OpenBao's defaults where never written."""
        return Response(data=(await load_crl_config(store)).data())

    async def write_crl_config(self, call: Call, store: PkiStore, mount: Mount) -> Response:
        """`POST config/crl`: change the settings given; the others keep their values."""
        old = await load_crl_config(store)
        new = updated(old, call.data)
        await store.put_crl_config(new.record())
        # OpenBao's rule: turning the CRL off or on, leaving auto-rebuild or switching delta
        # CRLs re-signs every complete CRL now (an empty one when disabled).
        if (
            old.disable != new.disable
            or (old.auto_rebuild and not new.auto_rebuild)
            or old.enable_delta != new.enable_delta
        ):
            for issuer in await store.issuers():
                if issuer["key_id"]:
                    await self._rebuild_crl(store, issuer, force=True)
        return Response(data=new.data())

    async def rotate_delta(self, call: Call, store: PkiStore, mount: Mount) -> Response:
        """`GET crl/rotate-delta`: re-sign every issuer's delta CRL now (a no-op, with
        OpenBao's warning, while delta CRLs are off)."""
        if not (await load_crl_config(store)).enable_delta:
            return Response(
                data={"success": True},
                warnings=[
                    "requested rebuild of delta CRL when delta CRL is not enabled; this is a no-op"
                ],
            )
        for issuer in await store.issuers():
            if issuer["key_id"]:
                key = partial(self._signing_key, store, issuer)
                await rebuild_delta(store, issuer, key, self._clock)
        return Response(data={"success": True})
