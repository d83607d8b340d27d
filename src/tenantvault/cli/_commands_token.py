"""`token create/lookup/revoke`. Tokens are read from the environment, a file or stdin, never argv.

The one place a token is printed is `token create`: creation is the only moment the new token
exists in plaintext anywhere, so, like `vault token create`, its table and JSON show it. Every
other output masks a token (`token lookup` shows `id` as <redacted>) unless `-field=id` asks.
"""

from __future__ import annotations

import argparse
from typing import Any

from tenantvault.cli._args import UsageError, add_bool_flag, add_flag, parse_key_values
from tenantvault.cli._context import Context, Failure
from tenantvault.cli._output import Section, View, human_duration
from tenantvault.cli._text import REDACTED

__all__ = ["register"]

_ARGUMENT_REFUSED = (
    "tokens are not accepted as command-line arguments (shell history and `ps` would show "
    "them): pass '-' and pipe the token on standard input"
)


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    token = subparsers.add_parser("token", help="create, look up and revoke tokens")
    commands = token.add_subparsers(dest="token_command", metavar="COMMAND", required=True)

    create = commands.add_parser(
        "create",
        parents=[common],
        help="create a token (prints it: the one time it is shown)",
        description="Create a token in the current tenant. The new token is printed once, in "
        "the table and in -format=json; use -field=token to print only the token.",
    )
    add_flag(
        create,
        "policy",
        action="append",
        metavar="NAME",
        help="policy to attach (repeatable, or comma-separated)",
    )
    add_flag(create, "ttl", metavar="DURATION", help="initial TTL, e.g. 1h")
    add_flag(create, "explicit-max-ttl", metavar="DURATION", help="hard TTL limit")
    add_flag(create, "period", metavar="DURATION", help="make a periodic token")
    add_flag(create, "num-uses", metavar="N", type=int, help="number of uses (0: unlimited)")
    add_flag(create, "display-name", metavar="NAME", help="display name")
    add_flag(create, "metadata", action="append", metavar="K=V", help="metadata (repeatable)")
    add_bool_flag(create, "orphan", default=False, help="create without a parent (root/sudo)")
    add_bool_flag(create, "renewable", default=True, help="allow renewal (default true)")
    add_bool_flag(
        create, "no-default-policy", default=False, help="do not attach the default policy"
    )
    create.set_defaults(handler=_create)

    lookup = commands.add_parser(
        "lookup",
        parents=[common],
        help="look up the current token, a piped token or an accessor",
        description="Without an argument, look up the token in use. With '-', read a token "
        "from standard input. With -accessor, the argument is an accessor.",
    )
    add_bool_flag(lookup, "accessor", default=False, help="the argument is an accessor")
    lookup.add_argument("target", nargs="?", metavar="- | ACCESSOR")
    lookup.set_defaults(handler=_lookup)

    revoke = commands.add_parser(
        "revoke",
        parents=[common],
        help="revoke a token and its children",
        description="Revoke the current token (-self), a token by accessor (-accessor X), or a "
        "token read from standard input ('-').",
    )
    add_bool_flag(revoke, "self", default=False, help="revoke the token in use")
    add_bool_flag(revoke, "accessor", default=False, help="the argument is an accessor")
    revoke.add_argument("target", nargs="?", metavar="- | ACCESSOR")
    revoke.set_defaults(handler=_revoke)


def _policies(raw: list[str] | None) -> list[str] | None:
    if raw is None:
        return None
    return [name.strip() for item in raw for name in item.split(",") if name.strip()]


