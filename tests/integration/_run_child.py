"""A stdio MCP-style server for the `tenantvault run` tests: echoes each line of stdin to
stdout byte for byte, records events (start with a hash of one variable, signals) in a file.

Usage: python _run_child.py EVENTS_FILE VARIABLE. A line `{"exit": N}` makes it exit with N.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
from types import FrameType


def _record(events: str, **event: object) -> None:
    with open(events, "a", encoding="utf-8") as sink:
        sink.write(json.dumps({"pid": os.getpid(), **event}) + "\n")


def main() -> int:
    events, variable = sys.argv[1], sys.argv[2]
    value = os.environ.get(variable)
    digest = hashlib.sha256(value.encode()).hexdigest() if value is not None else None
    _record(events, event="start", sha256=digest, vault_token="VAULT_TOKEN" in os.environ)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del frame
        _record(events, event=signal.Signals(signum).name)
        if signum == signal.SIGTERM:
            os._exit(143)

    for signum in (signal.SIGHUP, signal.SIGUSR1, signal.SIGTERM):
        signal.signal(signum, on_signal)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    for line in stdin:
        if line.startswith(b'{"exit":'):
            return int(json.loads(line)["exit"])
        stdout.write(line)
        stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
