#!/bin/sh
# Benchmark (not a test): what one HTTP/2 response costs vitals-proxy, in instructions
# (callgrind, whole process: event loop and SQLite writer) and in CPU time, for the rows of
# bench/h2.sh that differ: the 1 KiB file and the injected HTML page (the same page as
# bench/h2.sh's). Instructions per request are (Ir(N2) - Ir(N1)) / (N2 - N1) from two runs of
# h2load over one TLS connection (c=1 m=10), so start-up, the handshake and shutdown cancel
# out: exact, whatever the machine's load. CPU µs per request: utime + stime of the proxy
# process over an h2load run (c=16 m=10, DURATION s) divided by its 2xx answers, the median of
# REPEAT runs.
#
# System calls per request (SYSCALLS=1, needs strace): strace -c -f on the proxy over an h2load
# run of NSYS requests (c=16 m=10, after a warm-up), the total and the calls that make it up;
# the kernel's share of the proxy's CPU is about half, and this count, like the instructions, does
# not depend on the machine's load.
#
# The handshake row ("TLS handshake + 1 request", as bench/h2.sh's) counts per connection
# instead: each h2load connection makes one request and closes. Instructions per connection from
# two callgrind runs of HN1 and HN2 connections (all at once, m=1), differenced; CPU µs and system calls
# per connection over bursts of HN connections at once (c=HN m=1, bench/h2.sh's handshake row).
#
# Every CPU figure comes with the upstream connections the proxy opened per request (per
# connection on the handshake row) over the same run: the upstream nginx's accepts
# (stub_status) before and after, less the one of the status request itself. With REPEAT > 1 it
# is the median, as the CPU figure.
#
# Usage: bench/h2cost.sh [path/to/vitals-proxy]
#   N1=300 N2=1500 DURATION=3 REPEAT=3 CPU=1 (CPU=0: instructions only) IR=1 (IR=0: CPU only)
#   SYSCALLS=0 (1: add the syscalls column) NSYS=10000
#   VP_BASE=path/to/other/vitals-proxy: the CPU column interleaves that build with this one
#   (REPEAT rounds, each starting both afresh, base first) and gives "base → this" medians and
#   each round's figures.
#   ACCEPT_ENCODING=gzip adds that request header (the injected page is then re-encoded).
#   ONLY=HTML runs only the rows whose name contains that text (ONLY=handshake: that row).
#   HN1=50 HN2=250 HN=2000: the handshake row's connection counts.
#   CGDIR=dir keeps the callgrind outputs there (cg.ROW.N1.out, cg.ROW.N2.out), for
#   bench/cgdiff.py, which lists instructions per request by function.
set -eu
BIN=${1:-./vitals-proxy}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
N1=${N1:-300}; N2=${N2:-1500}; DUR=${DURATION:-3}; REPEAT=${REPEAT:-3}; CPU=${CPU:-1}; IR=${IR:-1}
SYSCALLS=${SYSCALLS:-0}; NSYS=${NSYS:-10000}
HN1=${HN1:-50}; HN2=${HN2:-250}; HN=${HN:-2000}
[ "$SYSCALLS" = 0 ] || command -v strace >/dev/null 2>&1 || {
    echo "bench: strace not found (apt-get install -y strace)" >&2; exit 2; }
for tool in valgrind nginx h2load openssl curl; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || {
        echo "bench: $tool not found (apt-get install -y valgrind nginx-light nghttp2-client)" >&2
        exit 2; }
done
T=$(mktemp -d /tmp/vp-bench-h2cost.XXXXXX)
chmod 755 "$T" # nginx workers started by root run as nobody: they must read www/
UP=$((20000 + $$ % 10000)); VP=$((UP + 1)); VPPLAIN=$((UP + 2))
VPPID=""
cleanup() {
    [ -n "$VPPID" ] && kill "$VPPID" 2>/dev/null || true
    [ -f "$T/up.pid" ] && kill "$(cat "$T/up.pid")" 2>/dev/null || true
    sleep 0.3
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM # (cleanup runs on the way out)

. "$(dirname "$0")/h2files.sh"
h2_files "$T"
cat > "$T/up.conf" <<EOF
worker_processes 1; daemon on; pid $T/up.pid; error_log $T/logs/up.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 100000; default_type application/octet-stream;
  types { text/html html; application/octet-stream bin; } gzip on; gzip_types text/html; gzip_min_length 0;
  server { listen 127.0.0.1:$UP; root $T/www; location = /__up_status { stub_status; } } }