def _create(ctx: Context) -> int:
    args = ctx.args
    body: dict[str, Any] = {"renewable": args.renewable}
    policies = _policies(args.policy)
    if policies is not None:
        body["policies"] = policies
    for key in ("ttl", "explicit_max_ttl", "period", "display_name"):
        value = getattr(args, key)
        if value is not None:
            body[key] = value
    if args.num_uses is not None:
        if args.num_uses < 0:
            raise UsageError("-num-uses must be 0 or more")
        body["num_uses"] = args.num_uses
    meta = parse_key_values(args.metadata, flag="metadata")
    if meta:
        body["meta"] = meta
    if args.no_default_policy:
        body["no_default_policy"] = True
    # Like the Vault CLI, -orphan uses the create-orphan endpoint.
    path = "auth/token/create-orphan" if args.orphan else "auth/token/create"
    reply = ctx.call("POST", path, body=body, doing="creating token")
    auth = reply.body.get("auth") if isinstance(reply.body, dict) else None
    if not isinstance(auth, dict):
        raise Failure("Error creating token: the server returned no token")
    ctx.redact.add(auth.get("client_token"))
    duration = auth.get("lease_duration")
    fields: dict[str, Any] = {
        "token": auth.get("client_token"),
        "token_accessor": auth.get("accessor"),
        "token_duration": "∞" if not duration else human_duration(duration),
        "token_renewable": auth.get("renewable"),
        "token_policies": _quoted(auth.get("token_policies")),
        "identity_policies": _quoted(auth.get("identity_policies") or []),
        "policies": _quoted(auth.get("policies")),
    }
    metadata = auth.get("metadata")
    if isinstance(metadata, dict):
        for key in sorted(metadata):
            fields[f"token_meta_{key}"] = metadata[key]
    ctx.out.show(
        View(
            document=reply.body,
            sections=[Section(rows=list(fields.items()))],
            fields={
                **fields,
                "token_policies": auth.get("token_policies"),
                "policies": auth.get("policies"),
            },
        )
    )
    return 0


def _quoted(names: Any) -> str:
    """Vault's table shows policy lists as `["default" "ops"]`."""
    if not isinstance(names, list):
        return "[]"
    return "[" + " ".join(f'"{name}"' for name in names) + "]"


def _stdin_token(ctx: Context) -> str:
    token = ctx.stdin.read().strip()
    if not token:
        raise UsageError("no token on standard input")
    ctx.redact.add(token)
    return token


def _target(ctx: Context) -> tuple[str, str] | None:
    """('token', value) for '-', ('accessor', value) with -accessor, None for the own token."""
    target = ctx.args.target
    if ctx.args.accessor:
        if not target or target == "-":
            raise UsageError("-accessor needs the accessor as the argument")
        return "accessor", target
    if target is None:
        return None
    if target != "-":
        raise UsageError(_ARGUMENT_REFUSED)
    return "token", _stdin_token(ctx)


def _lookup(ctx: Context) -> int:
    target = _target(ctx)
    if target is None:
        reply = ctx.call("GET", "auth/token/lookup-self", doing="looking up token")
    elif target[0] == "accessor":
        reply = ctx.call(
            "POST",
            "auth/token/lookup-accessor",
            body={"accessor": target[1]},
            doing="looking up token",
        )
    else:
        reply = ctx.call(
            "POST", "auth/token/lookup", body={"token": target[1]}, doing="looking up token"
        )
    body = reply.body if isinstance(reply.body, dict) else {}
    raw = body.get("data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    token_id = data.get("id")
    ctx.redact.add(token_id if isinstance(token_id, str) else None)
    # The lookup answer carries the token itself as `id`: mask it everywhere unless the user
    # asks for exactly that field.
    masked = {**data, "id": REDACTED} if token_id else data
    document = {**body, "data": masked}
    ctx.out.show(
        View(document=document, sections=[Section(rows=sorted(masked.items()))], fields=data)
    )
    return 0


def _revoke(ctx: Context) -> int:
    if ctx.args.self:
        if ctx.args.target is not None or ctx.args.accessor:
            raise UsageError("-self takes no argument and no -accessor")
        ctx.call("POST", "auth/token/revoke-self", doing="revoking token")
    else:
        target = _target(ctx)
        if target is None:
            raise UsageError(
                "say which token: -self, -accessor ACCESSOR, or '-' to read it from standard input"
            )
        kind, value = target
        path = "auth/token/revoke-accessor" if kind == "accessor" else "auth/token/revoke"
        ctx.call("POST", path, body={kind: value}, doing="revoking token")
    ctx.out.line("Success! Revoked token (if it existed)")
    return 0
