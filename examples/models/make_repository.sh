#!/usr/bin/env bash
# Builds the example model repository from scratch with Debian's python3-torch
# and python3-xgboost (they are visible only to /usr/bin/python3):
#   examples/models/make_repository.sh [REPOSITORY]   (default: examples/models/repository)
# Takes about 10 s. The version directories and reference.json files are
# generated, not committed; the config.yaml files written are the committed ones.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=${1:-$here/repository}
PY=${LATHE_PYTHON:-/usr/bin/python3}
mkdir -p "$repo"
rm -rf "$repo"/{mlp,dlrm,fraud_xgb}/[0-9]*
for script in train_mlp.py train_dlrm.py train_xgboost.py; do
  "$PY" "$here/$script" --repository "$repo"
done
