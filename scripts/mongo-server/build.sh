#!/usr/bin/env bash
# Builds the MongoDB-wire test server (main.go: FerretDB 1.24 embedded, SQLite storage) into
# .cache/mongo-server/ at the project root, unless the binary there was built from these exact
# sources. Prints the binary's path. Needs Go (on PATH on this machine kind) and the Go module
# proxy; ~2 min cold on 2 cores, a second when nothing changed.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="$ROOT/.cache/mongo-server"
BIN="$OUT/mongo-server"
STAMP="$OUT/.sources.sha256"

want="$(cat "$HERE/main.go" "$HERE/go.mod" "$HERE/go.sum" | sha256sum | cut -d' ' -f1)"
mkdir -p "$OUT"
# Two test runs on one checkout may both get here: one build at a time.
exec 8>"$OUT/.build.lock"
flock 8
if [ -x "$BIN" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "$BIN"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "mongo-server: the Go toolchain is not on PATH; it is needed to build $BIN (see scripts/mongo-server/main.go)" >&2
  exit 1
fi
echo "[mongo-server] building $BIN (FerretDB 1.24.1 embedded; about 2 minutes the first time)" >&2
(cd "$HERE" && go build -trimpath -o "$BIN.tmp" .)
mv "$BIN.tmp" "$BIN"
printf '%s\n' "$want" >"$STAMP"
echo "$BIN"
