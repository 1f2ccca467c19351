#!/bin/sh
# Replays a fuzz corpus: replay.sh BINARY CORPUS_DIR (TAP on stdout).
exec "$1" "$2"
