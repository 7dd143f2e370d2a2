#!/usr/bin/env bash
# Installs, with apt-get, every Debian package Lathe needs to build, test and
# run its demo. Idempotent: does nothing when all are present.
set -euo pipefail

PACKAGES=(
  build-essential g++ cmake ninja-build ccache pkg-config git clang
  libclang-rt-14-dev clang-format clang-tidy
  libboost-dev libsimdjson-dev libspdlog-dev libfmt-dev libcli11-dev
  libyaml-cpp-dev libssl-dev libsqlite3-dev libpq-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  postgresql sqlite3 curl wrk procps python3 python3-pytest
  python3-numpy python3-pandas python3-torch python3-xgboost openmpi-bin libopenmpi-dev tar
  # scikit-learn for the example pipeline (examples/pipelines: its bundled
  # breast-cancer data set, LogisticRegression, ROC AUC).
  python3-sklearn
  # Model backends (src/serving/backends): LibTorch for TorchScript models,
  # with OpenBLAS (libtorch only Recommends a BLAS; on the reference BLAS it
  # is 10-36x slower, research/running-engines.md), and the XGBoost C API.
  libtorch-dev libopenblas0-pthread libxgboost-dev
  # KServe V2 gRPC front end (src/serving/grpc_frontend): protoc and its gRPC
  # C++ plugin generate the service from protocols/grpc_predict_v2.proto;
  # python3-grpcio and python3-protobuf drive it in tests/test_serve_grpc.py.
  protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev
  python3-grpcio python3-protobuf
  # IANA time zones for cron schedules (src/base/timezone.cc reads
  # /usr/share/zoneinfo).
  tzdata
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
