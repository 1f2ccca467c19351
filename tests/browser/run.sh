#!/bin/sh
# Browser tests: builds the Next.js test app, starts it (next start) on a free port, puts the
# real vitals-proxy in front of it (when given) and the recording front server (harness.mjs) in
# front of everything, then drives headless Debian Chromium (tests.mjs) and prints TAP.
# Without a proxy the harness injects the beacon itself (develops web/beacon.js alone).
# Every process started here runs in its own process group and is killed on exit.
#
# usage: tests/browser/run.sh [path/to/vitals-proxy]     (or VITALS_PROXY=path)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
proxy=${1:-${VITALS_PROXY:-}}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vp-browser.XXXXXX")
pids=""
export NEXT_TELEMETRY_DISABLED=1

cleanup() {
    for p in $pids; do kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true; done
    sleep 0.3
    for p in $pids; do kill -KILL -- "-$p" 2>/dev/null || true; done
    # next dev's workers may still be writing .next/dev for a moment after the KILL: retry, and
    # never let the clean-up change the suite's exit status (set -e applies inside the trap).
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        rm -rf "$tmp" "$here/.hmr-site" 2>/dev/null && break
        sleep 0.3
    done
    [ ! -e "$here/.hmr-site" ] || echo "# clean-up: $here/.hmr-site left behind" >&2
}
trap cleanup EXIT INT TERM

bail() { # one failing TAP test with the log, then exit 1
    echo "not ok 1 - setup: $1"
    [ -n "${2:-}" ] && [ -f "$2" ] && sed 's/^/  # /' "$2" | tail -40
    echo "1..1"
    exit 1
}
free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
start() { # start LOG CMD...: background process in its own group
    log=$1; shift
    setsid "$@" >"$log" 2>&1 &
    pids="$pids $!"
}
wait_http() { # wait_http URL LOG
    i=0
    until curl -s -o /dev/null --max-time 2 "$1"; do
        i=$((i + 1))
        [ $i -gt 150 ] && bail "nothing answers at $1" "$2"
        sleep 0.2
    done
}

cd "$here"
. "$here/node.sh"
if [ -n "$proxy" ]; then
    case $proxy in /*) ;; *) proxy="$OLDPWD/$proxy" ;; esac
    [ -x "$proxy" ] || bail "no executable vitals-proxy at $proxy"
fi
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund >"$tmp/npm.log" 2>&1 || bail "npm ci failed" "$tmp/npm.log"
fi
if [ ! -f site/.next/BUILD_ID ] || [ -n "$(find site/app site/proxy.js site/next.config.mjs site/gen-images.mjs -newer site/.next/BUILD_ID | head -1)" ]; then
    (node site/gen-images.mjs && node_modules/.bin/next build site) >"$tmp/build.log" 2>&1 || bail "next build failed" "$tmp/build.log"
fi

app_port=$(free_port)
start "$tmp/next.log" node_modules/.bin/next start site -H 127.0.0.1 -p "$app_port"
wait_http "http://127.0.0.1:$app_port/api/ping" "$tmp/next.log"

front_port=$(free_port)
if [ -n "$proxy" ]; then
    proxy_port=$(free_port)
    start "$tmp/proxy.log" "$proxy" --listen "127.0.0.1:$proxy_port" --upstream "http://127.0.0.1:$app_port" \
        --db "$tmp/vitals.db"
    wait_http "http://127.0.0.1:$proxy_port/__vitals/healthz" "$tmp/proxy.log"
    src=$(curl -s "http://127.0.0.1:$proxy_port/" | grep -o '/__vitals/beacon\.js[^"]*' | head -1) ||
        bail "vitals-proxy does not inject the beacon into the home page" "$tmp/proxy.log"
    curl -sf -o /dev/null "http://127.0.0.1:$proxy_port$src" ||
        bail "vitals-proxy does not serve $src" "$tmp/proxy.log"
    start "$tmp/harness.log" node harness.mjs --listen "$front_port" --upstream "http://127.0.0.1:$proxy_port"
    mode=--proxy
else
    start "$tmp/harness.log" node harness.mjs --listen "$front_port" --upstream "http://127.0.0.1:$app_port" --inject
    mode=--harness
fi
wait_http "http://127.0.0.1:$front_port/__test/beacons" "$tmp/harness.log"

echo "# app :$app_port, front :$front_port, ${proxy:-no proxy: the harness injects the beacon}"
status=0
export TAP_STATE="$tmp/tap"
node tests.mjs "http://localhost:$front_port" $mode ${VP_BROWSER_ONLY:+--only "$VP_BROWSER_ONLY"} || status=$?

# HMR: a copy of the app under `next dev`, behind its own proxy (or harness)
rm -rf .hmr-site && mkdir .hmr-site && cp -r site/app site/public site/next.config.mjs .hmr-site/
dev_port=$(free_port)
start "$tmp/next-dev.log" node_modules/.bin/next dev .hmr-site -H 127.0.0.1 -p "$dev_port"
wait_http "http://127.0.0.1:$dev_port/api/ping" "$tmp/next-dev.log"
front2_port=$(free_port)
if [ -n "$proxy" ]; then
    start "$tmp/proxy-dev.log" "$proxy" --listen "127.0.0.1:$front2_port" --upstream "http://127.0.0.1:$dev_port" \
        --db "$tmp/vitals-dev.db"
    wait_http "http://127.0.0.1:$front2_port/__vitals/healthz" "$tmp/proxy-dev.log"
else
    start "$tmp/harness-dev.log" node harness.mjs --listen "$front2_port" --upstream "http://127.0.0.1:$dev_port" --inject
    wait_http "http://127.0.0.1:$front2_port/__test/beacons" "$tmp/harness-dev.log"
fi
node hmr.mjs "http://localhost:$front2_port" "$here/.hmr-site" $(($(cat "$TAP_STATE") + 1)) || status=$?
echo "1..$(cat "$TAP_STATE")"
if [ $status -ne 0 ]; then
    for f in next proxy harness next-dev proxy-dev harness-dev; do
        [ -f "$tmp/$f.log" ] && { echo "# --- $f log (tail)"; tail -20 "$tmp/$f.log" | sed 's/^/# /'; }
    done
fi
if cat "$tmp"/proxy*.log 2>/dev/null | grep -q 'Sanitizer'; then
    echo "# sanitizer report in the proxy log"; status=1
fi
exit $status
