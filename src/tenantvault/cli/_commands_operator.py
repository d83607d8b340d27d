"""`operator init|unseal|seal|generate-root|rekey|key-status|rotate`, mirroring `bao operator`:
the seal's life cycle, a new root token or new unseal key shares from a quorum of shares, and
the key terms that wrap tenants' data keys.

Unseal key shares are read from a hidden prompt, or from standard input when it is not a
terminal — never from the command line, where shell history and `ps` would show them. `init`
prints the shares and the root token once, as `bao operator init` does: it is the only moment
they exist anywhere.
"""

from __future__ import annotations

import argparse
import getpass
from typing import Any

from tenantvault import _b64
from tenantvault.cli._args import UsageError, add_flag
from tenantvault.cli._commands_sys import unwrap
from tenantvault.cli._context import Context
from tenantvault.cli._output import Section, View

__all__ = ["register"]

_ARGUMENT_REFUSED = (
    "unseal keys are not accepted as command-line arguments (shell history and `ps` would "
    "show them): type the key at the prompt, or pipe it on standard input"
)


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    operator = subparsers.add_parser(
        "operator", help="initialize, unseal and seal the server (the shamir seal)"
    )
    commands = operator.add_subparsers(dest="operator_command", metavar="COMMAND", required=True)

    init = commands.add_parser(
        "init",
        parents=[common],
        help="initialize a server started with --seal shamir (prints the key shares once)",
        description="Initialize the store: a new master key, split into unseal key shares. "
        "The shares and the initial root token are printed once; the server stays sealed.",
    )
    add_flag(init, "key-shares", metavar="N", type=int, default=5, help="shares (default 5)")
    add_flag(
        init,
        "key-threshold",
        metavar="N",
        type=int,
        default=3,
        help="shares needed to unseal (default 3)",
    )
    add_flag(init, "status", action="store_true", help="only tell whether it is initialized")
    init.set_defaults(handler=_init)

    unseal = commands.add_parser(
        "unseal",
        parents=[common],
        help="give one unseal key share (from the prompt or stdin)",
        description="Give one unseal key share: typed at a hidden prompt, or piped on stdin.",
    )
    unseal.add_argument("key", nargs="?", metavar="-", help="'-': read the share from stdin")
    add_flag(unseal, "reset", action="store_true", help="forget the shares given so far")
    unseal.set_defaults(handler=_unseal)

    seal = commands.add_parser(
        "seal",
        parents=[common],
        help="seal the server: the master key leaves memory (needs a root or sudo token)",
    )
    seal.set_defaults(handler=_seal)

    generate = commands.add_parser(
        "generate-root",
        parents=[common],
        help="make a new root token from a quorum of key shares (needs a token)",
        description="-init starts (prints the nonce and the one-time pad), each holder then "
        "gives a share with -nonce=NONCE (prompt or stdin), the last one gets the encoded "
        "token, which -decode=ENCODED -otp=OTP turns into the root token. -status, -cancel.",
    )
    generate.add_argument("key", nargs="?", metavar="-", help="'-': read the share from stdin")
    add_flag(generate, "init", action="store_true", help="start an attempt")
    add_flag(generate, "cancel", action="store_true", help="cancel the attempt")
    add_flag(generate, "status", action="store_true", help="show the attempt's progress")
    add_flag(generate, "nonce", metavar="NONCE", help="give a share to this attempt")
    add_flag(generate, "decode", metavar="ENCODED", help="decode the encoded token (with -otp)")
    add_flag(generate, "otp", metavar="OTP", help="the one-time pad, for -decode")
    generate.set_defaults(handler=_generate_root)

    rekey = commands.add_parser(
        "rekey",
        aliases=["rotate-keys"],
        parents=[common],
        help="new unseal key shares from a quorum of the current ones (needs a root token)",
        description="-init with -key-shares/-key-threshold starts, each holder then gives a "
        "current share with -nonce=NONCE (prompt or stdin); the last one gets the new shares, "
        "printed once. -status, -cancel.",
    )
    rekey.add_argument("key", nargs="?", metavar="-", help="'-': read the share from stdin")
    add_flag(rekey, "init", action="store_true", help="start a rekey")
    add_flag(rekey, "cancel", action="store_true", help="cancel the rekey")
    add_flag(rekey, "status", action="store_true", help="show the rekey's progress")
    add_flag(rekey, "nonce", metavar="NONCE", help="give a current share to this rekey")
    add_flag(rekey, "key-shares", metavar="N", type=int, default=5, help="new shares (5)")
    add_flag(rekey, "key-threshold", metavar="N", type=int, default=3, help="new threshold (3)")
    rekey.set_defaults(handler=_rekey)

    status = commands.add_parser(
        "key-status", parents=[common], help="show the current key term (needs a root token)"
    )
    status.set_defaults(handler=_key_status)
    rotate = commands.add_parser(
        "rotate",
        parents=[common],
        help="add a key term for new tenant keys; the old term is re-wrapped, then destroyed "
        "after the server's --key-retention",
    )
    rotate.set_defaults(handler=_rotate)


