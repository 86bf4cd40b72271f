#!/usr/bin/env bash
# Makes sure the Python interop venv (.venv-interop, Celery pinned by tests/interop/requirements.txt,
# sca-rhythm by requirements-nodeps.txt) exists for `npm run bench`. Same venv, stamp (the hash of
# both files) and lock as scripts/test.sh's ensure_venv, so the two never fight: when the stamp
# matches there is nothing to do. Prints the venv's python path on success.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv-interop"
REQS="$ROOT/tests/interop/requirements.txt"
NODEPS="$ROOT/tests/interop/requirements-nodeps.txt"
PYTHON="${PYTHON:-python3}" # the pyenv interpreter (see /work/shared/ENVIRONMENT.md)
STAMP="$VENV/.requirements.sha256"
WANT="$(cat "$REQS" "$NODEPS" | sha256sum | cut -d' ' -f1)"

exec 9>"/tmp/celeriac-venv-$(printf '%s' "$VENV" | sha256sum | cut -c1-16).lock"
flock 9
if ! { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; }; then
  printf '[bench] creating %s with %s\n' "$VENV" "$(command -v "$PYTHON")" >&2
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  printf '[bench] installing %s into %s\n' "$REQS" "$VENV" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$NODEPS" >&2
  "$VENV/bin/python" -c 'import celery, kombu, sca_rhythm'
  printf '%s\n' "$WANT" >"$STAMP"
fi
flock -u 9
printf '%s\n' "$VENV/bin/python"
