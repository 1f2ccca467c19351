#!/bin/sh
# Benchmark (not a test): instructions, allocations and system calls per HTTP/1.1 request through
# vitals-proxy, under callgrind, for the 1 KiB page of bench/run.sh and the 50 KiB identity HTML
# page of bench/inject.sh (see bench/h1cost.py). Run from the build directory.
#   BENCH_N1=200 BENCH_N2=1200 BENCH_PAGES=1k,50k BENCH_TOP=0 bench/h1cost.sh
#   BENCH_CG=0 BENCH_WRK=1 VP_BASE=/path/to/other/vitals-proxy bench/h1cost.sh   CPU per request
#   under wrk, interleaved with another build and nginx (also needs wrk)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
for tool in valgrind nginx; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || {
    echo "bench: $tool not found (apt-get install -y valgrind nginx-light)" >&2; exit 2; }
done
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
exec "$py" "$here/h1cost.py" "$@"
