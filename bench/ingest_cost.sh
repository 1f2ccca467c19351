#!/bin/sh
# Instructions per beacon payload, counted by callgrind (noise-free on a shared machine): the
# writer thread (writer_main: every statement, BEGIN/COMMIT, counters, rollup bookkeeping), the
# part of it spent in write_beacon (the payload's own statements), and the event loop's ingest
# call (store_ingest_beacon: parse, checks, compact form, enqueue). One run of bench/store_bench
# (N payloads into a fresh database, one shape), the writer committing full batches of 1,000
# payloads (STORE_BENCH_FULL_BATCHES), so the counts do not depend on thread timing. The ingest
# call's count includes the calls refused while the queue was full (a cheap admission check each).
# Run from the build directory after `make`.
#   bench/ingest_cost.sh [N] [metrics|realistic]     defaults 2000 metrics
#   STORE_BENCH_IDS=time bench/ingest_cost.sh ...    time-ordered view ids (the proxy's own)
#   STORE_BENCH_SEED=DB bench/ingest_cost.sh ...     into a copy of DB (e.g. bench/gen_db's)
set -eu
n=${1:-2000}
shape=${2:-metrics}
[ -x bench/store_bench ] || { echo "build first: make bench/store_bench" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "needs valgrind" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
STORE_BENCH_RUNS=1 STORE_BENCH_STORE_ONLY=1 STORE_BENCH_FULL_BATCHES=1 valgrind --tool=callgrind \
    --callgrind-out-file="$tmp/cg.out" --toggle-collect=writer_main \
    --toggle-collect=store_ingest_beacon bench/store_bench "$n" "$tmp" "$shape" \
    >"$tmp/bench.txt" 2>"$tmp/vg.txt" || { cat "$tmp/vg.txt" >&2; exit 1; }
callgrind_annotate --inclusive=yes "$tmp/cg.out" 2>/dev/null >"$tmp/ann.txt"
for f in writer_main write_beacon store_ingest_beacon; do
    ir=$(awk -v f="$f" '$0 ~ "[ :]" f " " || $0 ~ "[ :]" f "$" { gsub(",", "", $1); print $1; exit }' "$tmp/ann.txt")
    [ -n "$ir" ] || ir=0
    printf '%-20s %12s Ir  %8.0f Ir/payload\n' "$f" "$ir" "$(echo "$ir / $n" | bc -l)"
done
