#!/usr/bin/python3
"""A gradient-boosted fraud classifier: synthetic data with 50 features (some
values missing), 100 trees of depth 6, binary:logistic. Writes
<repository>/fraud_xgb/1/model.ubj and model.json (the same model in both
formats; the backend loads model.ubj unless config.yaml names a
model_filename), fraud_xgb/config.yaml and fraud_xgb/reference.json.
About 2 s with Debian's python3-xgboost.
"""
import numpy as np
import xgboost as xgb

import model_repo

FEATURES = 50

CONFIG = f"""\
# XGBoost fraud classifier (examples/models/train_xgboost.py).
backend: xgboost
max_batch_size: 256
inputs:
  - name: features
    datatype: FP32
    dims: [{FEATURES}]
outputs:
  - name: prob
    datatype: FP32
    dims: [1]
dynamic_batching:
  max_queue_delay_us: 200
instances: {{count: 2, threads: 1}}
"""


def synthetic(rng, n):
    x = rng.standard_normal((n, FEATURES), dtype=np.float32)
    logit = x[:, 0] * 1.5 - x[:, 1] + 0.8 * x[:, 2] * x[:, 3] + 0.5 * np.sin(x[:, 4] * 3)
    y = (logit + rng.standard_normal(n) * 0.5 > 1.0).astype(np.float32)
    x[rng.random((n, FEATURES)) < 0.02] = np.nan
    return x, y


def main():
    args = model_repo.parse_args(__doc__)
    rng = np.random.default_rng(args.seed)
    x, y = synthetic(rng, 20_000)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 6, "eta": 0.1,
                         "tree_method": "hist", "nthread": 2, "seed": args.seed},
                        xgb.DMatrix(x, label=y, missing=np.nan), num_boost_round=100)
    d = model_repo.version_dir(args.repository, "fraud_xgb")
    booster.save_model(f"{d}/model.ubj")
    booster.save_model(f"{d}/model.json")
    model_repo.write_config(args.repository, "fraud_xgb", CONFIG)

    cases = []
    for batch in (1, 8):
        features, _ = synthetic(rng, batch)
        prob = booster.predict(xgb.DMatrix(features, missing=np.nan)).astype(np.float32)
        cases.append({"inputs": [model_repo.tensor("features", "FP32", features)],
                      "outputs": [model_repo.tensor("prob", "FP32", prob.reshape(batch, 1))]})
    model_repo.write_reference(args.repository, "fraud_xgb", cases, rtol=1e-5, atol=1e-6)
    print(f"fraud_xgb: 100 trees, wrote {args.repository}/fraud_xgb")


if __name__ == "__main__":
    main()
