"""The contract suite runs on every backend: memory, sqlite and the upstream record backend.

`upstream` is `UpstreamBackend` on a real `bao server -dev` (one per session, see
`tests/_openbao.py`), each test under a root path of its own, with tenantvault's own token
read from a file as an operator would configure it, and the embedded engines on top.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import tenantvault
from tenantvault.crypto import random_key
from tests._openbao import OpenBaoDev, unique_root
from tests.conftest import BACKENDS, FakeClock, backend_url

CONTRACT_BACKENDS = [*BACKENDS, "upstream"]


@pytest.fixture(params=CONTRACT_BACKENDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _upstream_url(server: OpenBaoDev, tmp_path: Path) -> str:
    token_file = tmp_path / "upstream-token"
    token_file.write_text(server.root_token + "\n")
    token_file.chmod(0o600)
    # `engines=embedded`: the contract is the `Backend` protocol's, so tenant engines stay
    # tenantvault's own and every record goes through `UpstreamBackend` (the upstream-served
    # engines have their own suites: tests/upstream/test_engines*.py).
    return (
        f"{server.backend_url}?root={unique_root('c')}&tenancy=auto&engines=embedded"
        f"&token_file={token_file}"
    )


@pytest.fixture
async def tv(
    backend_kind: str, tmp_path: Path, clock: FakeClock, request: pytest.FixtureRequest
) -> AsyncIterator[tenantvault.TenantVault]:
    if backend_kind == "upstream":
        server: OpenBaoDev = request.getfixturevalue("openbao_dev")
        url = _upstream_url(server, tmp_path)
        async with tenantvault.open(url, master_key=random_key(), clock=clock) as opened:
            yield opened
        return
    async with tenantvault.open(backend_url(backend_kind, tmp_path), clock=clock) as opened:
        yield opened
