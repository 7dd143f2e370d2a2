#!/usr/bin/env bash
# Authenticated GET of a small resource under load, side by side with a bare
# lathe::http server (bench/http_echo_server) in the same run, so the API's
# own cost shows as a ratio on a shared, noisy machine.
#
#   bench/http_get.sh [seconds] [connections]      (defaults 10, 64)
#
# Both servers get 2 I/O threads; wrk runs with 2 threads on the same 2 cores
# (so absolute req/s are lower bounds). Target (issue #2): >= 30,000 req/s and
# p99 < 5 ms for GET /api/v1/projects/{name} with a bearer token.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
CONNS=${2:-64}
BUILD=${BUILD:-build}
WORK=$(mktemp -d /tmp/lathe-bench-http-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# 1. Bare server.
EPORT=$(free_port)
"$BUILD/bench/http_echo_server" "$EPORT" 2 > "$WORK/echo.log" 2>&1 &
pids+=($!)

# 2. Lathe, logging at warn so the access log does not measure the terminal.
"$BUILD/lathe" server --home "$WORK/home" --listen 127.0.0.1:0 --http-threads 2 --log-level warn \
  > "$WORK/lathe.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do [ -s "$WORK/home/server.url" ] && break; sleep 0.05; done
URL=$(cat "$WORK/home/server.url")
TOKEN=$(cat "$WORK/home/admin.token")
curl -sf -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"name":"bench"}' "$URL/api/v1/projects" > /dev/null
sleep 0.3

run() {  # id name url [header]
  local id=$1 name=$2 url=$3
  shift 3
  wrk -t2 -c"$CONNS" -d"${SECS}s" --latency "$@" "$url" > "$WORK/$id.wrk"
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/$id.wrk")
  p50=$(awk '$1=="50%" {print $2}' "$WORK/$id.wrk")
  p99=$(awk '$1=="99%" {print $2}' "$WORK/$id.wrk")
  printf '%-42s %10s req/s   p50 %8s   p99 %8s\n' "$name" "$rps" "$p50" "$p99"
  echo "$rps" > "$WORK/$id.rps"
}

echo "wrk -t2 -c$CONNS -d${SECS}s on $(nproc) cores ($(lscpu | sed -n 's/^Model name:\s*//p'))"
run bare "bare lathe::http GET /ping" "http://127.0.0.1:$EPORT/ping"
run api "lathe GET /api/v1/projects/bench (auth)" "$URL/api/v1/projects/bench" -H "Authorization: Bearer $TOKEN"
awk -v a="$(cat "$WORK/api.rps")" -v b="$(cat "$WORK/bare.rps")" \
  'BEGIN { printf "ratio API / bare server: %.2f\n", a / b }'
grep -E 'Non-2xx|Socket errors' "$WORK"/*.wrk || true
