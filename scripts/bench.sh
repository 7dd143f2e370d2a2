#!/usr/bin/env bash
# `make bench`: reruns every benchmark of the foundation and prints results;
# record them in bench/README.md with the date and machine.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name:\s*//p'), $(free -g | awk '/Mem:/ {print $2}') GiB"
echo; echo "== start to ready, idle memory (bench/startup.py)"
LATHE_BIN="$BUILD/lathe" /usr/bin/python3 bench/startup.py 20
echo; echo "== authenticated GET under load (bench/http_get.sh)"
BUILD=$BUILD bash bench/http_get.sh 10 64
echo; echo "== durable single-row write on SQLite (bench/store_write_bench)"
"$BUILD/bench/store_write_bench" --iterations=2000 --benchmark_min_time=2
echo; echo "== training jobs: 10,000 trivial jobs, admission to start (bench/jobs_bench.py)"
LATHE_BIN="$BUILD/lathe" /usr/bin/python3 bench/jobs_bench.py 10000 1000
