"""Distributed XGBoost: 2 workers (master + worker) through the Rabit tracker.

Lathe injects DMLC_TRACKER_URI, DMLC_TRACKER_PORT, DMLC_NUM_WORKER and
DMLC_TASK_ID (framework: xgboost). The master (rank 0) runs the tracker on
the port Lathe reserved for it, as Kubeflow's XGBoostJob examples do; every
rank joins the collective, trains on its own shard, and XGBoost's allreduce
builds one model. Each rank prints a digest of the model it ends with.
"""
import hashlib
import os

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
        booster = xgb.train({"objective": "binary:logistic", "max_depth": 4, "nthread": 1,
                             "tree_method": "hist"}, dtrain, num_boost_round=20)
        raw = booster.save_raw("json")
        print(f"rank {collective.get_rank()} of {collective.get_world_size()} "
              f"model_sha256 {hashlib.sha256(raw).hexdigest()}", flush=True)
    if tracker is not None:
        tracker.join()


if __name__ == "__main__":
    main()
