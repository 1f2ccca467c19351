#!/bin/sh
# Builds vitals-proxy (installing build dependencies on Debian when run as root) and starts it in
# front of http://localhost:3000. Extra arguments go to vitals-proxy.
set -e
cd "$(dirname "$0")"
sh tests/deps.sh build
[ -x configure ] || autoreconf -fi >/dev/null
[ -f Makefile ] || ./configure -q
make -s -j"$(nproc)"
exec ./vitals-proxy "$@"