def _init(ctx: Context) -> int:
    if ctx.args.status:
        reply = ctx.call("GET", "sys/init", doing="checking init status", authenticated=False)
        initialized = bool(unwrap(reply.body).get("initialized"))
        # `bao operator init -status`: 0 initialized, 2 not (1 is an error).
        ctx.out.line("Vault is initialized" if initialized else "Vault is not initialized")
        return 0 if initialized else 2
    shares, threshold = ctx.args.key_shares, ctx.args.key_threshold
    reply = ctx.call(
        "PUT",
        "sys/init",
        body={"secret_shares": shares, "secret_threshold": threshold},
        doing="initializing",
        authenticated=False,
    )
    data = unwrap(reply.body)
    keys_b64 = [str(key) for key in data.get("keys_base64") or []]
    keys_hex = [str(key) for key in data.get("keys") or []]
    root_token = str(data.get("root_token") or "")
    for secret in (*keys_b64, *keys_hex, root_token):
        ctx.redact.add(secret)
    # The same document as `bao operator init -format=json`.
    document = {
        "unseal_keys_b64": keys_b64,
        "unseal_keys_hex": keys_hex,
        "unseal_shares": shares,
        "unseal_threshold": threshold,
        "recovery_keys_b64": [],
        "recovery_keys_hex": [],
        "recovery_keys_shares": 0,
        "recovery_keys_threshold": 0,
        "root_token": root_token,
    }
    lines = [f"Unseal Key {n}: {key}" for n, key in enumerate(keys_b64, 1)]
    lines += [
        "",
        f"Initial Root Token: {root_token}",
        "",
        f"Vault initialized with {shares} key shares and a key threshold of {threshold}. "
        "Please securely",
        "distribute the key shares printed above. When the server is re-sealed,",
        f"restarted, or stopped, you must supply at least {threshold} of these keys to unseal",
        "it before it can start servicing requests.",
        "",
        f"The server does not store the unseal key. Without at least {threshold} keys to",
        "reconstruct it, the server will remain permanently sealed!",
    ]
    ctx.out.show(View(document=document, sections=[Section(lines=lines)], fields=document))
    return 0


def _read_share(ctx: Context) -> str:
    if ctx.args.key not in (None, "-"):
        raise UsageError(_ARGUMENT_REFUSED)
    stdin = ctx.stdin
    if ctx.args.key is None and stdin.isatty():
        key = getpass.getpass("Unseal Key (will be hidden): ")
    else:
        key = stdin.readline()
    key = key.strip()
    if not key:
        raise UsageError("no unseal key given")
    ctx.redact.add(key)
    return key


def _unseal(ctx: Context) -> int:
    body: dict[str, Any] = {"reset": True} if ctx.args.reset else {"key": _read_share(ctx)}
    reply = ctx.call("PUT", "sys/unseal", body=body, doing="unsealing", authenticated=False)
    data = unwrap(reply.body)
    rows: list[tuple[str, Any]] = [
        ("Seal Type", data.get("type")),
        ("Initialized", data.get("initialized")),
        ("Sealed", data.get("sealed")),
        ("Total Shares", data.get("n")),
        ("Threshold", data.get("t")),
    ]
    if data.get("sealed"):
        rows += [
            ("Unseal Progress", f"{data.get('progress')}/{data.get('t')}"),
            ("Unseal Nonce", data.get("nonce") or "n/a"),
        ]
    rows += [("Version", data.get("version")), ("Storage Type", data.get("storage_type"))]
    ctx.out.show(View(document=data, sections=[Section(rows=rows)], fields=data))
    return 0


def _seal(ctx: Context) -> int:
    ctx.call("PUT", "sys/seal", doing="sealing")
    ctx.out.line("Success! Vault is sealed.")
    return 0


def _key_status(ctx: Context) -> int:
    reply = ctx.call("GET", "sys/key-status", doing="reading key status")
    data = unwrap(reply.body)
    rows = [
        ("Key Term", data.get("term")),
        ("Install Time", data.get("install_time")),
        ("Encryption Count", data.get("encryptions")),
    ]
    ctx.out.show(View(document=data, sections=[Section(rows=rows)], fields=data))
    return 0


