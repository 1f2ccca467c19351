#!/bin/sh
# Benchmark of issue 3 (not a test): injection throughput and latency through vitals-proxy
# (--workers 1 --quiet) vs nginx doing the same job with sub_filter (worker_processes 1),
# on a generated 50 KiB HTML page (about 3:1 under gzip) served by a static nginx origin
# (the gzip body compressed once, served by gzip_static, so the origin costs both proxies the
# same), identity and gzip, wrk on loopback, 64 connections, with the CPU time per request of
# each proxy and of the origin; plus the time to the first body byte added on a streaming page
# (tests/support/upstream.py /stream as origin). Results and their reading: bench/inject.md.
# Run from the build directory (VP_BIN defaults to ./vitals-proxy). Prints a Markdown table
# and writes bench/results/inject-<stamp>.md and .json.
#   BENCH_DURATION=3 bench/inject.sh               quick check (default 10 s per run)
#   BENCH_CONNS=64 BENCH_THREADS=1 BENCH_REPEAT=1 BENCH_TTFB_REPS=21 BENCH_TTFB_DELAY=0.2
set -eu
here=$(cd "$(dirname "$0")" && pwd)
for tool in wrk nginx; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || {
    echo "bench: $tool not found (apt-get install -y wrk nginx-light)" >&2; exit 2; }
done
ulimit -Sn 65536 2>/dev/null || true
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
exec "$py" "$here/inject.py" "$@"
