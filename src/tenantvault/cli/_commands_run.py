"""`tenantvault run -- CMD ARGS…`: start a program (an MCP server) with its `tv://` references
resolved into its environment, and keep it supplied; `tenantvault mcp check` for configs.

Nothing of ours goes to standard output (a stdio MCP server speaks JSON-RPC there): our
messages go to standard error, or to `--log-file`. Values are put in the child's environment
only: never in a file, an argument, a log line or an error message.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import queue
import signal
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from tenantvault._durations import parse_duration
from tenantvault._exceptions import InvalidRequestError
from tenantvault._refs import Reference
from tenantvault.cli._args import UsageError, add_flag
from tenantvault.cli._context import Context, Failure
from tenantvault.cli._http import Settings
from tenantvault.cli._launcher import Event, Launcher, block_signals
from tenantvault.cli._login import (
    LoginError,
    LoginMethod,
    Session,
    read_secret_file,
    unwrap_secret_id,
)
from tenantvault.cli._mcp_config import ConfigError, load_servers
from tenantvault.cli._resolve import ResolveError, Resolver, find_references, read_env_file
from tenantvault.cli._watcher import OnRotate, Watcher, resolve_all

__all__ = ["register"]

DEFAULT_POLL_SECONDS = 30
# The bound on the polling rate: one metadata read per reference per second at most.
MIN_POLL_SECONDS = 1
DEFAULT_STOP_SECONDS = 10
# Our own credential is not the child's: it gets the values it references, not our token.
_NOT_INHERITED = ("VAULT_TOKEN",)
_PREFIX = "tenantvault run: "


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add `run` and `mcp check` to the command tree."""
    del common  # run has no output format: its output is the child's
    run = subparsers.add_parser(
        "run",
        help="run a program (an MCP server) with its tv:// references resolved",
        description="Log in, resolve every tv://MOUNT/PATH#FIELD value in the environment and "
        "the env files, and run CMD with the values in its environment only. Standard input, "
        "output and error are the child's; signals are forwarded; the exit code is the "
        "child's (2 when a reference cannot be resolved: the child is then not started).",
    )
    _connection(run)
    login = run.add_argument_group("login (default: VAULT_TOKEN or ~/.vault-token)")
    add_flag(login, "token-file", metavar="FILE", help="read the token from FILE")
    add_flag(login, "role-id-file", metavar="FILE", help="AppRole: the role-id")
    add_flag(login, "secret-id-file", metavar="FILE", help="AppRole: the secret-id")
    add_flag(
        login,
        "wrapped-secret-id-file",
        metavar="FILE",
        help="AppRole: a wrapping token holding the secret-id (unwrapped once, at start)",
    )
    add_flag(login, "jwt-file", metavar="FILE", help="JWT login: the token (re-read at each login)")
    add_flag(login, "role", metavar="NAME", help="JWT login: the role")
    add_flag(
        login,
        "auth-mount",
        metavar="PATH",
        help="where the method is mounted (default: approle or jwt)",
    )
    child = run.add_argument_group("the child")
    add_flag(
        child,
        "env-file",
        metavar="FILE",
        action="append",
        default=[],
        help="NAME=VALUE lines added to the environment (repeatable; values may be tv://)",
    )
    add_flag(child, "mcp-config", metavar="FILE", help="an MCP client config (mcp.json, ...)")
    add_flag(child, "server", metavar="NAME", help="the entry of --mcp-config to run")
    add_flag(
        child,
        "on-rotate",
        metavar="ACTION",
        default="none",
        help="when a referenced secret gets a new version: restart, signal:NAME (e.g. "
        "signal:HUP), exit or none (default none)",
    )
    add_flag(
        child,
        "poll-interval",
        metavar="DURATION",
        default=str(DEFAULT_POLL_SECONDS),
        help=f"how often to check for new versions (default {DEFAULT_POLL_SECONDS}s, "
        f"at least {MIN_POLL_SECONDS}s)",
    )
    add_flag(
        child,
        "stop-timeout",
        metavar="DURATION",
        default=str(DEFAULT_STOP_SECONDS),
        help="how long a stopping child has after SIGTERM before SIGKILL (default 10s)",
    )
    add_flag(child, "log-file", metavar="FILE", help="our messages go here instead of stderr")
    run.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ARGS")
    run.set_defaults(handler=_run)


