"""The ASGI application: lifespan, request translation, the Core call and Vault's responses.

A bare ASGI callable (no framework), because per-request overhead is the throughput budget
(issue 3 measured Starlette at half the requests/s of a bare handler). The hot path for a
KV read is: headers → path → Core → orjson → two `send` calls.

Every request is audited, also one this layer refuses before it becomes a `Request`
(malformed JSON, a bad encoding, 404 outside `/v1/`, 408, 413, 414, 415, 431, a token in the
query string, a bug in translation, a 429 past an in-flight bound of `_admission`): it gets a
request id (`X-Request-Id`) and goes to `Core.refused` with what is known by then — method,
client address, the raw path (audited only as an HMAC), the status and error as answered,
the header token (as its HMAC) and the namespace header as a claim. The exceptions, as in
Vault: the unauthenticated public documents (`sys/health`, the OpenAPI document) and the
503s of a server not yet or no longer running, which has no Core to audit through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from http import HTTPStatus
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

import orjson

from tenantvault._audit_hook import Refusal
from tenantvault._clock import format_time, system_clock
from tenantvault._config import ServerSettings
from tenantvault._core import Core
from tenantvault._exceptions import (
    ClosedError,
    NotFoundError,
    PayloadTooLargeError,
    TenantVaultError,
)
from tenantvault._observe import RequestObserver
from tenantvault._request import Operation, Request, Response, new_request_id
from tenantvault._wrapping import parse_wrap_ttl
from tenantvault.audit import AuditBroker
from tenantvault.backends import background_services, open_backend
from tenantvault.cache import run_maintenance
from tenantvault.engines.auth._settings import AuthSettings
from tenantvault.engines.database import run_static_rotation
from tenantvault.engines.pki import run_auto_tidy
from tenantvault.engines.transit import run_rotation
from tenantvault.leases import run_expiration
from tenantvault.observability._http import prometheus_reply, unauthenticated_reply
from tenantvault.observability._http import wire as wire_observability
from tenantvault.rotation import RotationSettings, run_scheduler
from tenantvault.seal import Seal, ShamirSeal
from tenantvault.seal._lifecycle import SealLifecycle
from tenantvault.seal._pkcs11 import Pkcs11Seal
from tenantvault.seal._terms import KeyRotation
from tenantvault.server._admission import Admission, Refused, Waiting
from tenantvault.server._form import is_form, parse_form
from tenantvault.server._json import parse_body
from tenantvault.server._openapi import OPENAPI_PATH, openapi_document
from tenantvault.server._translate import (
    Headers,
    HTTPError,
    api_path,
    check_patch_content_type,
    ocsp_get_form,
    ocsp_request_data,
    parse_bool,
    parse_headers,
    parse_query,
    printable,
    resolve_operation,
)
from tenantvault.services import Supervisor, SupervisorSettings, audit_detail, run_audit_workers
from tenantvault.services._audit_retention import AuditRetention
from tenantvault.services._rewrap import run_rewrap
from tenantvault.ui import ui_reply

if TYPE_CHECKING:
    from tenantvault.backends import Backend
    from tenantvault.upstream.engines import Gateway

__all__ = ["AccessLog", "CoreFactory", "RootTokenHandler", "TenantVaultApp", "create_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
CoreFactory = Callable[[], Awaitable[Core]]
"""Returns a started `Core`; the app owns it from then on and closes it and its backend."""
RootTokenHandler = Callable[[str], None]
"""Receives the initial root token, once, when startup initializes a new store."""
AccessLog = Callable[[str], None]
"""Receives each request's access-log line (`GET /v1/secret/data/app 200 1.2ms`)."""

logger = logging.getLogger("tenantvault.server")
access_logger = logging.getLogger("tenantvault.server.access")


def _log_through_logging(line: str) -> None:
    """The default access log: INFO records of the `tenantvault.server.access` logger."""
    if access_logger.isEnabledFor(logging.INFO):
        access_logger.info("%s", line)


