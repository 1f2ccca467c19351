#!/bin/sh
# HTTP/2 over TLS: vitals-proxy against nginx as the same kind of reverse proxy (a benchmark,
# not a test). Both fronts run one worker, use the same EC P-256 certificate, speak h2 to
# h2load and HTTP/1.1 keep-alive to the same upstream (a second nginx serving static files,
# so the upstream is never the bottleneck). Measured: 1 KiB and 100 KiB responses, the HTML
# page (vitals-proxy injects the beacon into it; nginx once passes it through, once inserts the
# same tag with sub_filter, a second nginx with the same settings), and TLS handshakes per
# second (one request per new connection). h2load sends no Accept-Encoding and the upstream
# serves the page uncompressed, so no compressor runs on either side. Each run lasts DURATION
# seconds (default 3); runs alternate between the two servers, ROUNDS (default 3) pairs back to
# back, and each figure is the median over the rounds. Besides req/s (h2load), the CPU time the front server's process
# spent per request (utime + stime from /proc over the run, all threads: the proxy's SQLite
# writer included) is given, which depends far less on the load of a shared machine. Both
# ratios are "higher is better for vitals-proxy": req/s vitals/nginx, CPU nginx/vitals. CPU is
# divided by successful requests; any request without a 2xx answer is counted on the row.
#
# Usage: bench/h2.sh [path/to/vitals-proxy]   (needs nginx-light, nghttp2-client, openssl)
#   ONLY=handshakes runs only the rows whose name contains that text; ROUNDS=3 DURATION=3.
set -eu
BIN=${1:-./vitals-proxy}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
DUR=${DURATION:-3}
T=$(mktemp -d /tmp/vp-bench-h2.XXXXXX)
chmod 755 "$T" # nginx workers started by root run as nobody: they must read www/
UP=$((20000 + $$ % 10000)); NG=$((UP + 1)); VP=$((UP + 2)); VPPLAIN=$((UP + 3)); NGSUB=$((UP + 4))
PIDS=""
cleanup() {
    if [ -n "${VPPID:-}" ] && ! kill -0 "$VPPID" 2>/dev/null; then
        echo "vitals-proxy died during the benchmark:"; tail -5 "$T/vp.log"
    fi
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    [ -f "$T/up.pid" ] && kill "$(cat "$T/up.pid")" 2>/dev/null || true
    [ -f "$T/ng.pid" ] && kill "$(cat "$T/ng.pid")" 2>/dev/null || true
    [ -f "$T/ngsub.pid" ] && kill "$(cat "$T/ngsub.pid")" 2>/dev/null || true
    sleep 0.3
    rm -rf "$T"
}
trap cleanup EXIT INT TERM

. "$(dirname "$0")/h2files.sh"
h2_files "$T"
head -c 102400 /dev/urandom > "$T/www/100k.bin"

cat > "$T/up.conf" <<EOF
worker_processes 1; daemon on; pid $T/up.pid; error_log $T/logs/up.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 100000; default_type application/octet-stream;
  types { text/html html; }
  server { listen 127.0.0.1:$UP; root $T/www; } }
EOF
cat > "$T/ng.conf" <<EOF
worker_processes 1; daemon on; pid $T/ng.pid; error_log $T/logs/ng.err;
events { worker_connections 4096; }
http { access_log off;
  upstream app { server 127.0.0.1:$UP; keepalive 64; }
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$NG ssl http2;
    ssl_certificate $T/cert.pem; ssl_certificate_key $T/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:S:10m;
    http2_max_concurrent_streams 100;
    location / { proxy_pass http://app; proxy_http_version 1.1;
      proxy_set_header Connection ""; proxy_set_header Host \$host; } } }
EOF
nginx -p "$T" -c "$T/up.conf" -e "$T/logs/up.err"
nginx -p "$T" -c "$T/ng.conf" -e "$T/logs/ng.err"
"$BIN" --listen 127.0.0.1:$VPPLAIN --tls-listen 127.0.0.1:$VP --cert "$T/cert.pem" \
    --key "$T/key.pem" --upstream http://127.0.0.1:$UP --db "$T/v.db" --workers 1 --quiet \
    > "$T/vp.log" 2>&1 &
VPPID=$!
PIDS="$PIDS $VPPID"
sleep 1
# The peer that does the injection's job: nginx with sub_filter inserting the very tag
# vitals-proxy inserts (copied from one of its responses) right after <head>.
TAG=$(curl -sk "https://127.0.0.1:$VP/page.html" |
    grep -o '<script src="/__vitals/beacon.js[^>]*></script>' | head -1)
[ -n "$TAG" ] || { echo "bench: no beacon tag in vitals-proxy's page" >&2; exit 1; }
sed -e "s|pid $T/ng.pid|pid $T/ngsub.pid|" -e "s|error_log $T/logs/ng.err|error_log $T/logs/ngsub.err|" \
    -e "s|listen 127.0.0.1:$NG |listen 127.0.0.1:$NGSUB |" \
    -e "s|proxy_set_header Host \\\$host;|proxy_set_header Host \\\$host; proxy_set_header Accept-Encoding \"\"; sub_filter_once on; sub_filter '<head>' '<head>$TAG';|" \
    "$T/ng.conf" > "$T/ngsub.conf"
