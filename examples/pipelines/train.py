"""Step `train` (one task per value of C): a StandardScaler +
LogisticRegression(C) pipeline fitted on train.csv.

    train.py --data DIR --c C --model DIR --val-score FILE --run-id FILE [--seed S]

Holds out a stratified 20 % of train.csv for validation, writes the fitted
model with pickle to DIR/model.pkl (with DIR/model.json describing it), the
validation accuracy to --val-score and the tracking run's id to --run-id
("" outside Lathe). Under Lathe (`tracking:` in the step) it logs C, the
seed and the row counts as params and train/validation accuracy as metrics.
"""
import argparse
import json
import os
import pickle

import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from steplib import tracking, write_value


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="prepare's output directory")
    p.add_argument("--c", type=float, required=True, help="inverse regularisation strength")
    p.add_argument("--model", required=True, help="output directory for the model")
    p.add_argument("--val-score", required=True, help="file receiving the validation accuracy")
    p.add_argument("--run-id", required=True, help="file receiving the tracking run id")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    if not args.c > 0:
        raise SystemExit(f"--c: {args.c} is not > 0")

    data = pd.read_csv(os.path.join(args.data, "train.csv"))
    x, y = data.drop(columns=["target"]), data["target"]
    x_fit, x_val, y_fit, y_val = train_test_split(x, y, test_size=0.2, stratify=y,
                                                  random_state=args.seed)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=args.c, max_iter=2000))
    model.fit(x_fit, y_fit)
    train_acc = float(model.score(x_fit, y_fit))
    val_acc = float(model.score(x_val, y_val))

    os.makedirs(args.model, exist_ok=True)
    with open(os.path.join(args.model, "model.pkl"), "wb") as f:
        pickle.dump(model, f)
    with open(os.path.join(args.model, "model.json"), "w") as f:
        json.dump({"estimator": "StandardScaler+LogisticRegression", "C": args.c,
                   "features": list(x.columns), "val_accuracy": val_acc}, f, indent=1)

    run_id = ""
    lathe = tracking()
    if lathe is not None:
        run = lathe.start_run()  # the step job's run (LATHE_RUN_ID)
        run_id = run.run_id
        lathe.log_params({"C": args.c, "seed": args.seed, "fit_rows": len(x_fit),
                          "val_rows": len(x_val)})
        lathe.log_metrics({"train_accuracy": train_acc, "val_accuracy": val_acc})
        lathe.end_run()  # flushes; the job owns the run's status
    write_value(args.val_score, f"{val_acc:.6f}")
    write_value(args.run_id, run_id)
    print(f"C={args.c:g}: train accuracy {train_acc:.4f}, validation accuracy {val_acc:.4f}"
          + (f", run {run_id}" if run_id else ""), flush=True)


if __name__ == "__main__":
    main()
