#!/bin/sh
# Instructions per request record, counted by callgrind (noise-free on a shared machine): the
# writer thread (writer_main: the multi-row INSERTs, BEGIN/COMMIT, marks, the view lookups), the
# part of it in flush_requests (the rows themselves), and the event loop's call
# (store_record_request: the copy into one allocation and the enqueue). One run of
# bench/record_bench in its burst mode (RECORD_BENCH_BATCH: N records, committed BATCH at a time,
# so the counts do not depend on thread timing), for this build and, with RB_BASE=path to another
# build's bench/record_bench, for that one too.
# Run from the build directory after `make`.
#   bench/record_cost.sh [N] [plain|injected] [BATCH]      defaults 6000 plain 500
set -eu
n=${1:-6000}
kind=${2:-plain}
batch=${3:-500}
[ -x bench/record_bench ] || { echo "build first: make bench/record_bench" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "needs valgrind" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# record_bench sends RATE * SECS records: N of them at rate N for 1 s.
count() {
    RECORD_BENCH_BATCH=$batch valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" \
        --toggle-collect=writer_main --toggle-collect=store_record_request \
        "$1" "$n" 1 "$tmp" "$kind" >"$tmp/bench.txt" 2>"$tmp/vg.txt" ||
        { cat "$tmp/vg.txt" "$tmp/bench.txt" >&2; exit 1; }
    callgrind_annotate --inclusive=yes "$tmp/cg.out" 2>/dev/null >"$tmp/ann.txt"
    for f in writer_main flush_requests store_record_request; do
        ir=$(awk -v f="$f" '$0 ~ "[ :]" f " " || $0 ~ "[ :]" f "$" { gsub(",", "", $1); print $1; exit }' "$tmp/ann.txt")
        [ -n "$ir" ] || ir=0
        printf '%-12s %-22s %12s Ir  %8.0f Ir/record\n' "$2" "$f" "$ir" "$(echo "$ir / $n" | bc -l)"
    done
}
echo "$n $kind records, batches of $batch"
[ -z "${RB_BASE:-}" ] || count "$RB_BASE" base
count bench/record_bench "this build"