grep -q sub_filter "$T/ngsub.conf" || { echo "bench: sub_filter config not written" >&2; exit 1; }
nginx -p "$T" -c "$T/ngsub.conf" -e "$T/logs/ngsub.err"

ticks() { # utime + stime of a process, in clock ticks
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}
run() { # pid, url, h2load options...: prints "req/s cpu_us_per_request"
    pid=$1; url=$2; shift 2
    t0=$(ticks "$pid")
    out=$(h2load "$@" "$url" 2>/dev/null || true)
    t1=$(ticks "$pid")
    # req/s counts 2xx responses only (h2load's own figure counts every response, so a server
    # answering part of the load with fast 5xx would look faster); CPU is per 2xx response.
    echo "$out" | awk -v t="$((t1 - t0))" -v hz="$HZ" '
        /^finished in/ { gsub(",", "", $4); r = $4 }
        /^requests:/ { done = $6; bad = $10 + $12 + $14 }
        /^status codes:/ { ok = $3; bad += $5 + $7 + $9 }
        END { if (done > 0 && ok > 0) printf "%s %s %d\n", r * ok / done, t * 1e6 / hz / ok, bad;
              else printf "0 0 %d\n", bad }'
}
median() { # of the numbers on stdin
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2];
        else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
row() { # name, path, h2load options... (the peer: PEERPID on PEERPORT, nginx by default)
    name=$1; path=$2; shift 2
    case "$name" in *"${ONLY:-}"*) ;; *) return 0 ;; esac
    ppid=${PEERPID:-$NGPID}; pport=${PEERPORT:-$NG}
    : > "$T/a"; : > "$T/b"
    r=0; while [ $r -lt "$ROUNDS" ]; do # back-to-back pairs: the machine is shared, load varies
        run "$VPPID" "https://127.0.0.1:$VP$path" "$@" >> "$T/a"
        run "$ppid" "https://127.0.0.1:$pport$path" "$@" >> "$T/b"
        r=$((r + 1))
    done
    a=$(cut -d' ' -f1 "$T/a" | median); b=$(cut -d' ' -f1 "$T/b" | median)
    ca=$(cut -d' ' -f2 "$T/a" | median); cb=$(cut -d' ' -f2 "$T/b" | median)
    # Requests that did not get a 2xx (errors, timeouts under load) are reported, never hidden.
    fa=$(awk '{ s += $3 } END { print s + 0 }' "$T/a"); fb=$(awk '{ s += $3 } END { print s + 0 }' "$T/b")
    awk -v n="$name" -v a="$a" -v b="$b" -v ca="$ca" -v cb="$cb" -v fa="$fa" -v fb="$fb" 'BEGIN {
        printf "%-26s %12.0f %12.0f %6s %10.1f %10.1f %6s%s\n", n, a, b,
            (b > 0 ? sprintf("%.2f", a / b) : "-"), ca, cb, (ca > 0 ? sprintf("%.2f", cb / ca) : "-"),
            (fa + fb > 0 ? sprintf("  (not 2xx: vitals %d, nginx %d)", fa, fb) : "") }'
}
HZ=$(getconf CLK_TCK)
ROUNDS=${ROUNDS:-3}
NGPID=$(pgrep -P "$(cat "$T/ng.pid")" | head -1)
NGSUBPID=$(pgrep -P "$(cat "$T/ngsub.pid")" | head -1)
curl -sk "https://127.0.0.1:$NGSUB/page.html" | grep -qF "<head>$TAG" ||
    { echo "bench: nginx sub_filter does not insert the tag" >&2; exit 1; }
h2load -D 1 -c 16 -m 10 "https://127.0.0.1:$VP/1k.bin" > /dev/null 2>&1 || true # warm both up
h2load -D 1 -c 16 -m 10 "https://127.0.0.1:$NG/1k.bin" > /dev/null 2>&1 || true
printf '%-26s %12s %12s %6s %10s %10s %6s\n' "h2 over TLS, 1 worker" "vitals req/s" "nginx req/s" \
    "ratio" "vitals us" "nginx us" "ratio"
row "1 KiB (c=16 m=10)" /1k.bin -D "$DUR" -c 16 -m 10
row "100 KiB (c=16 m=10)" /100k.bin -D "$DUR" -c 16 -m 10
row "HTML page (c=16 m=10)" /page.html -D "$DUR" -c 16 -m 10
PEERPID=$NGSUBPID PEERPORT=$NGSUB row "HTML, nginx sub_filter" /page.html -D "$DUR" -c 16 -m 10
row "handshakes (1 req/conn)" /1k.bin -n 2000 -c 2000 -m 1
