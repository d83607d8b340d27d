"""Vault-style arguments: `-flag` and `--flag`, `-flag=value`, `-bool=false`, `k=v` data."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO
from urllib.parse import quote

from tenantvault.cli._output import FORMATS

__all__ = [
    "BOOL_FLAGS",
    "Parser",
    "UsageError",
    "add_bool_flag",
    "add_flag",
    "check_format",
    "common_options",
    "normalize_bool_flags",
    "parse_key_values",
    "parse_pairs",
    "parse_versions",
    "read_source",
    "segment",
]

# Every boolean flag of the CLI. `-name=false` is rewritten to `--no-name` before parsing,
# because argparse cannot give a zero-argument flag an `=value`.
BOOL_FLAGS = frozenset(
    {"accessor", "cas-required", "no-default-policy", "orphan", "renewable", "self"}
)
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_BOOL_ARG = re.compile(r"--?([a-z][a-z-]*)=(.*)", re.DOTALL)


class UsageError(Exception):
    """The command line is wrong (exit 2). The message never quotes a data value."""

    def __init__(self, message: str, *, usage: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises UsageError instead of printing and exiting, so `main`
    can redact the message and return the exit code."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, usage=self.format_usage())


def add_flag(parser: argparse._ActionsContainer, name: str, **kwargs: Any) -> argparse.Action:
    """A flag spelled both `-name` (Vault) and `--name` (GNU)."""
    kwargs.setdefault("dest", name.replace("-", "_"))
    return parser.add_argument(f"-{name}", f"--{name}", **kwargs)


def add_bool_flag(
    parser: argparse.ArgumentParser, name: str, *, default: bool | None, help: str
) -> argparse.Action:
    """A Vault boolean flag: `-name`, `-name=true`, `-name=false` (and `--no-name`)."""
    if name not in BOOL_FLAGS:
        raise ValueError(f"{name} must be listed in BOOL_FLAGS")
    return parser.add_argument(
        f"-{name}",
        f"--{name}",
        dest=name.replace("-", "_"),
        action=argparse.BooleanOptionalAction,
        default=default,
        help=help,
    )


def normalize_bool_flags(argv: Sequence[str]) -> list[str]:
    """Rewrite `-flag=true|false` of BOOL_FLAGS into `--flag` / `--no-flag`."""
    out: list[str] = []
    for index, arg in enumerate(argv):
        if arg == "--":
            out.extend(argv[index:])
            break
        match = _BOOL_ARG.fullmatch(arg)
        if match is not None and match.group(1) in BOOL_FLAGS:
            name, value = match.group(1), match.group(2)
            if value in _TRUE:
                out.append(f"--{name}")
            elif value in _FALSE:
                out.append(f"--no-{name}")
            else:
                raise UsageError(f"invalid boolean value for -{name}: use true or false")
            continue
        out.append(arg)
    return out


def common_options() -> argparse.ArgumentParser:
    """The flags every API command takes, as Vault's HTTP and output options."""
    common = Parser(add_help=False)
    group = common.add_argument_group("connection (environment: VAULT_ADDR, VAULT_NAMESPACE, ...)")
    add_flag(
        group,
        "address",
        metavar="ADDR",
        help="server address (default $VAULT_ADDR or http://127.0.0.1:8200)",
    )
    group.add_argument(
        "-namespace",
        "--namespace",
        "-ns",
        "--ns",
        dest="namespace",
        metavar="TENANT",
        help="tenant to act in (default $VAULT_NAMESPACE)",
    )
    add_flag(
        group, "ca-cert", metavar="FILE", help="CA bundle to verify TLS (default $VAULT_CACERT)"
    )
    add_flag(
        group, "ca-path", metavar="DIR", help="directory of CA certificates (default $VAULT_CAPATH)"
    )
    add_flag(
        group,
        "wrap-ttl",
        metavar="DURATION",
        default=None,
        help="wrap the response in a single-use token living this long, e.g. 5m "
        "(default $VAULT_WRAP_TTL); `tenantvault unwrap` opens it",
    )
    output = common.add_argument_group("output")
    add_flag(
        output,
        "format",
        metavar="FORMAT",
        default=None,
        help="table or json (default $VAULT_FORMAT or table)",
    )
    add_flag(
        output,
        "field",
        metavar="NAME",
        default=None,
        help="print only this field, raw (the only way to print a masked value)",
    )
    return common


