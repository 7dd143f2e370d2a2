#!/usr/bin/env bash
# `make test`: every suite, in the order a failure is cheapest to see.
#   1. unit tests (ctest), with the store conformance suite on SQLite and on
#      a private PostgreSQL server started here on a free loopback port
#   2. the same unit tests built with AddressSanitizer + UBSan
#   3. the fuzzers for a bounded time: API request decoding, then KServe V2
#      inference decoding (JSON and binary), then pipeline and schedule specs
#      (with expressions, templates, cron and TZif)
#   4. the Python SDK's unit tests (python/tests, a fake server)
#   5. integration tests (pytest) driving the real binary, SQLite and PostgreSQL
# Environment: LATHE_SKIP_ASAN=1 / LATHE_SKIP_FUZZ=1 skip steps 2 / 3 (local
# iteration only; CI runs everything). FUZZ_SECONDS (default 30) for the API
# fuzzer, SERVING_FUZZ_SECONDS (default 10) for each V2 fuzzer.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
JOBS=${JOBS:-$(nproc)}
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
SERVING_FUZZ_SECONDS=${SERVING_FUZZ_SECONDS:-10}
start=$(date +%s)
step() { printf '\n=== %s (%ds)\n' "$*" $(( $(date +%s) - start )); }

PG_DIR=$(mktemp -d /tmp/lathe-pg-XXXXXX)
chmod 755 "$PG_DIR"
cleanup() { bash scripts/pg.sh stop "$PG_DIR" >/dev/null 2>&1 || true; rm -rf "$PG_DIR"; }
trap cleanup EXIT

step "starting a private PostgreSQL"
LATHE_TEST_POSTGRES_URL=$(bash scripts/pg.sh start "$PG_DIR")
export LATHE_TEST_POSTGRES_URL
echo "postgres: $LATHE_TEST_POSTGRES_URL"

step "unit tests"
ctest --test-dir "$BUILD" --output-on-failure -j "$JOBS" -L unit

if [ "${LATHE_SKIP_ASAN:-0}" != 1 ]; then
  step "unit tests under ASan + UBSan"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DLATHE_SANITIZE=ON \
      -DLATHE_BENCH=OFF >/dev/null
  # Only what the unit tests need (test names are their targets' names):
  # the lathe binary, the simulator and benchmarks are not built twice.
  targets=$(ctest --test-dir build-asan -N -L unit | sed -n 's/^ *Test *#[0-9]*: *//p')
  cmake --build build-asan -j "$JOBS" --target $targets
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j "$JOBS" -L unit
fi

if [ "${LATHE_SKIP_FUZZ:-0}" != 1 ]; then
  step "fuzzing request decoding for ${FUZZ_SECONDS}s, V2 inference decoding and pipeline/schedule specs for 3 x ${SERVING_FUZZ_SECONDS}s"
  [ -f build-fuzz/build.ninja ] || CXX=clang++ cmake -S . -B build-fuzz -G Ninja \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLATHE_FUZZ=ON -DLATHE_BENCH=OFF >/dev/null
  cmake --build build-fuzz -j "$JOBS" --target request_decode_fuzzer v2_json_fuzzer v2_binary_fuzzer \
      pipeline_spec_fuzzer
  mkdir -p build-fuzz/corpus
  build-fuzz/fuzz/request_decode_fuzzer -max_total_time="$FUZZ_SECONDS" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 build-fuzz/corpus fuzz/corpus 2>&1 | tail -n 12
  for name in v2_json v2_binary pipeline_spec; do
    mkdir -p "build-fuzz/corpus-$name"
    build-fuzz/fuzz/${name}_fuzzer -max_total_time="$SERVING_FUZZ_SECONDS" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 "build-fuzz/corpus-$name" "fuzz/corpus/$name" \
        2>&1 | tail -n 8
  done
fi

step "Python SDK unit tests"
/usr/bin/python3 -m pytest -q -p no:cacheprovider python/tests

step "integration tests"
LATHE_BIN="$ROOT/$BUILD/lathe" /usr/bin/python3 -m pytest -q -p no:cacheprovider tests

step "all suites passed"
