#!/bin/sh
# Benchmark (not a test): the per-response cost of an injected 8 KiB identity HTML page vs
# the same body as application/octet-stream: callgrind instructions per request and wrk CPU
# µs per request (see bench/htmlcost.py). Run from the build directory.
#   BENCH_CPU=0 bench/htmlcost.sh              instructions only (needs valgrind)
#   BENCH_N1=200 BENCH_N2=1200 BENCH_DURATION=5 BENCH_REPEAT=3
set -eu
here=$(cd "$(dirname "$0")" && pwd)
for tool in valgrind nginx; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || {
    echo "bench: $tool not found (apt-get install -y valgrind nginx-light wrk)" >&2; exit 2; }
done
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
exec "$py" "$here/htmlcost.py" "$@"