_HEALTH_PATH: Final = "sys/health"
# Vault's sys/health query parameters that pick the status code of each state.
_HEALTH_CODES: Final = (
    "activecode",
    "standbycode",
    "drsecondarycode",
    "performancestandbycode",
    "sealedcode",
    "uninitcode",
    "haunhealthycode",
    "removedcode",
    # Ours: the status while a background service crash-loops (`failing_services`).
    "servicesunhealthycode",
)
_HEALTH_FLAGS: Final = ("standbyok", "perfstandbyok")
_WITH_BODY: Final = frozenset({"POST", "PUT", "PATCH"})
_QUERY_AS_DATA: Final = frozenset({"GET", "LIST", "DELETE"})
# Vault's own default: responses may hold secrets and must never sit in a cache.
_NO_STORE: Final = (b"cache-control", b"no-store")
_JSON_HEADERS: Final = ((b"content-type", b"application/json"), _NO_STORE)
_EMPTY_ERRORS: Final = b'{"errors":[]}'
_INTERNAL_ERROR: Final = b'{"errors":["internal error"]}'
_DISCONNECTED: Final = 499  # nginx's convention, only ever in our access log


class _Disconnected(Exception):
    """The client went away before its request was complete."""


_NO_PATH_HELP: Final = (
    "path help is not served by tenantvault: the OpenAPI document at "
    "/v1/sys/internal/specs/openapi describes every path"
)


def _error_body(errors: list[str]) -> bytes:
    return orjson.dumps({"errors": errors})


def _gateway(backend: Backend) -> Gateway | None:
    """The upstream-served engines of a vault backend (imported only in gateway mode: the
    embedded modes load no upstream code)."""
    from tenantvault.upstream.engines import gateway_for

    return gateway_for(backend)


async def _open_core(
    settings: ServerSettings, *, master_key: bytes | None = None, seal: Seal | None = None
) -> Core:
    """The Core over the settings' store; `master_key` and `seal` from a Shamir seal."""
    backend = await open_backend(
        settings.backend_url,
        master_key=master_key if master_key is not None else settings.master_key,
        master_key_file=settings.master_key_file,
        allow_insecure_permissions=settings.allow_insecure_permissions,
        upstream=settings.upstream if settings.is_gateway else None,
    )
    core = Core(
        backend,
        gateway=_gateway(backend) if settings.is_gateway else None,
        audit=AuditBroker(backend, file_dir=settings.audit_dir),
        rotation=RotationSettings(webhook_allow=settings.rotation_webhook_allow),
        database_allow=settings.database_allow,
        lease_quota=settings.lease_quota,
        read_cache=settings.read_cache_settings(),
        seal=seal,
        auth_settings=AuthSettings(
            clock=system_clock,
            login_failures=settings.login_failures,
            login_window_seconds=settings.login_window_seconds,
            jwks_allow=settings.jwt_jwks_allow,
        ),
    )
    try:
        await core.start()
        await _enable_audit(core, settings)
    except BaseException:
        await _close_core(core)
        raise
    return core


async def _enable_audit(core: Core, settings: ServerSettings) -> None:
    """The sinks the settings ask for. Not persisted: the settings say so at every start."""
    broker = core.audit_broker
    if settings.audit_store:
        options = {} if settings.dev else {"path": str(settings.resolved_data_dir / "audit.db")}
        if not settings.dev:
            # In gateway mode the data directory holds only the audit store: nothing else
            # made it yet (0700, as the embedded store makes it).
            settings.resolved_data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        await broker.enable("store", "store", options, persist=False)
    if settings.audit_file is not None:
        await broker.enable(
            "file",
            "file",
            {"file_path": str(settings.audit_file), "fsync": settings.audit_fsync},
            persist=False,
        )
    if settings.audit_stdout:
        await broker.enable("stdout", "stdout", {}, persist=False)


async def _close_core(core: Core) -> None:
    try:
        await core.aclose()
    finally:
        await core.backend.aclose()


