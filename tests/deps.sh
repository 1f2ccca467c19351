#!/bin/sh
# Installs what the build and the test suite need on Debian 12 (when run as root and something
# is missing). Usage: tests/deps.sh [build|test]
set -e
mode=${1:-build}
pkgs="build-essential autoconf automake libtool pkg-config libevent-dev libssl-dev libnghttp2-dev
  libbrotli-dev zlib1g-dev libisal-dev libzstd-dev libsqlite3-dev libjansson-dev"
if [ "$mode" = test ]; then
  pkgs="$pkgs clang libclang-rt-14-dev python3 python3-brotli python3-zstandard curl sqlite3
    nghttp2-client wrk nginx-light chromium brotli procps psmisc git ca-certificates openssl"
  command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
  command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
fi
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "vitals-proxy: missing Debian packages:$missing (run as root, or: sudo apt-get install -y$missing)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
