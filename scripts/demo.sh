#!/usr/bin/env bash
# `make demo`: start Lathe on the embedded defaults (SQLite in ./.lathe) and
# walk through the end-to-end example of what exists today: log in with the
# first-start admin token, create a project and a project-scoped token with
# the CLI, show the API answering with and without a token, then train: a
# 2-worker PyTorch DDP job (and an XGBoost job) submitted with their code,
# started as gangs on two virtual nodes, followed to the end with their logs;
# the XGBoost job logs to its tracking run and registers its model, which
# gets the alias "champion". Then the example pipeline (examples/pipelines:
# prepare, train three models, evaluate, register) runs on a sample, runs
# again from the cache, and gets its nightly schedule.
# The server keeps running afterwards; the script prints how to stop it.
set -euo pipefail
cd "$(dirname "$0")/.."
LATHE=${LATHE_BIN:-$PWD/build/lathe}
HOME_DIR=${LATHE_DEMO_HOME:-$PWD/.lathe}
PORT=${LATHE_DEMO_PORT:-8080}
mkdir -p "$HOME_DIR"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# Stop a server left running by an earlier demo.
if [ -f "$HOME_DIR/server.pid" ] && kill -0 "$(cat "$HOME_DIR/server.pid")" 2>/dev/null; then
  say "stopping the previous demo server (pid $(cat "$HOME_DIR/server.pid"))"
  kill -TERM "$(cat "$HOME_DIR/server.pid")"
  for _ in $(seq 100); do kill -0 "$(cat "$HOME_DIR/server.pid")" 2>/dev/null || break; sleep 0.1; done
fi

listen="127.0.0.1:$PORT"
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "port $PORT is taken; using a free port instead (set LATHE_DEMO_PORT to choose)"
  listen="127.0.0.1:0"
fi

say "starting: lathe server --home $HOME_DIR --listen $listen"
rm -f "$HOME_DIR/server.url"
setsid "$LATHE" server --home "$HOME_DIR" --listen "$listen" --local-nodes 2 \
  >>"$HOME_DIR/server.log" 2>&1 < /dev/null &
echo $! > "$HOME_DIR/server.pid"
for _ in $(seq 200); do
  [ -s "$HOME_DIR/server.url" ] && break
  kill -0 "$(cat "$HOME_DIR/server.pid")" 2>/dev/null || { tail -n 20 "$HOME_DIR/server.log"; exit 1; }
  sleep 0.05
done
URL=$(cat "$HOME_DIR/server.url")
grep -E 'first start|listening' "$HOME_DIR/server.log" | tail -n 2

say "lathe login --server $URL --token-file $HOME_DIR/admin.token"
"$LATHE" --server "$URL" login --token-file "$HOME_DIR/admin.token"

say "lathe project create demo"
if ! "$LATHE" project get demo >/dev/null 2>&1; then
  "$LATHE" project create demo --description "the make-demo project"
else
  echo "(project demo exists from an earlier run)"
fi

say "lathe token create --name demo-ci --project demo --role editor --ttl 7d"
TOKEN_JSON=$("$LATHE" token create --name demo-ci --project demo --role editor --ttl 7d -o json)
SCOPED=$(printf '%s' "$TOKEN_JSON" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
echo "created token $(printf '%s' "$TOKEN_JSON" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p') (scoped to project demo)"

say "lathe project ls"
"$LATHE" project ls
say "lathe token ls"
"$LATHE" token ls

say "the API: no token, then the project-scoped token"
printf 'curl %s/api/v1/projects                      -> HTTP %s\n' "$URL" \
  "$(curl -s -o /dev/null -w '%{http_code}' "$URL/api/v1/projects")"
printf 'curl -H "Authorization: Bearer <demo-ci>" %s/api/v1/projects/demo -> HTTP %s\n' "$URL" \
  "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $SCOPED" "$URL/api/v1/projects/demo")"

export LATHE_PROJECT=demo
run_job() {  # run_job EXAMPLE-DIR JOB-NAME
  "$LATHE" job rm "$2" >/dev/null 2>&1 || true
  say "lathe job submit -f examples/jobs/$1/job.yaml --code examples/jobs/$1"
  "$LATHE" job submit -f "examples/jobs/$1/job.yaml" --code "examples/jobs/$1"
  say "lathe job wait $2 (then describe and logs)"
  "$LATHE" job wait "$2" --timeout 10m || true
  "$LATHE" job describe "$2"
}
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  run_job pytorch-ddp ddp-example
  say "lathe job logs ddp-example --role worker --index 0 | tail -n 3"
  "$LATHE" job logs ddp-example --role worker --index 0 | tail -n 3
  say "lathe job logs ddp-example --role worker --index 1 | tail -n 3   (same parameters)"
  "$LATHE" job logs ddp-example --role worker --index 1 | tail -n 3
