#!/bin/sh
# Benchmark (not a test): the cost of TLS to the upstream: callgrind instructions and wrk CPU µs
# per 1 KiB request with a plain upstream, a pooled TLS upstream, and a TLS upstream with a new
# connection per request (resumed vs full handshakes). See bench/uptls.py. Run from the build
# directory.
#   BENCH_CPU=0 bench/uptls.sh                     instructions only
#   VP_BASE_BIN=/path/to/older/vitals-proxy        also the plain row for an older build
#   BENCH_ONLY=plain bench/uptls.sh                 only the rows whose label matches
#   BENCH_LOOP_ONLY=1                              instructions inside the event loop only
#   BENCH_N1=200 BENCH_N2=1200 BENCH_DURATION=5 BENCH_REPEAT=3
set -eu
here=$(cd "$(dirname "$0")" && pwd)
for tool in valgrind nginx openssl; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || {
    echo "bench: $tool not found (apt-get install -y valgrind nginx-light wrk openssl)" >&2; exit 2; }
done
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
exec "$py" "$here/uptls.py" "$@"
