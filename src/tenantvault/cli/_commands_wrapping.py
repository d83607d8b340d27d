"""`unwrap`: open a wrapped response once, as `vault unwrap` does.

The wrapping token is read from standard input (`tenantvault unwrap -`), never from argv; with
no argument the token the CLI runs with (VAULT_TOKEN) is the wrapping token — the tool-server
case, where the wrapping token is the only credential it was handed.
"""

from __future__ import annotations

import argparse
from typing import Any

from tenantvault.cli._args import UsageError
from tenantvault.cli._context import Context
from tenantvault.cli._output import Section, View, human_duration

__all__ = ["register"]

_ARGUMENT_REFUSED = (
    "tokens are not accepted as command-line arguments (shell history and `ps` would show "
    "them): pass '-' and pipe the wrapping token on standard input"
)


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    unwrap = subparsers.add_parser(
        "unwrap",
        parents=[common],
        help="open a wrapped response (its wrapping token is used up)",
        description="Unwrap the response wrapped in a wrapping token, once. Pass '-' to read "
        "the wrapping token from standard input; with no argument, VAULT_TOKEN is the wrapping "
        "token. A wrapped token (auth) is shown like `token create` shows one.",
    )
    unwrap.add_argument("token", nargs="?", metavar="-", help="'-': read the token from stdin")
    unwrap.set_defaults(handler=_unwrap)


def _unwrap(ctx: Context) -> int:
    source = ctx.args.token
    body: dict[str, str] | None = None
    if source is not None:
        if source != "-":
            ctx.redact.add(source)
            raise UsageError(_ARGUMENT_REFUSED)
        token = ctx.stdin.read().strip()
        if not token:
            raise UsageError("no wrapping token on standard input")
        ctx.redact.add(token)
        body = {"token": token}
    reply = ctx.call("POST", "sys/wrapping/unwrap", body=body, doing="unwrapping")
    document = reply.body if isinstance(reply.body, dict) else {}
    ctx.out.show(_view(ctx, document))
    return 0


def _view(ctx: Context, document: dict[str, Any]) -> View:
    """The unwrapped answer: a token's fields if it holds one, else its data."""
    auth = document.get("auth")
    if isinstance(auth, dict):
        ctx.redact.add(auth.get("client_token"))
        fields: dict[str, Any] = {
            "token": auth.get("client_token"),
            "token_accessor": auth.get("accessor"),
            "token_duration": human_duration(auth.get("lease_duration")),
            "token_renewable": auth.get("renewable"),
            "token_policies": auth.get("token_policies"),
            "policies": auth.get("policies"),
        }
        return View(document=document, sections=[Section(rows=list(fields.items()))], fields=fields)
    data = document.get("data")
    data = data if isinstance(data, dict) else {}
    return View(document=document, sections=[Section(rows=sorted(data.items()))], fields=data)