def _rotate(ctx: Context) -> int:
    ctx.call("PUT", "sys/rotate", doing="rotating key")
    status = unwrap(ctx.call("GET", "sys/key-status", doing="reading key status").body)
    rows = [("Key Term", status.get("term")), ("Install Time", status.get("install_time"))]
    ctx.out.show(View(document=status, sections=[Section(rows=rows)], fields=status))
    return 0


_GENERATE_ROOT = "sys/generate-root-token"


def _generate_view(ctx: Context, data: dict[str, Any]) -> None:
    rows: list[tuple[str, Any]] = [
        ("Nonce", data.get("nonce") or "n/a"),
        ("Started", data.get("started")),
        ("Progress", f"{data.get('progress')}/{data.get('required')}"),
        ("Complete", data.get("complete")),
    ]
    if data.get("otp"):
        rows.append(("OTP", data["otp"]))
    rows.append(("OTP Length", data.get("otp_length")))
    if data.get("encoded_token"):
        rows.append(("Encoded Token", data["encoded_token"]))
    ctx.out.show(View(document=data, sections=[Section(rows=rows)], fields=data))


def _generate_root(ctx: Context) -> int:
    args = ctx.args
    if args.decode:
        if not args.otp:
            raise UsageError("-decode needs -otp")
        try:
            raw = _b64.decode(args.decode + "=" * (-len(args.decode) % 4))
        except ValueError:
            raise UsageError("-decode is not base64") from None
        if len(raw) != len(args.otp):
            raise UsageError("the OTP and the encoded token differ in length")
        token = bytes(a ^ b for a, b in zip(raw, args.otp.encode(), strict=True)).decode(
            "ascii", "replace"
        )
        ctx.redact.add(token)
        ctx.out.raw_field(token)
        return 0
    if args.cancel:
        ctx.call("DELETE", f"{_GENERATE_ROOT}/attempt", doing="canceling root generation")
        ctx.out.line("Success! Root token generation canceled (if it was started)")
        return 0
    if args.init:
        reply = ctx.call("PUT", f"{_GENERATE_ROOT}/attempt", body={}, doing="initializing")
        data = unwrap(reply.body)
        ctx.redact.add(str(data.get("otp") or ""))
    elif args.nonce:
        body = {"key": _read_share(ctx), "nonce": args.nonce}
        reply = ctx.call("PUT", f"{_GENERATE_ROOT}/update", body=body, doing="generating root")
        data = unwrap(reply.body)
    else:
        reply = ctx.call("GET", f"{_GENERATE_ROOT}/attempt", doing="reading status")
        data = unwrap(reply.body)
    _generate_view(ctx, data)
    return 0


_REKEY = "sys/rotate/root"


def _rekey(ctx: Context) -> int:
    args = ctx.args
    if args.cancel:
        ctx.call("DELETE", f"{_REKEY}/init", doing="canceling rekey")
        ctx.out.line("Success! Canceled rekeying (if it was started)")
        return 0
    if args.init:
        body = {"secret_shares": args.key_shares, "secret_threshold": args.key_threshold}
        reply = ctx.call("PUT", f"{_REKEY}/init", body=body, doing="initializing rekey")
    elif args.nonce:
        body = {"key": _read_share(ctx), "nonce": args.nonce}
        reply = ctx.call("PUT", f"{_REKEY}/update", body=body, doing="rekeying")
    else:
        reply = ctx.call("GET", f"{_REKEY}/init", doing="reading rekey status")
    data = unwrap(reply.body)
    if data.get("complete"):
        keys = [str(key) for key in data.get("keys_base64") or []]
        for key in (*keys, *(str(k) for k in data.get("keys") or [])):
            ctx.redact.add(key)
        lines = [f"Key {n}: {key}" for n, key in enumerate(keys, 1)]
        lines += ["", f"Operation nonce: {data.get('nonce')}", "", "Vault rekeyed."]
        ctx.out.show(View(document=data, sections=[Section(lines=lines)], fields=data))
        return 0
    rows = [
        ("Nonce", data.get("nonce") or "n/a"),
        ("Started", data.get("started")),
        ("Rekey Progress", f"{data.get('progress', 0)}/{data.get('required')}"),
        ("New Shares", data.get("n")),
        ("New Threshold", data.get("t")),
    ]
    ctx.out.show(View(document=data, sections=[Section(rows=rows)], fields=data))
    return 0
