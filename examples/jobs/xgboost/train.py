"""Distributed XGBoost: 2 workers (master + worker) through the Rabit tracker.

Lathe injects DMLC_TRACKER_URI, DMLC_TRACKER_PORT, DMLC_NUM_WORKER and
DMLC_TASK_ID (framework: xgboost). The master (rank 0) runs the tracker on
the port Lathe reserved for it, as Kubeflow's XGBoostJob examples do; every
rank joins the collective, trains on its own shard, and XGBoost's allreduce
builds one model. Each rank prints a digest of the model it ends with.

With `tracking: {experiment: …}` in the job (job.yaml has it), rank 0 logs
the params and the per-round training log-loss to the job's run through the
Lathe SDK (on PYTHONPATH in every Lathe job), uploads the model as the
run's artifact `model/model.json`, and registers it as a new version of the
model `xgboost-demo` (lineage: version → run → job → code snapshot).
"""
import hashlib
import os
import tempfile

import numpy as np
import xgboost as xgb
from xgboost import collective
from xgboost.tracker import RabitTracker


def main():
    rank = int(os.environ["DMLC_TASK_ID"])
    world = int(os.environ["DMLC_NUM_WORKER"])
    host = os.environ["DMLC_TRACKER_URI"]
    port = int(os.environ["DMLC_TRACKER_PORT"])
    tracker = None
    if rank == 0:
        tracker = RabitTracker(host_ip=host, n_workers=world, port=port)
        tracker.start(world)
    args = {"dmlc_tracker_uri": host, "dmlc_tracker_port": port, "dmlc_task_id": str(rank)}
    with collective.CommunicatorContext(**args):
        rng = np.random.default_rng(rank)
        x = rng.normal(size=(2000, 10))
        y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.float32)
        dtrain = xgb.DMatrix(x, label=y)
        params = {"objective": "binary:logistic", "max_depth": 4, "nthread": 1,
                  "tree_method": "hist", "eval_metric": "logloss"}
        history = {}
        booster = xgb.train(params, dtrain, num_boost_round=20, evals=[(dtrain, "train")],
                            evals_result=history, verbose_eval=False)
        raw = booster.save_raw("json")
        print(f"rank {collective.get_rank()} of {collective.get_world_size()} "
              f"model_sha256 {hashlib.sha256(raw).hexdigest()}", flush=True)
    if rank == 0 and os.environ.get("LATHE_RUN_ID"):
        track(params, history["train"]["logloss"], raw)
    if tracker is not None:
        tracker.join()


def track(params, logloss, model_json):
    """Rank 0: metrics, the model file and a registered version, in the job's run."""
    import lathe
    run = lathe.start_run()  # attaches to the job's run (LATHE_RUN_ID)
    lathe.log_params(dict(params, num_boost_round=len(logloss)))
    for step, value in enumerate(logloss):
        lathe.log_metric("train_logloss", value, step=step)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.json")
        with open(path, "wb") as f:
            f.write(model_json)
        lathe.log_artifact(path, "model")
    version = lathe.register_model(f"runs:/{run.run_id}/model", "xgboost-demo",
                                   description="the make-demo XGBoost model")
    print(f"registered xgboost-demo version {version['version']} from run {run.run_id}",
          flush=True)
    lathe.end_run()


if __name__ == "__main__":
    main()
