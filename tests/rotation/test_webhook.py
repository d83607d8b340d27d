"""The webhook rotator against a real local HTTP receiver: phases in order with valid
signatures, failures that leave the current value alone, and the operator's allow-list."""

from __future__ import annotations

import argparse

import pytest

from tenantvault._config import ServerSettings
from tenantvault._core import Core
from tenantvault._exceptions import ConfigurationError, InvalidRequestError, TenantVaultError
from tenantvault._request import Operation
from tenantvault.rotation import RotationFailedError, is_allowed_url
from tests.conftest import FakeClock, canary
from tests.rotation._receiver import Receiver
from tests.rotation.conftest import Ops


async def _configure(ops: Ops, receiver: Receiver, path: str = "secret/saas/key") -> None:
    await ops.configure(
        path,
        rotator="webhook",
        period="30d",
        field="api_key",
        params={"url": receiver.url, "secret": receiver.secret},
    )


async def test_the_hook_sees_create_set_test_finish_in_order_signed(
    ops: Ops, receiver: Receiver
) -> None:
    old = canary("old-key-")
    await ops.put("saas/key", {"api_key": old, "account": "acct-1"})
    await _configure(ops, receiver)
    response = await ops.rotate("secret/saas/key")
    assert response.data == {"version": 2}
    assert receiver.phases == ["create", "set", "test", "finish"]
    assert all(call.signed for call in receiver.calls)
    create, set_, test, finish = (call.body for call in receiver.calls)
    ids = {"tenant": "acme", "mount": "secret/", "path": "saas/key", "field": "api_key"}
    for body in (create, set_, test, finish):
        assert {k: body[k] for k in ids} == ids
        assert body["rotation_id"] == create["rotation_id"]
    new = receiver.values[0]
    assert create["current"] == {"api_key": old, "account": "acct-1"}
    assert set_["pending"] == test["pending"] == {"api_key": new}
    assert set(finish) == {"phase", "rotation_id", *ids}  # ids only
    current = await ops.get("saas/key")
    assert current["data"] == {"api_key": new, "account": "acct-1"}
    status = await ops.status("secret/saas/key")
    assert status["params"] == {"url": receiver.url}  # the hook secret is never shown
    assert receiver.secret not in repr(status)


async def test_a_failing_test_phase_leaves_the_current_value_and_marks_failed(
    core: Core, ops: Ops, receiver: Receiver, clock: FakeClock
) -> None:
    old = canary("old-key-")
    await ops.put("saas/key", {"api_key": old})
    await _configure(ops, receiver)
    receiver.behaviour.fail["test"] = 500
    with pytest.raises(RotationFailedError) as failed:
        await ops.rotate("secret/saas/key")
    assert failed.value.status == 502
    assert "test failed: the webhook answered HTTP 500 to test" in str(failed.value)
    assert receiver.phases == ["create", "set", "test"]
    current = await ops.get("saas/key")
    assert current["data"] == {"api_key": old}
    assert current["metadata"]["version"] == 1
    status = await ops.status("secret/saas/key")
    assert status["state"] == "failed"
    assert status["pending"] is True
    assert status["last_error"] == "test failed: the webhook answered HTTP 500 to test"
    pending = receiver.values[0]
    assert pending not in repr(status)
    assert old not in repr(status)
    # The retry resumes with the same pending value: no second create.
    receiver.behaviour.fail.clear()
    clock.advance(core.rotation.settings.retry_max_seconds)
    assert (await core.rotation.scheduler.run_due()).rotated == 1
    assert receiver.phases == ["create", "set", "test", "set", "test", "finish"]
    assert (await ops.get("saas/key"))["data"] == {"api_key": pending}
    assert (await ops.status("secret/saas/key"))["state"] == "idle"


@pytest.mark.parametrize("phase", ["create", "set", "finish"])
async def test_a_failure_in_any_phase_changes_nothing_readable(
    ops: Ops, receiver: Receiver, phase: str
) -> None:
    await ops.put("saas/key", {"api_key": "before"})
    await _configure(ops, receiver)
    receiver.behaviour.fail[phase] = 403
    with pytest.raises(RotationFailedError, match=f"{phase} failed"):
        await ops.rotate("secret/saas/key")
    assert (await ops.get("saas/key"))["data"] == {"api_key": "before"}
    assert (await ops.status("secret/saas/key"))["state"] == "failed"