def _connection(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection (environment: VAULT_ADDR, VAULT_NAMESPACE, ...)")
    add_flag(group, "address", metavar="ADDR", help="server address (default $VAULT_ADDR)")
    group.add_argument(
        "-namespace",
        "--namespace",
        "-ns",
        "--ns",
        dest="namespace",
        metavar="TENANT",
        help="tenant to log in and read in (default $VAULT_NAMESPACE)",
    )
    add_flag(
        group, "ca-cert", metavar="FILE", help="CA bundle to verify TLS (default $VAULT_CACERT)"
    )
    add_flag(group, "ca-path", metavar="DIR", help="directory of CA certificates")


def parse_on_rotate(raw: str) -> OnRotate:
    """`restart`, `exit`, `none`, or `signal:NAME` as a signal number."""
    if raw in ("restart", "exit", "none"):
        return raw
    kind, colon, name = raw.partition(":")
    if kind == "signal" and colon:
        name = name.upper()
        name = name if name.startswith("SIG") else f"SIG{name}"
        try:
            return int(signal.Signals[name])
        except KeyError:
            raise UsageError(f"--on-rotate: unknown signal {name}") from None
    raise UsageError("--on-rotate must be restart, signal:NAME, exit or none")


def _seconds(raw: str, *, flag: str, minimum: int) -> int:
    try:
        seconds = parse_duration(raw, field=flag)
    except InvalidRequestError:
        raise UsageError(f"--{flag} is not a duration (e.g. 30 or 30s)") from None
    if seconds < minimum:
        raise UsageError(f"--{flag} must be at least {minimum}s")
    return seconds


class _Log:
    """Our messages: one line each, to stderr or the log file, redacted on the way out."""

    def __init__(self, ctx: Context, path: str | None) -> None:
        self._redact = ctx.redact
        self._stream: TextIO = sys.stderr
        if path:
            # 0600: the log names references and the identity, nobody else's business.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as error:
                raise UsageError(f"cannot open the log file {path}: {error.strerror}") from None
            self._stream = os.fdopen(fd, "a", encoding="utf-8")

    def __call__(self, message: str) -> None:
        self._stream.write(_PREFIX + self._redact(message) + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._stream is not sys.stderr:
            self._stream.close()


def _command_and_env(ctx: Context) -> tuple[list[str], dict[str, str]]:
    args = ctx.args
    cmd = list(args.cmd)
    if cmd[:1] == ["--"]:
        cmd = cmd[1:]
    env = {key: value for key, value in ctx.env.items() if key not in _NOT_INHERITED}
    if args.mcp_config:
        if cmd:
            raise UsageError("give either --mcp-config and --server or -- CMD ARGS, not both")
        if not args.server:
            raise UsageError("--mcp-config needs --server NAME")
        try:
            servers = load_servers(Path(args.mcp_config))
        except ConfigError as error:
            raise UsageError(str(error)) from None
        entry = servers.get(args.server)
        if entry is None:
            raise UsageError(f"{args.mcp_config} has no server {args.server!r}")
        cmd = [entry.command, *entry.args]
        env.update(entry.env)
    elif args.server:
        raise UsageError("--server needs --mcp-config FILE")
    if not cmd:
        raise UsageError("no command: tenantvault run [OPTIONS] -- CMD ARGS")
    for env_file in args.env_file:
        try:
            env.update(read_env_file(Path(env_file)))
        except ResolveError as error:
            raise UsageError(str(error)) from None
    return cmd, env


def _method(ctx: Context, settings: Settings) -> tuple[LoginMethod, Settings]:
    args = ctx.args
    approle = args.role_id_file or args.secret_id_file or args.wrapped_secret_id_file
    if sum(bool(x) for x in (approle, args.jwt_file, args.token_file)) > 1:
        raise UsageError("choose one login: --token-file, AppRole files or --jwt-file")
    if args.token_file:
        token = read_secret_file(Path(args.token_file), what="token")
        ctx.redact.add(token)
        return LoginMethod("token"), dataclasses.replace(settings, token=token)
    settings = dataclasses.replace(settings, token=None) if (approle or args.jwt_file) else settings
    if args.jwt_file:
        if not args.role:
            raise UsageError("--jwt-file needs --role NAME")
        ctx.redact.add(read_secret_file(Path(args.jwt_file), what="JWT"))
        return LoginMethod(
            "jwt", args.auth_mount or "jwt", args.role, jwt_file=Path(args.jwt_file)
        ), settings
    if approle:
        if not args.role_id_file or bool(args.secret_id_file) == bool(args.wrapped_secret_id_file):
            raise UsageError(
                "AppRole needs --role-id-file and one of --secret-id-file or "
                "--wrapped-secret-id-file"
            )
        role_id = read_secret_file(Path(args.role_id_file), what="role-id")
        ctx.redact.add(role_id)
        if args.wrapped_secret_id_file:
            wrapping = read_secret_file(Path(args.wrapped_secret_id_file), what="wrapping token")
            ctx.redact.add(wrapping)
            secret_id = unwrap_secret_id(settings, wrapping)
        else:
            secret_id = read_secret_file(Path(args.secret_id_file), what="secret-id")
        ctx.redact.add(secret_id)
        return LoginMethod(
            "approle", args.auth_mount or "approle", role_id=role_id, secret_id=secret_id
        ), settings
    return LoginMethod("token"), settings


def _run(ctx: Context) -> int:
    args = ctx.args
    on_rotate = parse_on_rotate(args.on_rotate)
    poll = _seconds(args.poll_interval, flag="poll-interval", minimum=MIN_POLL_SECONDS)
    stop_timeout = _seconds(args.stop_timeout, flag="stop-timeout", minimum=0)
    cmd, env = _command_and_env(ctx)
    try:
        refs = find_references(env)
    except ResolveError as error:
        raise Failure(f"{_PREFIX}{error}; the command was not started", exit_code=2) from None
    settings = Settings.from_env(
        ctx.env,
        address=args.address,
        namespace=args.namespace,
        ca_cert=args.ca_cert,
        ca_path=args.ca_path,
    )
    ctx.redact.add(settings.token)
    log = _Log(ctx, args.log_file)
    try:
        try:
            method, settings = _method(ctx, settings)
            session = Session(settings, method, on_secret=ctx.redact.add)
            session.start()
        except LoginError as error:
            raise Failure(f"{_PREFIX}{error}; the command was not started", exit_code=2) from None
        try:
            child_env, versions = _resolve(session, refs, env, watch=on_rotate != "none")
            for name in refs:
                ctx.redact.add(child_env[name])
            log(f"resolved {len(refs)} reference(s) as a {method.kind} identity")
            return _supervise(
                cmd,
                child_env,
                session=session,
                refs=refs,
                env=env,
                versions=versions,
                on_rotate=on_rotate,
                poll_seconds=poll,
                stop_seconds=stop_timeout,
                log=log,
            )
        finally:
            session.revoke()
    finally:
        log.close()


def _resolve(
    session: Session, refs: Mapping[str, Reference], env: Mapping[str, str], *, watch: bool
) -> tuple[dict[str, str], dict[str, int]]:
    resolver = Resolver(session.settings)
    try:
        child_env, versions = resolve_all(resolver, refs, env)
        if watch:
            # Metadata must be readable now, or rotations would go unseen later.
            for name, ref in refs.items():
                if ref.version is None:
                    versions[name] = resolver.current_version(ref)
    except ResolveError as error:
        raise Failure(f"{_PREFIX}{error}; the command was not started", exit_code=2) from None
    return child_env, versions


def _supervise(
    cmd: list[str],
    child_env: dict[str, str],
    *,
    session: Session,
    refs: Mapping[str, Reference],
    env: Mapping[str, str],
    versions: dict[str, int],
    on_rotate: OnRotate,
    poll_seconds: int,
    stop_seconds: int,
    log: Callable[[str], None],
) -> int:
    events: queue.Queue[Event] = queue.Queue()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    # Blocked before the child and the watcher thread exist, so no signal is missed and no
    # thread takes one (the watcher inherits the mask).
    block_signals()
    launcher = Launcher(
        cmd,
        child_env,
        events=events,
        log=log,
        stop_timeout_seconds=stop_seconds,
        clock=time.monotonic,
    )
    try:
        try:
            launcher.spawn()
        except FileNotFoundError:
            raise Failure(f"{_PREFIX}command not found: {cmd[0]}", exit_code=127) from None
        except OSError as error:
            raise Failure(
                f"{_PREFIX}cannot start {cmd[0]}: {error.strerror or type(error).__name__}",
                exit_code=126,
            ) from None
        watcher = Watcher(
            session,
            refs,
            env,
            versions,
            on_rotate=on_rotate,
            poll_interval_seconds=poll_seconds,
            events=events,
            log=log,
        )
        watcher.start()
        try:
            code = launcher.run()
        finally:
            watcher.stop()
        log(f"the child exited with {code}")
        return code
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
