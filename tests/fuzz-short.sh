#!/bin/sh
# Runs every libFuzzer binary built in BUILD_DIR/fuzz for SECONDS each, starting from its seed
# corpus (copied, so the repository's corpus is untouched). Prints TAP.
build=$1
secs=${2:-10}
top=$(cd "$(dirname "$0")/.." && pwd)
n=0
bad=0
for f in "$build"/fuzz/fuzz_*; do
  [ -x "$f" ] || continue
  name=$(basename "$f")
  n=$((n + 1))
  work=$(mktemp -d)
  [ -d "$top/fuzz/corpus/$name" ] && cp -r "$top/fuzz/corpus/$name/." "$work/"
  if "$f" -max_total_time="$secs" -print_final_stats=1 -max_len=65536 -rss_limit_mb=2048 -artifact_prefix="$work/" "$work" \
       >"$work.log" 2>&1; then
    echo "ok $n - fuzz/$name ran ${secs}s without a crash ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$work.log" | cut -d' ' -f2) execs)"
  else
    bad=$((bad + 1))
    echo "not ok $n - fuzz/$name crashed"
    tail -n 40 "$work.log" | sed 's/^/# /'
  fi
  rm -rf "$work" "$work.log"
done
if [ "$n" = 0 ]; then
  echo "not ok 1 - no fuzz targets were built"
  n=1
  bad=1
fi
echo "1..$n"
[ "$bad" = 0 ]
