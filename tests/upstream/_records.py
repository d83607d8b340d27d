"""Opening gateway mode on the session's `bao server -dev` under a fresh root, for tests."""

from __future__ import annotations

from pathlib import Path

from tenantvault._config import UpstreamOptions
from tenantvault.backends import open_backend
from tenantvault.upstream._backend import UpstreamBackend
from tests._openbao import OpenBaoDev, unique_root


def token_file(directory: Path, token: str) -> Path:
    """A 0600 file holding `token`, as an operator would provide it."""
    path = directory / f"upstream-token-{unique_root('f')}"
    path.write_text(token + "\n")
    path.chmod(0o600)
    return path


def options(
    server: OpenBaoDev, directory: Path, *, tenancy: str = "prefix", kv_mount: str = "secret"
) -> UpstreamOptions:
    """A fresh root, authenticated with the dev server's root token (from a file)."""
    return UpstreamOptions(
        root=unique_root("r"),
        tenancy=tenancy,
        kv_mount=kv_mount,
        token_file=token_file(directory, server.root_token),
    )


async def open_records(
    server: OpenBaoDev, settings: UpstreamOptions, master_key: bytes
) -> UpstreamBackend:
    backend = await open_backend(server.backend_url, upstream=settings, master_key=master_key)
    assert isinstance(backend, UpstreamBackend)
    return backend