async def test_redirects_are_not_followed_and_big_answers_are_refused(
    ops: Ops, receiver: Receiver, core: Core
) -> None:
    await ops.put("saas/key", {"api_key": "before"})
    await _configure(ops, receiver)
    receiver.behaviour.redirect = True
    with pytest.raises(RotationFailedError, match="HTTP 307"):
        await ops.rotate("secret/saas/key")
    assert receiver.phases == ["create"]  # the redirect target was never called
    receiver.behaviour.redirect = False
    receiver.behaviour.padding = core.rotation.settings.webhook_max_response_bytes
    with pytest.raises(RotationFailedError, match="too large"):
        await ops.rotate("secret/saas/key")
    assert (await ops.get("saas/key"))["data"] == {"api_key": "before"}


async def test_a_url_outside_the_allow_list_is_refused(ops: Ops, receiver: Receiver) -> None:
    await ops.put("saas/key", {"api_key": "before"})
    outside = [
        receiver.url.replace("/hooks/", "/other/"),
        receiver.url.replace("127.0.0.1", "localhost"),
        "http://169.254.169.254/latest/meta-data/",
        receiver.prefix.rstrip("/") + "evil/x",
        receiver.url.replace("http://", "http://user@"),
    ]
    for url in outside:
        with pytest.raises(InvalidRequestError, match="not under a webhook prefix") as refused:
            await ops.configure(
                "secret/saas/key",
                rotator="webhook",
                period="1h",
                field="api_key",
                params={"url": url, "secret": receiver.secret},
            )
        assert url not in str(refused.value)
    with pytest.raises(InvalidRequestError, match=r"params\.secret"):
        await ops.configure(
            "secret/saas/key",
            rotator="webhook",
            period="1h",
            field="api_key",
            params={"url": receiver.url, "secret": "short"},
        )


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://hooks.example.com/rotate", True),
        ("https://hooks.example.com/rotate/x", True),
        ("https://hooks.example.com/rotatex", False),
        ("https://hooks.example.com.evil.net/rotate", False),
        ("https://hooks.example.com@evil.net/rotate", False),
        ("http://hooks.example.com/rotate", False),
        ("https://hooks.example.com:444/rotate", False),
        ("https://hooks.example.com/rotate#frag", False),
        ("ftp://hooks.example.com/rotate", False),
        ("/rotate", False),
    ],
)
def test_allow_list_prefixes_compare_parsed_urls(url: str, allowed: bool) -> None:
    assert is_allowed_url(url, ("https://hooks.example.com/rotate",)) is allowed


async def test_webhook_errors_reach_no_text_but_the_status(ops: Ops, receiver: Receiver) -> None:
    """The receiver's error body never reaches the caller, the status or the audit trail."""
    await ops.put("saas/key", {"api_key": "before"})
    await _configure(ops, receiver)
    receiver.behaviour.fail["create"] = 500
    with pytest.raises(TenantVaultError) as failed:
        await ops.rotate("secret/saas/key")
    assert '"no"' not in str(failed.value)
    response = await ops(Operation.READ, "sys/rotation/config/secret/saas/key")
    assert '"no"' not in str(response.data)


@pytest.mark.parametrize(
    "prefix",
    ["ftp://hooks.example.com/", "https://user@hooks.example.com/", "hooks.example.com/x", "/x"],
)
def test_serve_refuses_a_bad_allow_list_entry(prefix: str) -> None:
    with pytest.raises(ConfigurationError, match="--rotation-webhook-allow"):
        ServerSettings(rotation_webhook_allow=(prefix,))


def test_serve_parses_repeated_allow_flags() -> None:
    from tenantvault.cli._serve import _settings, add_parser

    root = argparse.ArgumentParser(prog="tenantvault")
    add_parser(root.add_subparsers())
    args = root.parse_args(
        [
            "serve",
            "--rotation-webhook-allow",
            "https://a.example.com/hooks/",
            "-rotation-webhook-allow",
            "https://b.example.com/",
        ]
    )
    settings = _settings(args, {})
    assert settings.rotation_webhook_allow == (
        "https://a.example.com/hooks/",
        "https://b.example.com/",
    )
