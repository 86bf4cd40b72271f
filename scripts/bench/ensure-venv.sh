#!/usr/bin/env bash
# Makes sure the Python interop venv (.venv-interop, Celery pinned by tests/interop/requirements.txt)
# exists for `npm run bench`. Same venv, stamp and lock as scripts/test.sh, so the two never fight:
# when the stamp matches there is nothing to do. Prints the venv's python path on success.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv-interop"
REQS="$ROOT/tests/interop/requirements.txt"
PYTHON="${PYTHON:-python3}" # the pyenv interpreter (see /work/shared/ENVIRONMENT.md)
STAMP="$VENV/.requirements.sha256"
WANT="$(sha256sum "$REQS" | cut -d' ' -f1)"

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
  "$VENV/bin/python" -c 'import celery, kombu'
  printf '%s\n' "$WANT" >"$STAMP"
fi
flock -u 9
printf '%s\n' "$VENV/bin/python"
