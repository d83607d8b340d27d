#!/bin/sh
# Every figure of bench/RESULTS.md's latest section, one command after another, on an otherwise
# idle machine (~20 minutes): issue 16's open loop, closed loop at 64 and 1,000 connections and
# tenant scale, and issue 14's observability on/off. Raw JSON goes to bench/results/STAMP-*.json.
#
#     sh bench/acceptance.sh            # from the repository root, after ./scripts/test once
set -eu
python=.venv/bin/python
stamp=$(date -u +%Y-%m-%dT%H%MZ)
out=bench/results
run() { name=$1; shift; echo "== $name: $*"; "$python" "$@" --output "$out/$stamp-$name.json"; }

run open bench/run.py --open-loop --rate 5000 --connections 1000 --duration 20 --repeats 1 \
    --scenarios read --servers tenantvault-dev,tenantvault-sqlite,openbao-dev --no-routing-check
run closed64 bench/run.py --scenarios read,write,cas-write,encrypt --connections 64 --duration 8 \
    --repeats 3 --servers tenantvault-dev,tenantvault-sqlite,tenantvault-gateway,openbao-dev,openbao-dev-audit
run closed1000 bench/run.py --scenarios read --connections 1000 --duration 8 --repeats 3 \
    --servers tenantvault-dev,tenantvault-sqlite,openbao-dev --no-routing-check
run obs bench/run.py --scenarios read --connections 64 --duration 8 --repeats 5 \
    --servers tenantvault-dev,tenantvault-dev-noobs --no-routing-check
run scale bench/scale.py --tenants 10000 --duration 5
