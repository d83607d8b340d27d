"""Acceptance 7 / L-2: no secret value or token in any exception, repr or log line.

Every secret and token here carries a canary; the test provokes successes and every kind of
failure, then scans each exception's text, args and repr, every object's repr, and all log
records at DEBUG.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

import tenantvault
from tenantvault import Operation, TenantVaultError
from tenantvault.backends import Record
from tests.conftest import canary


def _texts(error: BaseException) -> list[str]:
    texts = [str(error), repr(error), *map(repr, error.args)]
    if isinstance(error, TenantVaultError):
        texts += [repr(error.errors), error.message]
    if error.__cause__ is not None:
        texts += _texts(error.__cause__)
    return texts


async def test_no_canary_in_errors_reprs_or_logs(
    tv: tenantvault.TenantVault, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    marker = "CANARY-"
    secret = canary("secret-")
    await tv.create_tenant("acme")
    acme = tv.tenant("acme")
    token = await acme.tokens.create(policies=["default"], meta={"note": "x"})
    seen: list[Any] = [token, acme, tv, tv.with_token(token.token)]
    written = await acme.kv.put("app/db", {"password": secret})
    seen += [written, await acme.kv.get("app/db"), await acme.kv.metadata("app/db")]
    seen.append(Record(secret.encode(), 1))
    seen.append(
        tenantvault.Request(Operation.UPDATE, "secret/data/x", {"v": secret}, token=token.token)
    )
    seen.append(tenantvault.Response(data={"v": secret}))

    failures: list[tuple[str, str, dict[str, Any] | None, str | None]] = [
        (
            Operation.UPDATE,
            "secret/data/app/db",
            {"data": {"p": secret}, "options": {"cas": 0}},
            None,
        ),
        (Operation.UPDATE, "secret/data/app/db", {"data": secret}, None),
        (
            Operation.UPDATE,
            "secret/data/app/db",
            {"data": {"p": 1}, "options": {"cas": secret}},
            None,
        ),
        (Operation.UPDATE, "secret/metadata/app/db", {"custom_metadata": {"k": secret * 40}}, None),
        (Operation.UPDATE, "secret/metadata/app/db", {"max_versions": secret}, None),
        (Operation.UPDATE, "secret/metadata/app/db", {"delete_version_after": secret}, None),
        (Operation.UPDATE, "secret/destroy/app/db", {"versions": [secret]}, None),
        (Operation.UPDATE, "sys/policies/acl/p", {"policy": f'path "{secret}" {{ x }}'}, None),
        (Operation.UPDATE, "sys/policies/acl/p", {"policy": secret}, None),
        (Operation.UPDATE, "auth/token/create", {"policies": [f"{secret}*"]}, None),
        (Operation.UPDATE, "auth/token/create", {"meta": {"k": secret, "n": 5}}, None),
        (Operation.UPDATE, "auth/token/create", {"ttl": secret}, None),
        (Operation.UPDATE, "auth/token/lookup", {"token": secret}, None),
        (Operation.UPDATE, "auth/token/lookup-accessor", {"accessor": secret}, None),
        (Operation.READ, "secret/data/app/db", None, secret),  # a canary used as a token
        (Operation.READ, "auth/token/lookup-self", None, token.token + "x"),
    ]
    for operation, path, data, bad_token in failures:
        actor = tv.with_token(bad_token) if bad_token else tv
        with pytest.raises(TenantVaultError) as caught:
            await actor.request(operation, path, data, namespace="acme")
        for text in _texts(caught.value):
            assert marker not in text, f"{operation} {path}: {text!r}"
            assert token.token not in text
    # The token and the secret themselves, used the wrong way, in the other tenant:
    await tv.create_tenant("beta")
    with pytest.raises(TenantVaultError) as caught:
        await tv.with_token(token.token).tenant("beta").kv.get("app/db")
    assert all(marker not in text for text in _texts(caught.value))

    # The token has no marker of its own: look for its exact value too.
    for needle in (marker, token.token, token.accessor):
        for obj in seen:
            assert needle not in repr(obj), type(obj).__name__
        for record in caplog.records:
            assert needle not in record.getMessage()
            assert needle not in repr(record.args)
