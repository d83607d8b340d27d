"""`transit …`: encryption as a service for the current tenant (the `transit/` mount).

Plaintext is read from a file or standard input, never from the command line, so it stays
out of shell history and process listings; decrypt writes the plaintext's raw bytes.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tenantvault import _b64
from tenantvault.cli._args import UsageError, add_flag, segment
from tenantvault.cli._commands_sys import unwrap
from tenantvault.cli._context import Context
from tenantvault.cli._output import Section, View

__all__ = ["register"]

_KEY_TYPES = ("aes256-gcm96", "aes128-gcm96", "chacha20-poly1305", "ed25519", "hmac")


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    transit = subparsers.add_parser("transit", help="encrypt, decrypt and sign with tenant keys")
    commands = transit.add_subparsers(dest="transit_command", metavar="COMMAND", required=True)

    key = commands.add_parser("key", help="manage transit keys")
    keys = key.add_subparsers(dest="key_command", metavar="COMMAND", required=True)
    create = keys.add_parser("create", parents=[common], help="create a key")
    create.add_argument("name", metavar="NAME")
    add_flag(create, "type", default="aes256-gcm96", choices=_KEY_TYPES, help="key type")
    add_flag(create, "derived", action="store_true", help="derive a key per context (HKDF)")
    add_flag(create, "convergent", action="store_true", help="convergent encryption")
    add_flag(create, "auto-rotate-period", metavar="DURATION", help="e.g. 720h; 0 disables")
    create.set_defaults(handler=_create)
    for name, handler, help_text in (
        ("read", _read, "show a key's versions and settings"),
        ("rotate", _rotate, "add a new key version"),
        ("delete", _delete, "delete a key (needs deletion_allowed)"),
    ):
        sub = keys.add_parser(name, parents=[common], help=help_text)
        sub.add_argument("name", metavar="NAME")
        sub.set_defaults(handler=handler)
    listing = keys.add_parser("list", parents=[common], help="list key names")
    listing.set_defaults(handler=_list)
    config = keys.add_parser("config", parents=[common], help="change a key's settings")
    config.add_argument("name", metavar="NAME")
    for flag in ("min-decryption-version", "min-encryption-version"):
        add_flag(config, flag, type=int, metavar="N")
    add_flag(config, "auto-rotate-period", metavar="DURATION")
    add_flag(config, "deletion-allowed", choices=("true", "false"))
    config.set_defaults(handler=_config)

    encrypt = commands.add_parser("encrypt", parents=[common], help="encrypt a file or stdin")
    encrypt.add_argument("name", metavar="KEY")
    encrypt.add_argument("source", metavar="FILE", help="the plaintext, or - for stdin")
    add_flag(encrypt, "context", metavar="TEXT", help="derivation context (derived keys)")
    encrypt.set_defaults(handler=_encrypt)
    decrypt = commands.add_parser("decrypt", parents=[common], help="decrypt to stdout")
    decrypt.add_argument("name", metavar="KEY")
    decrypt.add_argument("ciphertext", metavar="CIPHERTEXT", help="vault:v1:… or - for stdin")
    add_flag(decrypt, "context", metavar="TEXT", help="derivation context (derived keys)")
    decrypt.set_defaults(handler=_decrypt)
    rewrap = commands.add_parser("rewrap", parents=[common], help="re-encrypt with the latest key")
    rewrap.add_argument("name", metavar="KEY")
    rewrap.add_argument("ciphertext", metavar="CIPHERTEXT", help="vault:v1:… or - for stdin")
    add_flag(rewrap, "context", metavar="TEXT")
    rewrap.set_defaults(handler=_rewrap)
    datakey = commands.add_parser("datakey", parents=[common], help="generate a data key")
    datakey.add_argument("name", metavar="KEY")
    add_flag(datakey, "bits", type=int, default=256, choices=(128, 256, 512))
    add_flag(datakey, "wrapped-only", action="store_true", help="omit the plaintext key")
    datakey.set_defaults(handler=_datakey)
    random = commands.add_parser("random", parents=[common], help="random bytes from the server")
    add_flag(random, "bytes", type=int, default=32, metavar="N")
    random.set_defaults(handler=_random)


def _key_path(ctx: Context, suffix: str = "") -> str:
    return f"transit/keys/{segment(ctx.args.name, what='key name')}{suffix}"


def _show(ctx: Context, data: dict[str, Any], document: Any) -> None:
    rows = sorted((key, value) for key, value in data.items())
    ctx.out.show(View(document=document, sections=[Section(rows=rows)], fields=data))


def _create(ctx: Context) -> int:
    body: dict[str, Any] = {
        "type": ctx.args.type,
        "derived": ctx.args.derived,
        "convergent_encryption": ctx.args.convergent,
    }
    if ctx.args.auto_rotate_period:
        body["auto_rotate_period"] = ctx.args.auto_rotate_period
    ctx.call("POST", _key_path(ctx), body=body, doing="creating key")
    ctx.out.line(f"Success! Created key: {ctx.args.name}")
    return 0


def _read(ctx: Context) -> int:
    reply = ctx.call("GET", _key_path(ctx), doing="reading key")
    _show(ctx, unwrap(reply.body), reply.body)
    return 0


def _rotate(ctx: Context) -> int:
    reply = ctx.call("POST", _key_path(ctx, "/rotate"), body={}, doing="rotating key")
    data = unwrap(reply.body)
    ctx.out.line(f"Success! Rotated key {ctx.args.name} to version {data.get('latest_version')}")
    return 0


def _delete(ctx: Context) -> int:
    ctx.call("DELETE", _key_path(ctx), doing="deleting key")
    ctx.out.line(f"Success! Deleted key: {ctx.args.name}")
    return 0


def _list(ctx: Context) -> int:
    reply = ctx.call("GET", "transit/keys", params={"list": "true"}, doing="listing keys")
    ctx.out.keys([str(key) for key in unwrap(reply.body).get("keys") or []])
    return 0


def _config(ctx: Context) -> int:
    body: dict[str, Any] = {}
    for flag in ("min_decryption_version", "min_encryption_version", "auto_rotate_period"):
        value = getattr(ctx.args, flag)
        if value is not None:
            body[flag] = value
    if ctx.args.deletion_allowed is not None:
        body["deletion_allowed"] = ctx.args.deletion_allowed == "true"
    if not body:
        raise UsageError("nothing to change: give at least one setting")
    ctx.call("POST", _key_path(ctx, "/config"), body=body, doing="configuring key")
    ctx.out.line(f"Success! Updated key: {ctx.args.name}")
    return 0


def _context(ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
    if ctx.args.context:
        body["context"] = _b64.encode(ctx.args.context.encode())
    return body


def _read_bytes(ctx: Context, source: str) -> bytes:
    if source == "-":
        binary = getattr(ctx.stdin, "buffer", None)
        return binary.read() if binary is not None else ctx.stdin.read().encode()
    try:
        return Path(source).read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read {source}: {error.strerror or 'I/O error'}") from None


def _ciphertext(ctx: Context) -> str:
    value: str = ctx.args.ciphertext
    if value == "-":
        value = ctx.stdin.read().strip()
    return value


def _encrypt(ctx: Context) -> int:
    plaintext = _read_bytes(ctx, ctx.args.source)
    body = _context(ctx, {"plaintext": _b64.encode(plaintext)})
    reply = ctx.call(
        "POST",
        f"transit/encrypt/{segment(ctx.args.name, what='key name')}",
        body=body,
        doing="encrypting",
    )
    _show(ctx, unwrap(reply.body), reply.body)
    return 0


def _decrypt(ctx: Context) -> int:
    body = _context(ctx, {"ciphertext": _ciphertext(ctx)})
    reply = ctx.call(
        "POST",
        f"transit/decrypt/{segment(ctx.args.name, what='key name')}",
        body=body,
        doing="decrypting",
    )
    data = unwrap(reply.body)
    if ctx.out.is_json or ctx.out.field is not None:
        _show(ctx, data, reply.body)
        return 0
    try:
        raw = _b64.decode(str(data.get("plaintext", "")))
    except ValueError:
        raise UsageError("the server returned a plaintext that is not base64") from None
    # The plaintext itself, byte for byte: this command exists to produce it.
    ctx.out.stdout.flush()
    target = getattr(ctx.out.stdout, "buffer", None)
    if target is not None:
        target.write(raw)
        target.flush()
    else:
        ctx.out.stdout.write(raw.decode("utf-8", "replace"))
    return 0


def _rewrap(ctx: Context) -> int:
    body = _context(ctx, {"ciphertext": _ciphertext(ctx)})
    reply = ctx.call(
        "POST",
        f"transit/rewrap/{segment(ctx.args.name, what='key name')}",
        body=body,
        doing="rewrapping",
    )
    _show(ctx, unwrap(reply.body), reply.body)
    return 0


def _datakey(ctx: Context) -> int:
    kind = "wrapped" if ctx.args.wrapped_only else "plaintext"
    reply = ctx.call(
        "POST",
        f"transit/datakey/{kind}/{segment(ctx.args.name, what='key name')}",
        body={"bits": ctx.args.bits},
        doing="generating a data key",
    )
    _show(ctx, unwrap(reply.body), reply.body)
    return 0


def _random(ctx: Context) -> int:
    if not 1 <= ctx.args.bytes <= 1024 * 1024:
        raise UsageError("-bytes must be between 1 and 1048576")
    reply = ctx.call(
        "POST",
        f"transit/random/{ctx.args.bytes}",
        body={"format": "base64"},
        doing="generating random bytes",
    )
    _show(ctx, unwrap(reply.body), reply.body)
    return 0
