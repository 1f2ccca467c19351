#!/bin/sh
# Soak run: the real vitals-proxy (plain + TLS listeners, --workers 2) in front of
# tests/support/upstream.py under mixed traffic for DURATION seconds (default 600), sampling
# memory, descriptors, threads, database/WAL size, the store's live counters and a probe's
# latency. Run from the build directory after `make`; needs wrk and h2load (nghttp2-client).
# Writes bench/results/soak-<time>.{md,csv}. See bench/soak.py for every knob, e.g.
#   DURATION=120 INTERVAL=2 bench/soak.sh        a short check
#   VP_BIN=build-san/vitals-proxy bench/soak.sh  under ASan/LSan (leaks reported at exit)
set -e
here=$(dirname "$0")
py=/usr/bin/python3
[ -x "$py" ] || py=python3
exec "$py" "$here/soak.py" "$@"
