"""One CLI run: parsed arguments, streams, the lazily built HTTP client and the redactor."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from tenantvault.cli._args import check_format
from tenantvault.cli._http import MERGE_PATCH, APIError, Client, ConnectError, Reply, Settings
from tenantvault.cli._output import Output
from tenantvault.cli._text import Redactor
from tenantvault.cli._wrapped import Wrapped, wrap_view

__all__ = ["MERGE_PATCH", "Context", "Failure", "RequestFailed"]


class Failure(Exception):
    """A command failed in a way it has already put into words; `main` prints and exits."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class RequestFailed(Failure):
    """A request got an error status or no answer; keeps the status for Vault's 404 cases."""

    def __init__(self, doing: str, error: APIError | ConnectError, *, hint: str = "") -> None:
        super().__init__(f"Error {doing}: {error.render()}{hint}")
        self.error = error
        self.status = error.status if isinstance(error, APIError) else None
        self.body: Any = error.body if isinstance(error, APIError) else None


class Context:
    """What a command handler gets: `args`, `out`, `stdin`, `call()` and `redact`."""

    def __init__(
        self,
        args: argparse.Namespace,
        *,
        env: Mapping[str, str],
        stdin: TextIO,
        stdout: TextIO,
        stderr: TextIO,
        home: Path | None = None,
    ) -> None:
        self.args = args
        self.env = env
        self.stdin = stdin
        self.redact = Redactor()
        self.out = Output(
            stdout,
            stderr,
            format=check_format(getattr(args, "format", None) or env.get("VAULT_FORMAT")),
            field=getattr(args, "field", None),
        )
        self._home = home
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            args = self.args
            settings = Settings.from_env(
                self.env,
                address=getattr(args, "address", None),
                namespace=getattr(args, "namespace", None),
                ca_cert=getattr(args, "ca_cert", None),
                ca_path=getattr(args, "ca_path", None),
                home=self._home,
            )
            self.redact.add(settings.token)
            self._client = Client(settings)
        return self._client

    def call(
        self,
        method: str,
        path: str,
        *,
        doing: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        authenticated: bool = True,
    ) -> Reply:
        """Send one request; any failure becomes `RequestFailed` with Vault's error text."""
        client = self.client
        wrap_ttl = getattr(self.args, "wrap_ttl", None) or self.env.get("VAULT_WRAP_TTL")
        try:
            reply = client.request(
                method,
                path,
                body=body,
                params=params,
                content_type=content_type,
                authenticated=authenticated,
                wrap_ttl=wrap_ttl or None,
            )
        except APIError as error:
            hint = ""
            if error.status == 403 and authenticated and not client.has_token:
                hint = "\n\nNo token was sent: set VAULT_TOKEN or write it to ~/.vault-token."
            raise RequestFailed(doing, error, hint=hint) from None
        except ConnectError as error:
            raise RequestFailed(doing, error) from None
        if isinstance(reply.body, dict) and reply.body.get("wrap_info"):
            # Wrapped (-wrap-ttl): the wrapping token is the answer, whatever the command.
            self.out.show(wrap_view(reply.body))
            raise Wrapped()
        return reply
