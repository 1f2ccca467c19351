#!/bin/sh
# Benchmark of issue 2 (not a test): vitals-proxy (--workers 1) vs nginx (worker_processes 1,
# upstream keepalive) vs direct-to-origin (a static nginx), wrk on loopback, 1 KiB and
# 100 KiB, 64 connections; plus added p99 latency and RSS per idle keep-alive connection.
# Run from the build directory (VP_BIN defaults to ./vitals-proxy). Prints a Markdown table
# and writes bench/results/<date>.md and .json.
#   BENCH_DURATION=3 bench/run.sh                  quick check (default 10 s per run)
#   BENCH_PROXY_SLOT=nginx bench/run.sh            nginx in the proxy slot (script check)
#   BENCH_IDLE=10000 BENCH_CONNS=64 BENCH_THREADS=1 BENCH_REPEAT=1
set -eu
here=$(cd "$(dirname "$0")" && pwd)
for tool in wrk nginx; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || {
    echo "bench: $tool not found (apt-get install -y wrk nginx-light)" >&2; exit 2; }
done
# 10,000 idle connections need more descriptors than the default soft limit.
want=$(( ${BENCH_IDLE:-10000} + 4096 ))
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
  ulimit -Hn "$want" 2>/dev/null || want=$hard
fi
ulimit -Sn "$want" 2>/dev/null || true
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
exec "$py" "$here/bench.py" "$@"
