#!/bin/sh
# Beacon ingestion through the proxy (issue 5's benchmark, not a test): wrk POSTs beacon.js-format
# bodies (bench/ingest.lua) to /__vitals/beacon, metrics-only (5 metrics) and realistic
# (5 metrics + 60 resources); prints beacons/s, p50/p99, 204 vs 429/503, CPU µs per beacon, rows
# lost after shutdown (must be 0), the bare-SQLite ceiling (bench/ingest_bare) and the ratio,
# and a proxied page's req/s and latency alone vs during ingestion. See bench/ingest.py.
# Run from the build directory after `make`. Needs wrk and nginx-light.
#   DURATION=3 REPEAT=1 bench/ingest.sh      quick check (default 10 s, 3 runs, median)
#   BACKOFF_MS=5 RATE=N RATE_CONNS=64 PAGE_RATE=1000   (see bench/ingest.py)
#   CONNS=16 THREADS=1 WORKERS=1 KINDS="metrics realistic" PAGE_CONNS=8
set -eu
here=$(cd "$(dirname "$0")" && pwd)
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
exec "$py" "$here/ingest.py" "$@"