fi
if /usr/bin/python3 -c 'import xgboost' 2>/dev/null; then
  run_job xgboost xgboost-example
  "$LATHE" job logs xgboost-example --role master | tail -n 2
  say "the job's tracking run, its metric and the registered model"
  "$LATHE" run ls --experiment xgboost-demo --limit 3
  RUN_ID=$("$LATHE" job describe xgboost-example -o json |
           /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin).get("run_id") or "")')
  if [ -n "$RUN_ID" ]; then
    "$LATHE" metrics "$RUN_ID" train_logloss || true
    "$LATHE" run artifacts "$RUN_ID" -r || true
  fi
  "$LATHE" model versions xgboost-demo || true
  VERSION=$("$LATHE" model show xgboost-demo -o json 2>/dev/null |
            /usr/bin/python3 -c 'import json, sys
versions = [v["version"] for v in json.load(sys.stdin).get("latest_versions", [])]
print(max(versions) if versions else "")' || true)
  if [ -n "$VERSION" ]; then
    say "lathe model alias xgboost-demo champion $VERSION; lathe model version xgboost-demo $VERSION"
    "$LATHE" model alias xgboost-demo champion "$VERSION"
    "$LATHE" model version xgboost-demo "$VERSION"
  fi
fi
if /usr/bin/python3 -c 'import sklearn, pandas' 2>/dev/null; then
  say "lathe pipeline run -f examples/pipelines/pipeline.yaml --code examples/pipelines --sample 150 --wait"
  "$LATHE" pipeline run -f examples/pipelines/pipeline.yaml --code examples/pipelines --sample 150 --wait || true
  PIPELINE_RUN=$("$LATHE" pipeline-run ls --pipeline breast-cancer --limit 1 -o json |
                 /usr/bin/python3 -c 'import json, sys; items = json.load(sys.stdin)["items"]; print(items[0]["id"] if items else "")')
  if [ -n "$PIPELINE_RUN" ]; then
    say "lathe pipeline-run describe $PIPELINE_RUN"
    "$LATHE" pipeline-run describe "$PIPELINE_RUN"
  fi
  say "the same run again: every step comes from the cache"
  "$LATHE" pipeline run breast-cancer --sample 150 --wait || true
  say "lathe model versions breast-cancer (registered by the pipeline's register step)"
  "$LATHE" model versions breast-cancer || true
  say "lathe schedule apply -f examples/pipelines/schedule.yaml (nightly, 02:00 Europe/Berlin)"
  "$LATHE" schedule apply -f examples/pipelines/schedule.yaml
  "$LATHE" schedule show nightly
fi
say "lathe job ls; lathe queue ls"
"$LATHE" job ls
"$LATHE" queue ls

cat <<TXT

Lathe is running.
  API:          $URL/api/v1   (bearer token: $HOME_DIR/admin.token)
  health:       $URL/healthz, $URL/readyz
  metrics:      $URL/metrics
  server log:   $HOME_DIR/server.log
  CLI:          build/lathe --help   (logged in via ~/.config/lathe/config.yaml)
  jobs:         LATHE_PROJECT=demo build/lathe job ls; build/lathe job logs ddp-example -f
  tracking:     LATHE_PROJECT=demo build/lathe run ls
  MLflow:       MLFLOW_TRACKING_URI=$URL MLFLOW_TRACKING_TOKEN=\$(cat $HOME_DIR/admin.token)  (project "default"; docs/mlflow.md)
  models:       LATHE_PROJECT=demo build/lathe model versions xgboost-demo
  pipelines:    LATHE_PROJECT=demo build/lathe pipeline-run ls; build/lathe schedule ticks nightly (examples/pipelines)
  artifacts:    $HOME_DIR/artifacts
  job files:    $HOME_DIR/tasks (per-task logs and status), $HOME_DIR/code (snapshots)
  stop:         kill \$(cat $HOME_DIR/server.pid)
TXT
