#!/usr/bin/env bash
# Report query latency by database size: fills (once) a database per size with bench/gen_db
# (30 days of realistic views, then the hourly rollups), runs bench/report_bench RUNS times per
# query on each, and prints one table: query x size, p50 / p95 wall ms and p50 CPU ms. Writes
# it to bench/results/report-DATE.md too.
#
#   bench/report.sh                    sizes 10000 100000 1000000, 20 runs
#   SIZES="200000" RUNS=50 bench/report.sh
#   REPORT_DIR=/tmp (default): where the databases are kept between runs (about 1.2 GB per
#   million views; delete /tmp/vp_report_*.db to regenerate). Run from the build directory.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"10000 100000 1000000"}
RUNS=${RUNS:-20}
DIR=${REPORT_DIR:-/tmp}
[ -x bench/gen_db ] && [ -x bench/report_bench ] || { echo "build first: make bench/gen_db bench/report_bench" >&2; exit 2; }
mkdir -p bench/results
out=bench/results/report-$(date -u +%Y-%m-%d-%H%M%S).md
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for n in $SIZES; do
    db="$DIR/vp_report_$n.db"
    if [ ! -f "$db" ]; then
        echo "filling $db ..." >&2
        bench/gen_db "$db" "$n" 30 >&2
    fi
    bench/report_bench "$db" "$RUNS" > "$tmp/$n.md"
done

{
    echo "Report queries by database size (30 days of views; $RUNS runs each; p50 / p95 wall ms, [p50 CPU ms])"
    echo "$(uname -n), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
    echo
    printf '| query |'
    for n in $SIZES; do printf ' %s views |' "$n"; done
    printf '\n|---|'
    for n in $SIZES; do printf -- '---:|'; done
    printf '\n'
    first=$(echo $SIZES | cut -d' ' -f1)
    # rows of report_bench: | name | rows | p50 | p95 | cpu |
    grep '^| [a-z]' "$tmp/$first.md" | grep -v '^| query' | cut -d'|' -f2 | while read -r q; do
        printf '| %s |' "$q"
        for n in $SIZES; do
            awk -F'|' -v q="$q" '{ gsub(/^ +| +$/, "", $2) } $2 == q {
                gsub(/ /, "", $4); gsub(/ /, "", $5); gsub(/ /, "", $6);
                printf " %s / %s [%s] |", $4, $5, $6 }' "$tmp/$n.md"
        done
        printf '\n'
    done
} | tee "$out"
echo "written to $out" >&2
