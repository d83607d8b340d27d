"""A real webhook receiver for rotation tests: a threaded HTTP server on a loopback port that
checks each call's signature, records the phases in order and answers as told."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.conftest import canary


@dataclass
class Call:
    """One POST the receiver got."""

    phase: str
    body: dict[str, Any]
    signed: bool


@dataclass
class Behaviour:
    """How the receiver answers: phases that fail (with a status), a phase to hold until
    released, and the size of the create answer's padding."""

    fail: dict[str, int] = field(default_factory=dict)
    hold: str = ""
    release: threading.Event = field(default_factory=threading.Event)
    held: threading.Event = field(default_factory=threading.Event)
    redirect: bool = False
    padding: int = 0


class Receiver:
    """The receiver's state; `url` is where it listens (`/hook`)."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.calls: list[Call] = []
        self.values: list[str] = []  # every value create answered, in order
        self.behaviour = Behaviour()
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self.url = ""
        self.prefix = ""

    @property
    def phases(self) -> list[str]:
        return [call.phase for call in self.calls]

    def handle(self, body: bytes, signature: str) -> tuple[int, bytes, dict[str, str]]:
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        payload = orjson.loads(body)
        phase = str(payload.get("phase"))
        with self._lock:
            self.calls.append(Call(phase, payload, hmac.compare_digest(expected, signature)))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            behaviour = self.behaviour
            if behaviour.redirect:
                return 307, b"", {"Location": self.url + "/elsewhere"}
            if behaviour.hold == phase:
                behaviour.held.set()
                behaviour.release.wait(timeout=30)
            if phase in behaviour.fail:
                return behaviour.fail[phase], b'{"errors":["no"]}', {}
            if phase == "create":
                value = canary("hook-value-")
                self.values.append(value)
                answer = {"data": {payload["field"]: value}, "padding": "x" * behaviour.padding}
                return 200, orjson.dumps(answer), {}
            return 204, b"", {}
        finally:
            with self._lock:
                self.in_flight -= 1


@contextmanager
def running_receiver(secret: str | None = None) -> Iterator[Receiver]:
    """A receiver on a free loopback port for the duration of the block."""
    receiver = Receiver(secret or canary("hook-secret-"))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            status, answer, headers = receiver.handle(
                body, self.headers.get("X-Tenantvault-Signature", "")
            )
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: the test reads `receiver.calls`

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    receiver.prefix = f"http://127.0.0.1:{port}/hooks/"
    receiver.url = f"http://127.0.0.1:{port}/hooks/rotate"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.behaviour.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