class TenantVaultApp:
    """The Vault HTTP API over one `Core`, as an ASGI 3 application with lifespan.

    `startup()` and `shutdown()` run from the ASGI lifespan protocol, or directly (tests, and
    the CLI, which starts the store before binding the port so that errors surface early);
    both are idempotent. Shutdown lets in-flight requests finish (up to
    `settings.shutdown_timeout_seconds`), answers new ones 503, then closes the store.
    `observers` subscribe to the Core's request outcomes (see `tenantvault._observe`).
    """

    def __init__(
        self,
        settings: ServerSettings | None = None,
        *,
        core_factory: CoreFactory | None = None,
        on_root_token: RootTokenHandler | None = None,
        observers: Iterable[RequestObserver] = (),
        supervision: SupervisorSettings | None = None,
        access_log: AccessLog | None = None,
    ) -> None:
        self.settings = settings if settings is not None else ServerSettings()
        # Where each request's access-log line goes: the `tenantvault.server.access` logger
        # unless the caller has a cheaper way (`tenantvault serve`: `_log_writer`).
        self._access_log = (
            None if not self.settings.access_log else access_log or _log_through_logging
        )
        # How the background services restart, and when one is crash-looping.
        self._supervision = supervision if supervision is not None else SupervisorSettings()
        self._core_factory = core_factory
        self._on_root_token = on_root_token
        # Back-pressure (`_admission`): it learns the tenants served from request outcomes.
        self._admission = Admission(
            per_tenant=self.settings.max_inflight_per_tenant,
            overall=self.settings.max_inflight,
            running=self.settings.max_running,
        )
        self._observers = (*observers, self._admission) if self._admission.on else tuple(observers)
        self._core: Core | None = None
        # Holds the supervisor's `async with` open from startup() to shutdown().
        self._background = contextlib.AsyncExitStack()
        self._lock = asyncio.Lock()
        self._draining = False
        self._closed = False
        self._inflight = 0
        # The requests being served, by request id, for `sys/in-flight-req`: when each
        # started, its client, raw path and method (rendered only when asked for).
        self._in_flight: dict[str, tuple[int, Any, bytes, str]] = {}
        # The Shamir seal's Cores, swapped as it opens and closes (None: the file seal).
        self._lifecycle: SealLifecycle | None = None
        self._idle = asyncio.Event()  # set when the last in-flight request of a shutdown ends
        self.startup_error: BaseException | None = None

    def __repr__(self) -> str:
        state = "closed" if self._closed else "ready" if self._core is not None else "new"
        return f"<TenantVaultApp {state}>"

    @property
    def core(self) -> Core:
        """The Core being served; `ClosedError` before startup and after shutdown."""
        if self._core is None:
            raise ClosedError("the server is not running")
        return self._core

    # -- lifecycle -------------------------------------------------------------------------

    async def startup(self) -> None:
        """Open the store and, if it is new, create the initial root token."""
        async with self._lock:
            if self._core is not None:
                return
            if self._closed:
                raise ClosedError("the server was shut down")
            factory = self._core_factory
            if factory is None and self.settings.seal != "file":
                await self._start_sealed()
                return
            core = await (factory() if factory is not None else _open_core(self.settings))
            try:
                token = await core.initialize_root_token(self.settings.dev_root_token)
                if self.settings.dev:
                    # As `bao server -dev`: `secret/` (kv v2) in the root namespace.
                    await core.mount_dev_defaults()
                if token is not None and self._on_root_token is not None:
                    self._on_root_token(token)
            except BaseException:
                await _close_core(core)
                raise
            for observer in self._observers:
                core.subscribe(observer)
            self._core = core
            # Background work runs as services of one supervisor that the lifespan owns
            # (`tenantvault.services`): transit key auto-rotation.
            services = _supervisor(core, self.settings, self._supervision)
            # Metrics and anomaly alerts (`tenantvault.observability`): observer, hooks, webhook.
            wire_observability(core, self.settings, services)
            core.observability.attach(in_flight=self._in_flight_report)
            await self._background.enter_async_context(services)
            core.services_health = services.report

    async def _start_sealed(self) -> None:
        """Serve a sealed store: Shamir (sealed until a quorum of shares arrives at
        `sys/unseal`) or PKCS#11 (the HSM unseals it at start)."""
        settings = self.settings

        def serve(core: Core) -> None:
            for observer in self._observers:
                core.subscribe(observer)
            self._core = core

        def supervise(core: Core) -> Supervisor:
            # As on the file-seal path: metrics and anomaly alerts for every unsealed Core.
            services = _supervisor(core, settings, self._supervision)
            wire_observability(core, settings, services)
            core.observability.attach(in_flight=self._in_flight_report)
            return services

        lifecycle = SealLifecycle(
            _seal_of(settings),
            open_store=lambda key: _open_core(settings, master_key=key, seal=lifecycle.seal),
            close_store=_close_core,
            supervise=supervise,
            serve=serve,
        )
        self._core = await lifecycle.start()
        self._lifecycle = lifecycle

    async def shutdown(self) -> None:
        """Stop taking requests, let in-flight ones finish, close the store."""
        async with self._lock:
            if self._closed:
                return
            self._draining = True
            self._closed = True
            if self._inflight:
                self._idle.clear()
                try:
                    async with asyncio.timeout(self.settings.shutdown_timeout_seconds):
                        await self._idle.wait()
                except TimeoutError:
                    logger.warning(
                        "shutdown: %d requests still running after %.0fs; closing anyway",
                        self._inflight,
                        self.settings.shutdown_timeout_seconds,
                    )
            await self._background.aclose()  # cancels and awaits every service
            core, self._core = self._core, None
            if self._lifecycle is not None:
                await self._lifecycle.aclose()  # its services, and every Core it served
            elif core is not None:
                await _close_core(core)

    async def __aenter__(self) -> TenantVaultApp:
        await self.startup()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:  # noqa: BLE001 -- reported to the server, which stops
                    self.startup_error = exc
                    await send({"type": "lifespan.startup.failed", "message": _describe(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif kind == "lifespan.shutdown":
                try:
                    await self.shutdown()
                except Exception as exc:  # noqa: BLE001 -- reported to the server, which stops
                    await send({"type": "lifespan.shutdown.failed", "message": _describe(exc)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- ASGI ------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            # Not part of the Vault API: refuse the handshake.
            await receive()
            await send({"type": "websocket.close", "code": 1008})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        method: str = scope["method"]
        # Read once: the dashboard's routes, the translation and the access log all need it.
        raw_path = _raw_path(scope)
        core = self._core
        if core is None or self._draining:
            status, headers, body = (
                503,
                _retry_headers(),
                _error_body(
                    [
                        "tenantvault is not ready"
                        if not self._closed
                        else "tenantvault is shutting down"
                    ]
                ),
            )
            await _send(send, status, headers, body, method == "HEAD")
            self._log(method, raw_path, status, started)
            return
        self._inflight += 1
        lifecycle = self._lifecycle
        if lifecycle is not None:
            lifecycle.enter(core)
        status = _DISCONNECTED
        admission = self._admission
        slot = admission.admit(scope)
        try:
            if isinstance(slot, Waiting):
                slot = await admission.wait(slot)  # every run slot taken: its turn comes
            if isinstance(slot, Refused):
                status, headers, body = await _overloaded(core, scope, started, slot, admission)
            else:
                status, headers, body = await self._respond(core, scope, raw_path, receive, started)
            await _send(send, status, headers, body, method == "HEAD")
        except _Disconnected:
            pass
        finally:
            admission.release(slot)
            if lifecycle is not None:
                await lifecycle.leave(core)
            self._inflight -= 1
            # Only shutdown waits on this event; outside a shutdown nobody needs the wake-up.
            if self._draining and not self._inflight:
                self._idle.set()
            self._log(method, raw_path, status, started)

    def _log(self, method: str, raw_path: bytes, status: int, started: float) -> None:
        # Method, path without the query string, status and duration: never a header, a
        # body or a query string, which may hold tokens or secrets.
        access_log = self._access_log
        if access_log is not None:
            access_log(
                f"{printable(method, limit=16)} {printable(raw_path, limit=256)}"
                f" {status} {(time.perf_counter() - started) * 1000:.1f}ms"
            )

    async def _respond(
        self, core: Core, scope: Scope, raw_path: bytes, receive: Receive, started: float
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """The whole request: every outcome becomes (status, headers, body)."""
        settings = self.settings
        if settings.dashboard or settings.metrics_unauthenticated:
            answer = self._outside_the_core(core, scope, raw_path)
            if answer is not None:
                return answer
        try:
            request = await self._translate(scope, raw_path, receive)
        except _Disconnected:
            # Nothing is answered, but a client that sends half a request and leaves is
            # exactly the probe that must leave a trace.
            await _refuse(core, scope, started, new_request_id(), _DISCONNECTED, "disconnected")
            raise
        except Exception as exc:  # noqa: BLE001 -- each is answered below, and audited
            return await _refused(core, scope, started, exc)
        if request is None:
            request_id = new_request_id()
            await _refuse(core, scope, started, request_id, 404, "")
            return 404, _json_headers(request_id), _EMPTY_ERRORS
        if isinstance(request, bytes):
            return 200, list(_JSON_HEADERS), request
        request_id = request.request_id
        in_flight = self._in_flight
        in_flight[request_id] = (system_clock(), scope.get("client"), raw_path, scope["method"])
        try:
            response = await core.handle(request)
            status = response.status
            if request.path == _HEALTH_PATH:
                status = _health_status(response, dict(request.data or {}))
            if status == 204:
                # A file endpoint's 204 keeps its content type, as OpenBao's (PKI `ca`, no CA).
                kind = [(b"content-type", response.content_type.encode("ascii"))]
                return 204, _id_headers(kind if response.content_type else [], request_id), b""
            if response.body is not None:
                content_type = [(b"content-type", response.content_type.encode("ascii"))]
                return status, _id_headers(content_type, request_id), response.body
            if (text := prometheus_reply(response)) is not None:
                return status, _id_headers(text[0], request_id), text[1]
            body = orjson.dumps(response.envelope(), option=orjson.OPT_NON_STR_KEYS)
            return status, _json_headers(request_id), body
        except TenantVaultError as error:
            return _from_error(error, request_id)
        except Exception as exc:  # noqa: BLE001 -- the last line of defence: 500, never a trace
            # The Core audited it (a 500 response entry); the log says where it happened.
            _log_internal_error(exc, scope, request_id)
            return 500, _json_headers(request_id), _INTERNAL_ERROR
        finally:
            in_flight.pop(request_id, None)

    def _in_flight_report(self) -> dict[str, dict[str, str]]:
        """`sys/in-flight-req`'s answer: each request being served, in Vault's fields."""
        return {
            request_id: {
                "start_time": format_time(started_ns),
                "client_remote_address": f"{client[0]}:{client[1]}" if client else "",
                "request_path": printable(raw_path, limit=1024),
                "request_method": printable(method, limit=16),
                "client_id": "",
            }
            for request_id, (started_ns, client, raw_path, method) in list(self._in_flight.items())
        }

    def _outside_the_core(
        self, core: Core, scope: Scope, raw_path: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """The dashboard's static files (`tenantvault.ui`: public, like the OpenAPI document;
        what they show comes from the API with the user's token), and Vault's optional
        unauthenticated `GET sys/metrics` (not audited, as in Vault); None for the rest."""
        if self.settings.dashboard and raw_path.startswith(b"/ui"):
            page = ui_reply(scope["method"], raw_path)
            if page is not None:
                return page
        if self.settings.metrics_unauthenticated and not _sent_token(scope):
            return unauthenticated_reply(
                core, scope["method"], raw_path, scope.get("query_string", b"")
            )
        return None

    async def _translate(
        self, scope: Scope, raw_path: bytes, receive: Receive
    ) -> Request | bytes | None:
        """The Core `Request` for this HTTP request; None for 404, bytes for a raw reply."""
        method: str = scope["method"]
        # RFC 6960's GET form with escaped base64: the tail is data, the rest is the path.
        ocsp_get = ocsp_get_form(raw_path) if method == "GET" else None
        if ocsp_get is not None:
            raw_path = ocsp_get[0]
        path = api_path(raw_path)
        if path is None:
            return None
        headers = parse_headers(scope["headers"])
        query = parse_query(scope.get("query_string", b""))
        if method == "HELP" or query.get("help"):
            # OpenBao answers a `help` request (any method) with the path's help text and
            # runs nothing else. We serve no help text: refused, before anything runs, so a
            # `POST …?help=1` can never write what OpenBao would only have described.
            raise HTTPError(405, _NO_PATH_HELP)
        if path == OPENAPI_PATH and method in ("GET", "HEAD"):
            document: bytes = openapi_document()
            return document
        if method == "HEAD" and path == _HEALTH_PATH:
            method = "GET"  # Vault answers HEAD sys/health with the status only
        operation = resolve_operation(method, path, query)
        if path == _HEALTH_PATH and query:
            _check_health_query(query)  # refused here, before the Core, like any bad input
        wrap_ttl = parse_wrap_ttl(headers.wrap_ttl)
        if wrap_ttl is not None and headers.wrap_format_jwt:
            # A deliberate difference: OpenBao can mint JWT wrapping tokens; we refuse
            # rather than hand a client that asked for one a token of another form.
            raise HTTPError(400, "JWT wrapping tokens are not supported")
        data: dict[str, Any] | None = None
        settings = self.settings
        if (
            headers.content_length is not None
            and headers.content_length > settings.max_request_bytes
        ):
            # Before reading a byte of it: a huge body must not be buffered to be refused.
            raise PayloadTooLargeError(_too_large(settings.max_request_bytes))
        if method in _WITH_BODY:
            raw = await _read_body(
                receive, settings.max_request_bytes, settings.body_timeout_seconds
            )
            # As OpenBao reads a body: PATCH must be labelled merge-patch JSON; a POST or
            # PUT labelled a form that does not start like JSON is a form; every other body
            # is JSON whatever its label (curl -d labels JSON a form). An OCSP request (DER)
            # is the one body passed unparsed.
            data = ocsp_request_data(method, headers.content_type, raw)
            if data is None:
                if operation is Operation.PATCH:
                    check_patch_content_type(headers.content_type)
                if operation is not Operation.PATCH and is_form(headers.content_type, raw):
                    data = parse_form(raw, max_items=settings.max_json_items)
                else:
                    data = parse_body(
                        raw, max_depth=settings.max_json_depth, max_items=settings.max_json_items
                    )
        elif method in _QUERY_AS_DATA:
            query.pop("list", None)
            data = dict(query) if query else None
            if ocsp_get is not None:
                data = {**(data or {}), **ocsp_get[1]}
        if operation is Operation.LIST and not path.endswith("/"):
            path += "/"  # Vault lists directories; a missing trailing '/' is implied
        client = scope.get("client")
        return Request(
            operation=operation,
            path=path,
            data=data,
            token=headers.token,
            namespace=headers.namespace,
            client_address=client[0] if client else None,
            wrap_ttl_seconds=wrap_ttl,
        )


def create_app(
    settings: ServerSettings | None = None,
    *,
    core_factory: CoreFactory | None = None,
    on_root_token: RootTokenHandler | None = None,
    observers: Iterable[RequestObserver] = (),
    supervision: SupervisorSettings | None = None,
    access_log: AccessLog | None = None,
) -> TenantVaultApp:
    """The ASGI app serving the Vault HTTP API.

    By default startup opens the store that `settings` name (`memory://` in dev mode, the
    embedded SQLite store in the data directory otherwise). `core_factory` replaces that
    with any coroutine returning a started `Core` (tests: a mock backend with faults or a
    fake clock). `on_root_token` receives the initial root token when startup creates it.
    `observers` are told every request's outcome (metrics, anomaly detection; never secrets,
    and they cannot fail a request). `supervision` says how background services restart and
    when one counts as crash-looping (`tenantvault.services.SupervisorSettings`).
    `access_log` receives each request's access-log line instead of the
    `tenantvault.server.access` logger (unless `settings.access_log` is off).
    """
    return TenantVaultApp(
        settings,
        core_factory=core_factory,
        on_root_token=on_root_token,
        observers=observers,
        supervision=supervision,
        access_log=access_log,
    )


# -- helpers -------------------------------------------------------------------------------


def _log_internal_error(exc: Exception, scope: Scope, request_id: str) -> None:
    # No request data in the log line: the traceback's frames say where, the type says
    # what; the message is left out because it may quote a value.
    logger.error(
        "internal error (%s) serving %s request %s\n%s",
        type(exc).__qualname__,
        printable(scope.get("method", "-"), limit=16),
        request_id or "-",
        "".join(traceback.format_tb(exc.__traceback__)).rstrip(),
    )


async def _refused(
    core: Core, scope: Scope, started: float, exc: Exception
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The answer to a request refused before it became a `Request`, audited as answered."""
    request_id = new_request_id()
    answer: tuple[int, list[tuple[bytes, bytes]], bytes]
    if isinstance(exc, TenantVaultError):
        answer = _from_error(exc, request_id)
        errors = exc.errors
    elif isinstance(exc, HTTPError):
        headers = _json_headers(request_id)
        answer = exc.status, headers, _error_body(exc.errors)
        errors = exc.errors
    else:
        _log_internal_error(exc, scope, request_id)
        answer = 500, _json_headers(request_id), _INTERNAL_ERROR
        errors = ["internal error"]
    await _refuse(core, scope, started, request_id, answer[0], "; ".join(errors))
    return answer


async def _refuse(
    core: Core, scope: Scope, started: float, request_id: str, status: int, error: str
) -> None:
    """Audit a refusal through the Core with what is known of the request."""
    headers: Headers | None = None
    with contextlib.suppress(TenantVaultError, HTTPError):
        # Read again, only now: a refusal is rare, and the hot path keeps no notes for it. A
        # header block that was itself the refusal (431, duplicates) yields nothing.
        headers = parse_headers(scope["headers"])
    client = scope.get("client")
    refusal = Refusal(
        request_id=request_id,
        status=status,
        error=error or _phrase(status),
        method=printable(scope.get("method", "-"), limit=16),
        raw_path=_raw_path(scope),
        client_address=client[0] if client else None,
        claimed_namespace=(headers.namespace or "") if headers is not None else "",
        token=headers.token if headers is not None else None,
    )
    try:
        await core.refused(refusal, started=started)
    except Exception as exc:  # noqa: BLE001 -- the refusal is answered whatever audit does
        _log_internal_error(exc, scope, request_id)


def _sent_token(scope: Scope) -> bool:
    """Whether the request carries a token header (only asked on the metrics path's way)."""
    return any(name.lower() == b"x-vault-token" for name, _ in scope["headers"])


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # 499, our own
        return "client disconnected"


def _raw_path(scope: Scope) -> bytes:
    raw: bytes | None = scope.get("raw_path")
    if raw is None:
        # raw_path is optional in ASGI; without it only the decoded path exists. Escaping
        # its '%' keeps them literal through the one decoding, so they are refused instead
        # of being decoded a second time.
        raw = str(scope["path"]).encode("utf-8").replace(b"%", b"%25")
    # Some servers include the query string in raw_path; it is never part of the path.
    return raw.split(b"?", 1)[0] if b"?" in raw else raw


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TenantVaultError) and exc.message:
        return exc.message
    return type(exc).__name__


def _too_large(limit: int) -> str:
    return f"request body too large: the limit is {limit} bytes"


def _json_headers(request_id: str) -> list[tuple[bytes, bytes]]:
    """A JSON answer's headers, built in one go: it is every request's last step."""
    if not request_id:
        return list(_JSON_HEADERS)
    return [*_JSON_HEADERS, (b"x-request-id", request_id.encode("ascii"))]


def _id_headers(headers: list[tuple[bytes, bytes]], request_id: str) -> list[tuple[bytes, bytes]]:
    # Raw answers too (a CRL, an OCSP response, a certificate, metrics): OpenBao marks every
    # API response no-store.
    if _NO_STORE not in headers:
        headers.append(_NO_STORE)
    if request_id:
        headers.append((b"x-request-id", request_id.encode("ascii")))
    return headers


async def _overloaded(
    core: Core, scope: Scope, started: float, refused: Refused, admission: Admission
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """429 for a request past an in-flight bound (`_admission`), paused, counted, audited."""
    await admission.pause()
    core.observability.hooks.count("admission", refused.bound, tenant=refused.tenant, failed=True)
    request_id = new_request_id()
    await _refuse(core, scope, started, request_id, 429, refused.error)
    return 429, _id_headers(_retry_headers(), request_id), _error_body([refused.error])


def _retry_headers() -> list[tuple[bytes, bytes]]:
    return [*_JSON_HEADERS, (b"retry-after", b"1")]


def _from_error(
    error: TenantVaultError, request_id: str
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    status = error.status
    headers = _json_headers(request_id)
    if isinstance(error, ClosedError):
        # The store closed under the request: shutting down, so "try again" is the truth.
        return (
            503,
            [*headers, (b"retry-after", b"1")],
            _error_body(["tenantvault is shutting down"]),
        )
    if isinstance(error, NotFoundError) and error.empty:
        return 404, _id_headers([], request_id), b""
    if isinstance(error, NotFoundError) and error.body is not None:
        # A deleted or destroyed KV version: Vault sends the full envelope with status 404.
        envelope = Response(request_id=request_id).envelope()
        envelope.update(error.body)
        envelope["request_id"] = request_id
        return 404, headers, orjson.dumps(envelope, option=orjson.OPT_NON_STR_KEYS)
    if status >= 500:
        logger.warning(
            "request %s failed with %d (%s)", request_id or "-", status, type(error).__qualname__
        )
        if status == 503:
            headers.append((b"retry-after", b"1"))
    return status, headers, _error_body(error.errors)


def _seal_of(settings: ServerSettings) -> ShamirSeal | Pkcs11Seal:
    """The seal the settings name (not `file`: that one is no object, the key file is it)."""
    if settings.seal == "pkcs11":
        return Pkcs11Seal(settings.resolved_data_dir, settings.pkcs11_settings())
    return ShamirSeal(settings.resolved_data_dir)


def _supervisor(
    core: Core, settings: ServerSettings, supervision: SupervisorSettings
) -> Supervisor:
    """The background services of an open store, in one supervisor (`tenantvault.services`).

    Stopped in the reverse order of registration: the audit workers' watcher comes first, so
    it still restarts a writer while the others stop (their last entries flush after it).
    """
    services = Supervisor(supervision)
    broker = core.audit_broker
    services.add("audit", lambda: run_audit_workers(broker), detail=lambda: audit_detail(broker))
    # Key terms: re-wrap tenant keys after `sys/rotate`, then destroy the old terms after
    # the retention (`services._rewrap`); only stores with key terms (the embedded one).
    backend = core.backend
    if isinstance(backend, KeyRotation):
        services.add(
            "key-rewrap",
            lambda: run_rewrap(backend, retention_seconds=settings.key_retention_seconds),
        )
    services.add("transit-rotation", lambda: run_rotation(core))
    services.add("pki-auto-tidy", lambda: run_auto_tidy(core))
    # Leases: revoke at expiry (and at start, those that fell due meanwhile); static
    # database roles: rotate on their schedule (`tenantvault.leases`, `engines/database`).
    services.add("lease-expiration", lambda: run_expiration(core.leases), detail=core.leases.health)
    services.add(
        "database-rotation",
        lambda: run_static_rotation(core.database),
        detail=core.database.static.health,
    )
    # Scheduled rotation of KV secrets (`tenantvault.rotation`).
    services.add(
        "kv-rotation",
        lambda: run_scheduler(
            core.rotation.scheduler, interval_seconds=core.rotation.settings.tick_seconds
        ),
        detail=core.rotation.scheduler.health,
    )
    # The backend's own (gateway mode: the upstream token renewal, with its state).
    for name, (service, detail) in background_services(core.backend).items():
        services.add(name, service, detail=detail)
    # The audit store's retention, when the operator set one (`services._audit_retention`).
    if settings.audit_store_retention_seconds:
        retention = AuditRetention(broker, settings.audit_store_retention_seconds)
        services.add("audit-retention", retention.run, detail=retention.health)
    # The KV read cache: expired entries swept out (`tenantvault.cache`).
    services.add(
        "cache-maintenance", lambda: run_maintenance(core.read_cache), detail=core.read_cache.health
    )
    return services


def _health_code(name: str, raw: object) -> int:
    """A status code the caller picked for a health state; 3xx and 1xx make no sense for a
    probe, and 205 forbids a body. A 5xx is allowed only for an unhealthy state: "active"
    answering 5xx would read as a server failure to every proxy and retry policy."""
    text = str(raw)
    code = int(text) if text.isascii() and text.isdigit() and len(text) == 3 else 0
    allowed = 200 <= code <= 299 or 400 <= code <= (499 if name == "activecode" else 599)
    if not allowed or code == 205:
        raise HTTPError(400, f"invalid value for {name}: expected an HTTP status code")
    return code


def _check_health_query(query: dict[str, str]) -> None:
    """Refuse bad sys/health parameters before the request reaches the Core (400)."""
    for flag in _HEALTH_FLAGS:
        if query.get(flag):
            parse_bool(str(query[flag]), flag)
    for name in _HEALTH_CODES:
        if name in query:
            _health_code(name, query[name])


def _health_status(response: Response, query: dict[str, Any]) -> int:
    """Vault's sys/health status: 200 active, `sealedcode` (503) when sealed, overridable."""
    codes = {name: _health_code(name, query[name]) for name in _HEALTH_CODES if name in query}
    data = response.data or {}
    if data.get("initialized") is False:
        return codes.get("uninitcode", 501)
    if data.get("sealed"):
        return codes.get("sealedcode", 503)
    if data.get("failing_services"):
        # A crash-looping service: a load balancer takes the instance out (README, health).
        return codes.get("servicesunhealthycode", 503)
    return codes.get("activecode", 200)


async def _read_body(receive: Receive, limit: int, timeout_seconds: float) -> bytes:
    """The request body, refused with 413 as soon as it passes `limit` (chunked too)."""
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_seconds):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise _Disconnected()
                chunk = message.get("body", b"")
                if chunk:
                    size += len(chunk)
                    if size > limit:
                        raise PayloadTooLargeError(_too_large(limit))
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    break
    except TimeoutError:
        raise HTTPError(408, "request body not received in time") from None
    return b"".join(chunks) if len(chunks) != 1 else chunks[0]


async def _send(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes, head: bool
) -> None:
    if status != 204:  # RFC 9110: a 204 carries no Content-Length
        headers.append((b"content-length", str(len(body)).encode("ascii")))
    try:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else body})
    except OSError:
        # The client is gone; nothing is left to tell it.
        logger.debug("client disconnected before the response was sent")