def check_format(value: str | None) -> str:
    fmt = (value or "table").lower()
    if fmt not in FORMATS:
        raise UsageError(f"unsupported output format {fmt!r}: use table or json")
    return fmt


def read_source(source: str, stdin: TextIO, *, what: str) -> str:
    """The text of FILE, or of standard input for '-'."""
    if source == "-":
        return stdin.read()
    try:
        return Path(source).read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(
            f"cannot read {what} from {source}: {error.strerror or 'I/O error'}"
        ) from None
    except UnicodeDecodeError:
        raise UsageError(f"cannot read {what} from {source}: not UTF-8 text") from None


def _json_object(text: str, *, origin: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        # json's message quotes a slice of the document, which may be a secret: say where only.
        raise UsageError(f"the data from {origin} is not valid JSON") from None
    if not isinstance(value, dict):
        raise UsageError(f"the data from {origin} must be a JSON object")
    return value


def parse_pairs(
    args: Sequence[str], stdin: TextIO, *, on_value: Callable[[str], None]
) -> dict[str, Any]:
    """Vault's data arguments: `k=v`, `k=@file`, `k=-` (stdin), or `-` / `@file.json` alone for
    a JSON object. `on_value` sees every submitted string, so errors can redact it."""
    data: dict[str, Any] = {}
    stdin_used = False
    for arg in args:
        if arg == "-" or (arg.startswith("@") and "=" not in arg):
            origin = "standard input" if arg == "-" else arg[1:]
            if arg == "-":
                if stdin_used:
                    raise UsageError("standard input can be used only once")
                stdin_used = True
            text = read_source("-" if arg == "-" else arg[1:], stdin, what="data")
            on_value(text)
            document = _json_object(text, origin=origin)
            _collect_strings(document, on_value)
            data.update(document)
            continue
        key, sep, value = arg.partition("=")
        if not sep or not key:
            # Never quote the argument: it may be a secret typed without its key.
            raise UsageError(f"data arguments must be KEY=VALUE (argument {args.index(arg) + 1})")
        if value == "-":
            if stdin_used:
                raise UsageError("standard input can be used only once")
            stdin_used = True
            value = stdin.read()
        elif value.startswith("@"):
            value = read_source(value[1:], stdin, what=f"the value of {key}")
        on_value(value)
        data[key] = value
    return data


def _collect_strings(value: Any, sink: Callable[[str], None]) -> None:
    if isinstance(value, str):
        sink(value)
    elif isinstance(value, dict):
        for item in value.values():
            _collect_strings(item, sink)
    elif isinstance(value, list):
        for item in value:
            _collect_strings(item, sink)


def parse_versions(raw: str | None, *, required: bool) -> list[int]:
    """`-versions=1,2,3` as a list of positive integers."""
    if not raw:
        if required:
            raise UsageError('no versions provided: use the "-versions" flag, e.g. -versions=1,2')
        return []
    versions: list[int] = []
    for part in raw.split(","):
        text = part.strip()
        if not text.isdigit() or not text.isascii() or int(text) < 1:
            raise UsageError("-versions must be a comma-separated list of positive integers")
        versions.append(int(text))
    return versions


def parse_key_values(items: Sequence[str] | None, *, flag: str) -> dict[str, str]:
    """Repeated `-flag k=v` options as a mapping."""
    result: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"-{flag} takes KEY=VALUE")
        result[key] = value
    return result


def segment(name: str, *, what: str) -> str:
    """One name as one URL path segment: '/' is encoded and dot segments are refused, so a name
    can never step into another path (hvac sends '..' as it is, and a server that resolves it
    would act on the parent)."""
    if name in ("", ".", ".."):
        raise UsageError(f"invalid {what}: {name!r}")
    return quote(name, safe="")
