#!/bin/sh
# Headless Chromium against the TLS listener (HTTP/2): starts tests/support/upstream.py and
# vitals-proxy --tls-listen --tls-self-signed on free ports, runs h2.mjs (TAP), stops both.
# Needs playwright-core in tests/browser/node_modules (npm ci there) and Debian chromium.
# usage: tests/browser/h2.sh path/to/vitals-proxy
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vp-browser-h2.XXXXXX")
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$tmp" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
python3 "$here/../support/upstream.py" --port 0 > "$tmp/up.port" 2>"$tmp/up.err" &
pids="$pids $!"
i=0; while [ ! -s "$tmp/up.port" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
up=$(head -1 "$tmp/up.port")
p=$(free_port); tp=$(free_port)
"$bin" --listen 127.0.0.1:$p --tls-listen 127.0.0.1:$tp --tls-self-signed \
    --upstream http://127.0.0.1:$up --db "$tmp/v.db" --workers 1 > "$tmp/px.log" 2>&1 &
pids="$pids $!"
i=0; while ! python3 -c "import socket; socket.create_connection(('127.0.0.1',$tp),1)" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
cd "$here" && . "$here/node.sh" && node h2.mjs "https://localhost:$tp" || { tail -20 "$tmp/px.log" | sed 's/^/  # /'; exit 1; }
