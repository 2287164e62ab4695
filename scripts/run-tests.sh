#!/usr/bin/env bash
# The whole suite (make test) in three parts, timed on a 2-core machine:
#   1. at once: the calls' end-to-end tests (mostly waiting on Asterisk and the phones) and every
#      other test on SQLite followed by the PostgreSQL pass (mostly computing), each half on its
#      own ports (CC_TEST_PORT_OFFSET) and in its own temporary folder;
#   2. then, alone, the benchmarks' smoke runs: they load both cores, which would slow the calls'
#      tests into their timeouts.
# Every part runs even when one before it failed; the exit status is the first failure's.
set -uo pipefail
cd "$(dirname "$0")/.."

BIN=${CC_TEST_BIN:-.venv/bin}  # the tests of this script give a stand-in pytest
OFFSET=${CC_TEST_PORT_OFFSET:-0}
# PostgreSQL's pass: the web console's tests (not the browser ones) and the call path end to end.
PG_TESTS=(tests/web_console tests/e2e/test_call_path.py tests/e2e/test_order_lifecycle.py tests/e2e/test_statistics.py)
work=$(mktemp -d "${TMPDIR:-/tmp}/cc-tests.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The other half's ports are 1000 above the calls' (tests/e2e/conftest.py PORTS: its PostgreSQL pass).
(
  export CC_TEST_PORT_OFFSET=$((OFFSET + 1000))
  $BIN/pytest -q -ra --durations=15 --part=other --basetemp="$work/other"
  sqlite_rc=$?
  $BIN/pytest -q -ra --durations=10 --database=postgres -m "not browser" --basetemp="$work/pg" "${PG_TESTS[@]}"
  pg_rc=$?
  exit $((sqlite_rc ? sqlite_rc : pg_rc))
) >"$work/other.log" 2>&1 &
other=$!

echo "== the calls' end-to-end tests (the other tests run meanwhile; their output follows)"
CC_TEST_PORT_OFFSET=$OFFSET $BIN/pytest -q -ra --durations=15 --part=calls --basetemp="$work/calls"
calls_rc=$?

wait "$other"
other_rc=$?
echo "== every other test, then the PostgreSQL pass"
cat "$work/other.log"

echo "== the benchmarks' smoke runs"
CC_TEST_PORT_OFFSET=$OFFSET $BIN/pytest -q -ra --durations=10 --part=benchmarks --basetemp="$work/benchmarks"
bench_rc=$?

for rc in $calls_rc $other_rc $bench_rc; do
  if [ "$rc" -ne 0 ]; then
    echo "make test failed (calls $calls_rc, other and PostgreSQL $other_rc, benchmarks $bench_rc)"
    exit "$rc"
  fi
done
