"""The `tenantvault` command: a Vault-style CLI over the HTTP API, and `serve` to run the server."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib import import_module
from types import ModuleType
from typing import Any

from tenantvault._version import __version__
from tenantvault.cli import (
    _commands_audit,
    _commands_kv,
    _commands_kv_metadata,
    _commands_mcp,
    _commands_observe,
    _commands_operator,
    _commands_policy,
    _commands_run,
    _commands_sys,
    _commands_token,
    _commands_transit,
    _commands_wrapping,
)
from tenantvault.cli._args import Parser, UsageError, common_options, normalize_bool_flags
from tenantvault.cli._context import Context, Failure
from tenantvault.cli._http import SettingsError
from tenantvault.cli._output import FieldMissingError
from tenantvault.cli._text import Redactor, printable
from tenantvault.cli._wrapped import Wrapped

__all__ = ["main"]

_SERVE_MODULE = "tenantvault.cli._serve"


def _load_serve() -> ModuleType:
    """The server's command module, imported only for `serve`: the other commands must not pay
    for the server's imports, nor fail on a damaged installation of them."""
    try:
        return import_module(_SERVE_MODULE)
    except ModuleNotFoundError as error:
        if error.name == _SERVE_MODULE:
            raise UsageError("the serve command is not available in this installation") from None
        raise UsageError(
            f"the serve command needs the module {error.name!r}, a dependency of tenantvault: "
            "reinstall it with pip install --force-reinstall tenantvault"
        ) from None


def build_parser(*, serve: ModuleType | None = None) -> Parser:
    """The whole command tree. `serve` is the real server module, or None for a stub entry
    that only lists the command in the help."""
    parser = Parser(
        prog="tenantvault",
        description="Multi-tenant, Vault-compatible secrets service. Flags take one or two "
        "dashes (-format=json or --format=json). Tokens come from VAULT_TOKEN or "
        "~/.vault-token, never from the command line.",
    )
    parser.add_argument(
        "-version", "--version", action="version", version=f"tenantvault {__version__}"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    if serve is not None:
        serve.add_parser(subparsers)
    else:
        subparsers.add_parser(
            "serve", help="run the server (see: tenantvault serve --help)", add_help=False
        )
    common = common_options()
    _commands_sys.register(subparsers, common)
    _commands_operator.register(subparsers, common)
    _commands_policy.register(subparsers, common)
    _commands_token.register(subparsers, common)
    kv_commands = _commands_kv.register(subparsers, common)
    _commands_kv_metadata.register(kv_commands, common)
    _commands_audit.register(subparsers, common)
    _commands_observe.register(subparsers, common)
    _commands_transit.register(subparsers, common)
    _commands_wrapping.register(subparsers, common)
    _commands_run.register(subparsers, common)
    _commands_mcp.register(subparsers, common)
    return parser


def _argv_secrets(argv: Sequence[str]) -> Redactor:
    """Data values typed on the command line (`key=value`), to keep them out of usage errors:
    argparse quotes arguments it rejects."""
    redact = Redactor()
    for arg in argv:
        if not arg.startswith("-") and "=" in arg:
            redact.add(arg.partition("=")[2])
    return redact


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit code (0 ok, 1 request failed, 2 usage or not found)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    stderr = sys.stderr
    redact = _argv_secrets(args_list)
    try:
        return _run(args_list, redact)
    except UsageError as error:
        stderr.write(printable(redact(error.message)) + "\n")
        if error.usage:
            stderr.write(printable(redact(error.usage)))
        return 2
    except SettingsError as error:
        stderr.write(printable(f"Error: {error}") + "\n")
        return 2
    except FieldMissingError as error:
        stderr.write(printable(f'Field "{error}" not present in secret') + "\n")
        return 1
    except Wrapped:
        return 0  # -wrap-ttl: the wrapping token was shown instead of the answer
    except Failure as error:
        stderr.write(printable(redact(error.message)) + "\n")
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `tenantvault kv list … | head`: the reader left; nothing is wrong with the request.
        return 1
    except Exception as error:
        # The last line of defence: a traceback could quote a secret from a local value.
        if os.environ.get("TENANTVAULT_CLI_TRACEBACK"):
            raise
        stderr.write(
            f"Error: unexpected internal error ({type(error).__name__}); "
            "set TENANTVAULT_CLI_TRACEBACK=1 to see the traceback\n"
        )
        return 1


def _run(argv: list[str], redact: Redactor) -> int:
    serve = _load_serve() if argv[:1] == ["serve"] else None
    parser = build_parser(serve=serve)
    try:
        # `serve` has flags of its own; the Vault-style boolean spelling is the API commands'.
        args = parser.parse_args(argv if serve is not None else normalize_bool_flags(argv))
    except SystemExit as exit_:
        # --help and --version print and exit through argparse.
        return exit_.code if isinstance(exit_.code, int) else 0
    if serve is not None and args.command == "serve":
        result: Any = serve.run(args)
        return int(result or 0)
    context = Context(args, env=os.environ, stdin=sys.stdin, stdout=sys.stdout, stderr=sys.stderr)
    try:
        return int(args.handler(context))
    except Failure as error:
        # Add what this run learned (the token, submitted values) to what must not be shown.
        raise Failure(context.redact(redact(error.message)), exit_code=error.exit_code) from None
