#!/usr/bin/env bash
# What `npm test` runs. On a fresh Debian machine it first provides what the integration tests
# need (redis-server, rabbitmq-server, chromium, the Python interop venv), then runs jest with both
# projects, passing any arguments through (e.g. `npm test -- --selectProjects unit`). It also
# builds the MongoDB-wire test server (scripts/mongo-server: FerretDB embedded, needs Go) and the
# second venv, .venv-sca (sca-rhythm with the Celery 5.2 it pins).
#
# Jest's summary is not recognised by our CI, so the last line printed is always exactly
#   jest: N passed, N failed
# where skipped/pending/todo tests count as failed (a skipped test is a bug here). Exit status
# is non-zero when jest failed, anything was skipped, or no test ran at all.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv-interop"
REQS="$ROOT/tests/interop/requirements.txt"
REQS_NODEPS="$ROOT/tests/interop/requirements-nodeps.txt"
SCA_VENV="$ROOT/.venv-sca"
SCA_REQS="$ROOT/tests/interop/requirements-sca.txt"

log() { printf '[test.sh] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# --- Debian packages -------------------------------------------------------------------------
# rabbitmq-server is installed now, before any test needs it, so the AMQP work finds it.
ensure_debian_packages() {
  local missing=()
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  # TLS tests make their certificates with the openssl command.
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  # The Flower browser test drives Debian's Chromium (playwright-core downloads no browser).
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  # dpkg -s also succeeds for a removed package whose config files remain: check the status.
  dpkg-query -W -f='${Status}' rabbitmq-server 2>/dev/null | grep -q 'install ok installed' ||
    missing+=(rabbitmq-server)
  # Fonts for its screenshots (docs/img): without any, Chromium renders text as empty boxes.
  dpkg-query -W -f='${Status}' fonts-liberation 2>/dev/null | grep -q 'install ok installed' ||
    missing+=(fonts-liberation)
  # Climate tests: cdo regrids NetCDF files (the regrid task runs it); ncdump checks files.
  command -v cdo >/dev/null 2>&1 || missing+=(cdo)
  command -v ncdump >/dev/null 2>&1 || missing+=(netcdf-bin)
  # Sentinel tests: redis-server runs in sentinel mode; the package brings the redis-sentinel name.
  command -v redis-sentinel >/dev/null 2>&1 || missing+=(redis-sentinel)
  [ "${#missing[@]}" -eq 0 ] && return 0
  log "installing missing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # RUNLEVEL=1: invoke-rc.d then does not start the system-wide services from the postinst
  # scripts (tests start their own servers on free ports; a service start can also fail in a
  # container and fail the install).
  as_root env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# --- Python venvs ------------------------------------------------------------------------------
# `python3` must be the pyenv interpreter (see /work/shared/ENVIRONMENT.md); PYTHON overrides it.
# ensure_venv DIR CHECK_IMPORT REQS [NODEPS_REQS]: (re)creates DIR when the requirement files'
# hash changed, installs REQS, then NODEPS_REQS with --no-deps, and fails here (not in the
# tests) if CHECK_IMPORT does not import.
ensure_venv() {
  local venv="$1" check="$2" reqs="$3" nodeps="${4:-}"
  local python="${PYTHON:-python3}"
  local stamp="$venv/.requirements.sha256"
  local want
  want="$(cat "$reqs" ${nodeps:+"$nodeps"} | sha256sum | cut -d' ' -f1)"
  # Other people may run `npm test` in this checkout at the same moment: one refresh at a time.
  exec 9>"/tmp/celeriac-venv-$(printf '%s' "$venv" | sha256sum | cut -c1-16).lock"
  flock 9

  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
      flock -u 9
      return 0
    fi
    log "refreshing $venv (requirements changed or no stamp)"
  else
    # Missing, or broken because the interpreter it points at is gone.
    log "creating $venv with $(command -v "$python") ($("$python" --version 2>&1))"
    rm -rf "$venv"
    "$python" -m venv "$venv"
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs"
  if [ -n "$nodeps" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$nodeps"
  fi
  "$venv/bin/python" -c "$check"
  printf '%s\n' "$want" >"$stamp"
  flock -u 9
}

# --- MongoDB-wire server -----------------------------------------------------------------------
# globalSetup starts .cache/mongo-server/mongo-server; build it here (once per machine) so a
# missing Go toolchain fails before jest starts.
ensure_mongo_server() {
  bash "$ROOT/scripts/mongo-server/build.sh" >/dev/null
}

# --- jest ------------------------------------------------------------------------------------
# Counts from jest's --json report. Only when the caller filtered by test name (-t) are pending
# tests not failures: jest reports every test the filter left out as pending.
count_results() {
  node -e '
    const fs = require("fs");
    const [file, nameFiltered] = process.argv.slice(1);
    let r;
    // No report: jest never got to run tests (e.g. globalSetup threw). That is a failure.
    try { r = JSON.parse(fs.readFileSync(file, "utf8")); } catch { console.log("0 1"); process.exit(0); }
    // A file that failed outside its tests (did not load, afterAll threw) counts once.
    const brokenSuites = (r.testResults || []).filter((t) => t.status === "failed" &&
      !(t.assertionResults || []).some((a) => a.status === "failed")).length;
    const skipped = nameFiltered === "1" ? 0 : r.numPendingTests + (r.numTodoTests || 0);
    console.log(`${r.numPassedTests} ${r.numFailedTests + skipped + brokenSuites}`);
  ' "$@"
}

# --- leftovers ---------------------------------------------------------------------------------
# Every process of the run carries CELERIAC_TEST_SH_PID in its environment (children inherit it).
# One still alive after jest has exited is a leak: a test that did not stop what it started. If it
# holds the output pipe it inherited, whoever reads our output (CI) waits for ever after we exit:
# name each one, then kill it. (Processes whose parent is this script are its own pipeline helpers.)
export CELERIAC_TEST_SH_PID=$$
reap_leftovers() {
  local dir pid
  for dir in /proc/[0-9]*; do
    pid="${dir#/proc/}"
    [ "$pid" = "$$" ] && continue
    grep -qs "^PPid:[[:space:]]*$$\$" "$dir/status" && continue
    tr '\0' '\n' 2>/dev/null <"$dir/environ" | grep -qx "CELERIAC_TEST_SH_PID=$$" || continue
    log "left running after jest (a test did not stop it), killing it: $pid $(tr '\0' ' ' 2>/dev/null <"$dir/cmdline" | cut -c1-200)"
    kill -KILL "$pid" 2>/dev/null || true
  done
}

run_jest() {
  local report status=0 name_filtered=0 arg
  for arg in "$@"; do
    case "$arg" in -t | -t=* | --testNamePattern | --testNamePattern=*) name_filtered=1 ;; esac
  done
  report="$(mktemp "${TMPDIR:-/tmp}/celeriac-jest-XXXXXX.json")"
  rm -f "$report" # jest writes it only when it gets as far as reporting
  # --experimental-vm-modules: lets code under test import() ESM-only packages (h5wasm, zarrita)
  # inside jest's module sandbox; plain node and tsx need no flag.
  NODE_OPTIONS="--experimental-vm-modules ${NODE_OPTIONS:-}" npx jest --json --outputFile="$report" "$@" || status=$?
  reap_leftovers

  local counts passed failed
  counts="$(count_results "$report" "$name_filtered")"
  rm -f "$report"
  passed="${counts% *}"
  failed="${counts#* }"
  # jest failed for a reason the report does not show as a test (e.g. globalTeardown threw):
  # the summary line must not claim zero failures.
  if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi

  echo "jest: ${passed} passed, ${failed} failed"
  [ "$status" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
}

# --- build and lint ----------------------------------------------------------------------
# A tree that does not type-check or lint does not pass, whatever the tests say. Skipped when
# the caller picks tests (extra args) so a focused run stays quick.
lint() {
  [ "$#" -eq 0 ] || return 0
  npx tsc --noEmit -p tsconfig.json
  npx eslint --max-warnings 0 .
}

ensure_debian_packages
ensure_venv "$VENV" 'import celery, kombu, rq, netCDF4, xarray, sca_rhythm' "$REQS" "$REQS_NODEPS"
ensure_venv "$SCA_VENV" 'import celery, sca_rhythm; assert celery.__version__.startswith("5.2.")' "$SCA_REQS"
ensure_mongo_server
lint "$@"
run_jest "$@"