EOF
nginx -p "$T" -c "$T/up.conf" -e "$T/logs/up.err"

HDR=""
[ -n "${ACCEPT_ENCODING:-}" ] && HDR="accept-encoding: $ACCEPT_ENCODING"

start() { # [wrapper...]: starts the proxy, sets VPPID
    rm -f "$T/v.db"*
    "$@" "$BIN" --listen 127.0.0.1:$VPPLAIN --tls-listen 127.0.0.1:$VP --cert "$T/cert.pem" \
        --key "$T/key.pem" --upstream http://127.0.0.1:$UP --db "$T/v.db" --workers 1 --quiet \
        > "$T/vp.log" 2>&1 &
    VPPID=$!
    i=0
    while ! h2load -n 1 "https://127.0.0.1:$VP/1k.bin" 2>/dev/null | grep -q '1 succeeded'; do
        i=$((i + 1)); [ $i -lt 300 ] || { echo "bench: the proxy did not start" >&2; exit 1; }
        sleep 0.1
    done
}
stop() {
    kill -INT "$VPPID"; wait "$VPPID" 2>/dev/null || true; VPPID=""
}
load() { # path, h2load options...: prints the 2xx count
    p=$1; shift
    if [ -n "$HDR" ]; then h2load -H "$HDR" "$@" "https://127.0.0.1:$VP$p" 2>/dev/null || true
    else h2load "$@" "https://127.0.0.1:$VP$p" 2>/dev/null || true; fi |
        awk '/^status codes:/ { print $3 + 0 }'
}
ir() { # path, n, row tag: total instructions of a proxy run serving n requests (plus the start probe)
    start valgrind --tool=callgrind -q "--callgrind-out-file=$T/cg.out"
    if [ "$IROPT" = conn ]; then o="-c $2 -m 1"; else o=$IROPT; fi # conn: a connection per request
    ok=$(load "$1" -n "$2" $o)
    [ "$ok" = "$2" ] || { echo "bench: $1: $ok of $2 requests answered 2xx" >&2; exit 1; }
    stop
    [ -n "${CGDIR:-}" ] && cp "$T/cg.out" "$CGDIR/cg.$3.$2.out"
    awk '/^summary:/ { print $2 }' "$T/cg.out"
}
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
accepts() { # connections the upstream nginx has accepted so far (this request's included)
    curl -s "http://127.0.0.1:$UP/__up_status" | awk 'NR == 3 { print $1 }'
}
cpu() { # path: "CPU µs per 2xx request" and "upstream connects per 2xx request" over one run
    a0=$(accepts)
    t0=$(ticks "$VPPID")
    ok=$(load "$1" $CPUOPT)
    t1=$(ticks "$VPPID")
    a1=$(accepts)
    awk -v t="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" -v n="$ok" -v a="$((a1 - a0 - 1))" \
        'BEGIN { printf "%.1f %.3f\n", (n > 0 ? t * 1e6 / hz / n : 0), (n > 0 ? a / n : 0) }'
}
sys() { # path: system calls per 2xx request over one h2load run of NSYS requests (all threads)
    start
    load "$1" $WARMOPT > /dev/null # warm up
    strace -c -f -p "$VPPID" -o "$T/strace.out" 2>/dev/null &
    sp=$!
    sleep 0.5
    ok=$(load "$1" $SYSOPT)
    kill -INT "$sp"; wait "$sp" 2>/dev/null || true
    stop
    awk -v n="$ok" '$NF != "total" && $4 ~ /^[0-9]+$/ && $4 / n >= 0.05 { d = d sprintf(" %s %.2f", $NF, $4 / n) }
        $NF == "total" { t = $4 } END { printf "%.2f (%s)\n", (n > 0 ? t / n : 0), substr(d, 2) }' \
        "$T/strace.out"
}
median() { # of the first column on stdin
    sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2];
        else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

