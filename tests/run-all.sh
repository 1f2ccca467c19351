#!/bin/bash
# The whole test suite, as CI runs it: installs what it needs, builds with -Werror, runs unit
# tests (make check: unit + fuzz corpus replay), integration tests against the real binary, a
# short libFuzzer run per target, browser tests in headless Chromium against a real Next.js app,
# then rebuilds under ASan+UBSan and runs unit and integration tests again.
# Ends with the line "N passed, N failed"; exits non-zero on any failure.
set -u
cd "$(dirname "$0")/.."
top=$(pwd)
logdir="$top/tests/logs"
rm -rf "$logdir"
mkdir -p "$logdir"
passed=0
failed=0
jobs=$(nproc 2>/dev/null || echo 2)

note() { printf '\n=== %s\n' "$*"; }

# step NAME CMD...: a step that must succeed; counts as one test.
step() {
  local name=$1
  shift
  if "$@" >"$logdir/$name.log" 2>&1; then
    passed=$((passed + 1))
    echo "ok - $name"
  else
    failed=$((failed + 1))
    echo "not ok - $name (log: tests/logs/$name.log)"
    tail -n 40 "$logdir/$name.log" | sed 's/^/#   /'
  fi
}

# tap NAME CMD...: a TAP-producing command; every "ok"/"not ok" line counts. A non-zero exit
# without any "not ok" line counts as one failure.
tap() {
  local name=$1
  shift
  local log="$logdir/$name.log"
  "$@" >"$log" 2>&1
  local rc=$?
  local ok nok
  ok=$(grep -cE '^ok( |$)' "$log")
  nok=$(grep -cE '^not ok( |$)' "$log")
  passed=$((passed + ok))
  failed=$((failed + nok))
  if [ "$rc" != 0 ] && [ "$nok" = 0 ]; then
    failed=$((failed + 1))
    nok=1
  fi
  echo "$name: $ok passed, $nok failed (log: tests/logs/$name.log)"
  [ "$rc" = 0 ] || echo "#   $name exited with status $rc"
  # Each failing case with the diagnostic lines after it (up to 25 each), then the log's tail.
  awk '/^not ok/ {n = 26} n > 0 && (/^#/ || /^not ok/) {print; n--; next} {n = 0}' "$log" |
    head -n 120 | sed 's/^/#   /'
  [ "$nok" = 0 ] || tail -n 30 "$log" | sed 's/^/#   /'
}

# make_check DIR NAME: make check in DIR, counting each TAP result from the .trs files.
make_check() {
  local dir=$1 name=$2
  (cd "$dir" && make -j"$jobs" check) >"$logdir/$name.log" 2>&1
  local rc=$?
  local ok nok
  ok=$(cat $(find "$dir" -name '*.trs' 2>/dev/null) /dev/null | grep -cE '^:test-result: (PASS|XFAIL)')
  nok=$(cat $(find "$dir" -name '*.trs' 2>/dev/null) /dev/null | grep -cE '^:test-result: (FAIL|XPASS|ERROR|SKIP)')
  if [ "$rc" != 0 ] && [ "$nok" = 0 ]; then nok=1; fi
  passed=$((passed + ok))
  failed=$((failed + nok))
  echo "$name: $ok passed, $nok failed (log: tests/logs/$name.log)"
  [ "$nok" = 0 ] || grep -hE '^(FAIL|ERROR|SKIP|XPASS):' "$logdir/$name.log" | head -n 30 | sed 's/^/#   /'
  [ "$nok" = 0 ] || tail -n 30 "$logdir/$name.log" | sed 's/^/#   /'
}

note "dependencies"
step deps sh tests/deps.sh test
# Debian's interpreter: it has python3-brotli and python3-zstandard (a pyenv python may not).
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
export PATH="/usr/bin:$PATH" # helper scripts calling python3 get the same interpreter

note "plain build (-Werror)"
step autoreconf autoreconf -fi
rm -rf build-plain build-san build-fuzz
mkdir -p build-plain build-san build-fuzz
step configure-plain sh -c 'cd build-plain && ../configure --enable-werror'
step build-plain make -C build-plain -j"$jobs"
step lint make -C build-plain lint
make_check build-plain unit-plain
tap integration-plain env VP_BIN="$top/build-plain/vitals-proxy" VP_BUILD="$top/build-plain" \
  "$PY" tests/integration/run.py
tap integration-h2-plain env VP_BIN="$top/build-plain/vitals-proxy" VP_BUILD="$top/build-plain" \
  "$PY" tests/integration/test_h2.py
tap integration-uptls-plain env VP_BIN="$top/build-plain/vitals-proxy" VP_BUILD="$top/build-plain" \
  "$PY" tests/integration/test_upstream_tls.py
tap integration-over-https-upstream env VP_BIN="$top/build-plain/vitals-proxy" \
  VP_BUILD="$top/build-plain" VP_UPSTREAM_TLS=1 "$PY" tests/integration/run.py

note "fuzzing (short libFuzzer runs)"
step configure-fuzz sh -c 'cd build-fuzz && CC=clang ../configure --enable-fuzz'
step build-fuzz make -C build-fuzz -j"$jobs"
tap fuzz sh tests/fuzz-short.sh "$top/build-fuzz" "${FUZZ_SECONDS:-10}"

note "browser tests (headless Chromium, Next.js upstream)"
tap browser bash tests/browser/run.sh "$top/build-plain/vitals-proxy"
tap browser-h2 sh tests/browser/h2.sh "$top/build-plain/vitals-proxy"

note "ASan + UBSan"
step configure-san sh -c 'cd build-san && ../configure --enable-werror --enable-asan --enable-ubsan'
step build-san make -C build-san -j"$jobs"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
make_check build-san unit-san
tap integration-san env VP_BIN="$top/build-san/vitals-proxy" VP_BUILD="$top/build-san" VP_SANITIZED=1 \
  "$PY" tests/integration/run.py
tap integration-h2-san env VP_BIN="$top/build-san/vitals-proxy" VP_BUILD="$top/build-san" VP_SANITIZED=1 \
  "$PY" tests/integration/test_h2.py
tap integration-uptls-san env VP_BIN="$top/build-san/vitals-proxy" VP_BUILD="$top/build-san" VP_SANITIZED=1 \
  "$PY" tests/integration/test_upstream_tls.py

echo
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
