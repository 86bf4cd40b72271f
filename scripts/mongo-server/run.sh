#!/usr/bin/env bash
# `npm run mongo`: a local MongoDB-wire server for trying the features that need MongoDB
# (workflows, datasets, the climate job API), with no MongoDB installed: FerretDB embedded, data
# in ./data/mongo. Port 27017 unless CELERIAC_MONGO_PORT is set. Ctrl-C stops it.
#   npm run mongo            then, in another shell:  CELERIAC_MONGO_URL=mongodb://127.0.0.1:27017/celeriac ...
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BIN="$(bash "$HERE/build.sh")"
exec "$BIN" -port "${CELERIAC_MONGO_PORT:-27017}" -dir "${CELERIAC_MONGO_DIR:-$ROOT/data/mongo}" -log-level "${CELERIAC_MONGO_LOG_LEVEL:-warn}"