if [ "$SYSCALLS" != 0 ]; then
    printf '| h2 over TLS, vitals-proxy --workers 1 | instructions/request | CPU µs/request | upstream connects/request | syscalls/request |\n'
    printf '|---|---:|---:|---:|---|\n'
else
    printf '| h2 over TLS, vitals-proxy --workers 1 | instructions/request | CPU µs/request | upstream connects/request |\n'
    printf '|---|---:|---:|---:|\n'
fi
for row in "1 KiB:/1k.bin" "HTML page (injected):/page.html" \
    "TLS handshake + 1 request (per connection):/1k.bin"; do
    name=${row%%:*}; path=${row#*:}
    case "$name" in *"${ONLY:-}"*) ;; *) continue ;; esac
    case "$name" in
    *handshake*)
        r1=$HN1; r2=$HN2; IROPT=conn; CPUOPT="-n $HN -c $HN -m 1"
        WARMOPT=$CPUOPT; SYSOPT=$CPUOPT ;;
    *)
        r1=$N1; r2=$N2; IROPT="-c 1 -m 10"; CPUOPT="-D $DUR -c 16 -m 10"
        WARMOPT="-n 2000 -c 16 -m 10"; SYSOPT="-n $NSYS -c 16 -m 10" ;;
    esac
    irq="-"
    if [ "$IR" != 0 ]; then
        tag=$(printf '%s' "$name" | tr -c 'A-Za-z0-9' '_')
        a=$(ir "$path" "$r1" "$tag"); b=$(ir "$path" "$r2" "$tag")
        irq=$(awk -v a="$a" -v b="$b" -v n1="$r1" -v n2="$r2" 'BEGIN { printf "%.0f", (b - a) / (n2 - n1) }')
    fi
    c="-"; k="-"
    if [ "$CPU" != 0 ] && [ -n "${VP_BASE:-}" ]; then
        # Interleaved with another build: each round starts each build afresh, base first, so
        # that both share the machine's load of that minute; the medians of REPEAT rounds.
        : > "$T/cpu.base"; : > "$T/cpu.this"
        r=0; while [ $r -lt "$REPEAT" ]; do
            for which in base this; do
                if [ $which = base ]; then b=$BIN; BIN=$VP_BASE; fi
                start
                load "$path" $WARMOPT > /dev/null # warm up
                cpu "$path" >> "$T/cpu.$which"
                stop
                [ $which = base ] && BIN=$b
            done
            r=$((r + 1))
        done
        for which in base this; do
            cut -d' ' -f1 "$T/cpu.$which" > "$T/c.$which"; cut -d' ' -f2 "$T/cpu.$which" > "$T/k.$which"
        done
        c="$(median < "$T/c.base") → $(median < "$T/c.this") ($(tr '\n' ' ' < "$T/c.base")→ $(tr '\n' ' ' < "$T/c.this" | sed 's/ $//'))"
        k="$(median < "$T/k.base") → $(median < "$T/k.this") ($(tr '\n' ' ' < "$T/k.base")→ $(tr '\n' ' ' < "$T/k.this" | sed 's/ $//'))"
    elif [ "$CPU" != 0 ]; then
        start
        load "$path" $WARMOPT > /dev/null # warm up
        r=0; while [ $r -lt "$REPEAT" ]; do cpu "$path"; r=$((r + 1)); done > "$T/cpu.this"
        c=$(cut -d' ' -f1 "$T/cpu.this" | median); k=$(cut -d' ' -f2 "$T/cpu.this" | median)
        stop
    fi
    if [ "$SYSCALLS" != 0 ]; then
        printf '| %s | %s | %s | %s | %s |\n' "$name" "$irq" "$c" "$k" "$(sys "$path")"
    else
        printf '| %s | %s | %s | %s |\n' "$name" "$irq" "$c" "$k"
    fi
done
