"""Step `evaluate` (fan-in): picks the best of the trained models by
validation accuracy and measures its ROC AUC on the held-out test set.

    evaluate.py --data DIR --scores JSON --run-ids JSON --models JSON
                --auc FILE --best-run-id FILE --best-model FILE

--scores, --run-ids and --models are the fanned-out `train` outputs: JSON
arrays in item order (Lathe renders `{{steps.train.outputs...}}` so). Ties
go to the earlier item. Writes the test AUC, the best model's training run
id and the best model's directory to the three files, and under Lathe logs
the AUC and test accuracy to this step's tracking run.
"""
import argparse
import json
import os
import pickle

import pandas as pd
from sklearn.metrics import accuracy_score, roc_auc_score

from steplib import json_list, tracking, write_value


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="prepare's output directory")
    p.add_argument("--scores", required=True, help="JSON array of validation accuracies")
    p.add_argument("--run-ids", required=True, help="JSON array of training run ids")
    p.add_argument("--models", required=True, help="JSON array of model directories")
    p.add_argument("--auc", required=True)
    p.add_argument("--best-run-id", required=True)
    p.add_argument("--best-model", required=True)
    args = p.parse_args()

    scores = [float(s) for s in json_list(args.scores, "scores")]
    # Ids are strings; str() guards against one that happened to parse as a number.
    run_ids = [str(r) for r in json_list(args.run_ids, "run-ids")]
    models = [str(m) for m in json_list(args.models, "models")]
    if not len(scores) == len(run_ids) == len(models):
        raise SystemExit(f"--scores, --run-ids and --models differ in length: "
                         f"{len(scores)}, {len(run_ids)}, {len(models)}")
    best = max(range(len(scores)), key=lambda i: (scores[i], -i))
    with open(os.path.join(models[best], "model.pkl"), "rb") as f:
        model = pickle.load(f)
    with open(os.path.join(models[best], "model.json")) as f:
        c = json.load(f)["C"]

    test = pd.read_csv(os.path.join(args.data, "test.csv"))
    x, y = test.drop(columns=["target"]), test["target"]
    auc = float(roc_auc_score(y, model.predict_proba(x)[:, 1]))
    acc = float(accuracy_score(y, model.predict(x)))

    lathe = tracking()
    if lathe is not None:
        lathe.start_run()
        lathe.log_params({"best_index": best, "best_C": c, "best_train_run_id": run_ids[best],
                          "candidates": len(scores), "test_rows": len(test)})
        lathe.log_metrics({"test_auc": auc, "test_accuracy": acc, "best_val_accuracy": scores[best]})
        lathe.end_run()
    write_value(args.auc, f"{auc:.6f}")
    write_value(args.best_run_id, run_ids[best])
    write_value(args.best_model, models[best])
    for i, s in enumerate(scores):
        print(f"candidate {i}: validation accuracy {s:.4f}" + ("  <- best" if i == best else ""))
    print(f"best C={c:g}: test ROC AUC {auc:.4f}, test accuracy {acc:.4f} on {len(test)} rows",
          flush=True)


if __name__ == "__main__":
    main()
