#!/usr/bin/env bash
# REST serving benchmark (results in bench/serving.md). For each example model:
#   (a) the in-process backend (serving_backend_bench: one instance, Execute
#       back to back, batch 1 and 64);
#   (b) lathe serve at low load over REST JSON and REST binary: p50 overhead
#       above (a)'s batch-1 p50;
#   (c) 64 connections offering RATE_C64 requests/s (default 20000, above
#       what one box serves) of one row each, batched by the server's dynamic
#       batcher: the achieved rate is the capacity, compared with (a) at
#       batch 64;
#   (d) 3x overload: requests of ROWS_OVER (64) rows, so that the model and
#       not this client (sharing the cores) saturates; capacity measured over
#       64 connections, then 3x that rate over CONN_OVER (256) connections
#       (each a blocking client: at most that many in flight), every request
#       with a deadline (DEADLINE_US): admitted p99 vs the deadline, the share
#       refused (429/504) and the server's resident memory.
# Every run is bounded (DURATION seconds each, ~2.5 min in all).
#
#   bench/serving/run.sh [BUILD_DIR]   (default build; needs LATHE_BENCH=ON and the plugins)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
DURATION=${DURATION:-5}
RATE_LOW=${RATE_LOW:-50}
RATE_C64=${RATE_C64:-20000}
DEADLINE_US=${DEADLINE_US:-20000}
CONN_OVER=${CONN_OVER:-256}
ROWS_OVER=${ROWS_OVER:-64}
MODELS=${MODELS:-"mlp dlrm fraud_xgb"}
loadgen=$build/src/serving/serving_loadgen
backend_bench=$build/src/serving/backends/serving_backend_bench
work=$(mktemp -d)
trap 'kill $serve_pid 2>/dev/null || true; rm -rf "$work"' EXIT
serve_pid=

echo "# machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# lathe $(git -C "$root" rev-parse --short HEAD), build $build"

"$root/examples/models/make_repository.sh" "$work/repo" > "$work/make.log" 2>&1

echo "## (a) in-process backend"
if [ -x "$backend_bench" ]; then
  timeout 120 "$backend_bench" --repository "$work/repo" --plugins "$build/backends" \
    --seconds 2 --batches 1,64
else
  echo "(no $backend_bench)"
fi

timeout 600 "$build/lathe" serve --repository "$work/repo" --http 127.0.0.1:0 \
  --url-file "$work/url" --http-threads 2 --log-level warn > "$work/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 300); do [ -f "$work/url" ] && break; sleep 0.1; done
url=$(cat "$work/url")
rss() { curl -s "$url/metrics" | awk '/^process_resident_memory_bytes/ {printf "%.0f", $2/1048576}'; }
echo "# server RSS after load: $(rss) MiB"

run() { timeout $((DURATION + 60)) "$loadgen" --url "$url" --duration "$DURATION" --warmup 1 "$@"; }
for m in $MODELS; do
  echo "## $m"
  echo "(b) low load"
  run --model "$m" --mode json --rate "$RATE_LOW" --connections 2
  run --model "$m" --mode binary --rate "$RATE_LOW" --connections 2
  echo "(c) 64 connections"
  c64=$(run --model "$m" --mode binary --rate "$RATE_C64" --connections 64)
  echo "$c64"
  run --model "$m" --mode json --rate "$RATE_C64" --connections 64
  # Overload with ROWS_OVER rows per request, so that the model, not this
  # client (on the same cores), is what saturates: capacity first, then 3x.
  cap=$(run --model "$m" --mode binary --rows "$ROWS_OVER" --rate 5000 --connections 64)
  echo "(d) capacity at $ROWS_OVER rows/request: $cap"
  achieved=$(echo "$cap" | sed -E 's/.*"achieved_rps":([0-9.]+).*/\1/')
  over=$(awk -v a="$achieved" 'BEGIN {printf "%.0f", 3 * a}')
  echo "(d) 3x overload: $over/s of $ROWS_OVER rows, deadline ${DEADLINE_US} us"
  run --model "$m" --mode binary --rows "$ROWS_OVER" --rate "$over" --connections "$CONN_OVER" \
    --timeout-us "$DEADLINE_US"
  echo "# server RSS: $(rss) MiB"
  # Server-side view since start (all phases): mean latency of answered
  # requests, and failures by reason.
  curl -s "$url/v2/models/$m/stats" | python3 -c '
import json, sys
s = json.load(sys.stdin)["model_stats"][0]
st = s["inference_stats"]
ok = st["success"]
print("# server: %d ok, mean %.2f ms in server; mean batch %.1f rows; failures %s" % (
    ok["count"], ok["ns"] / max(ok["count"], 1) / 1e6,
    s["inference_count"] / max(s["execution_count"], 1),
    {k: v for k, v in s["failures"].items() if v}))'
done
kill -TERM "$serve_pid"
wait "$serve_pid" && echo "# lathe serve exited 0 on SIGTERM"
