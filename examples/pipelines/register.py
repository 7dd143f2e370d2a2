"""Step `register`: uploads the chosen model as the artifact `model` of this
step's tracking run, registers it as a new version of a registered model and
points an alias (default `champion`) at it.

    register.py --model DIR --name NAME --auc AUC [--train-run-id ID] [--alias A]

The pipeline runs this step only when evaluate's AUC reaches the threshold
(`when:` in pipeline.yaml). The version's lineage is this step's run (tagged
by Lathe with lathe.pipeline_run_id and lathe.pipeline_step), its job and
code; the version's tags name the training run and the AUC. Outside Lathe
(no LATHE_RUN_ID) it only checks that the model loads and says so.
"""
import argparse
import os
import pickle

from steplib import tracking


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="the best model's directory (evaluate)")
    p.add_argument("--name", required=True, help="registered model name")
    p.add_argument("--auc", type=float, required=True, help="the model's test ROC AUC")
    p.add_argument("--train-run-id", default="", help="the run that trained the model")
    p.add_argument("--alias", default="champion")
    args = p.parse_args()

    with open(os.path.join(args.model, "model.pkl"), "rb") as f:
        pickle.load(f)  # refuse to register a file that is not a model
    lathe = tracking()
    if lathe is None:
        print(f"model in {args.model} loads; no tracking run (LATHE_RUN_ID unset): "
              f"not registering {args.name}", flush=True)
        return
    run = lathe.start_run()
    lathe.log_params({"model_name": args.name, "test_auc": args.auc,
                      "train_run_id": args.train_run_id})
    lathe.log_artifacts(args.model, artifact_path="model")
    tags = {"test_auc": f"{args.auc:.6f}"}
    if args.train_run_id:
        tags["train_run_id"] = args.train_run_id
    if os.environ.get("LATHE_PIPELINE_RUN_ID"):
        tags["pipeline_run_id"] = os.environ["LATHE_PIPELINE_RUN_ID"]
    version = lathe.register_model(f"runs:/{run.run_id}/model", args.name, tags=tags,
                                   description="breast-cancer example pipeline "
                                               f"(test ROC AUC {args.auc:.4f})")
    lathe.set_model_alias(args.name, args.alias, version["version"])
    lathe.end_run()
    print(f"registered {args.name} version {version['version']} from run {run.run_id}; "
          f"alias {args.alias} -> {version['version']}", flush=True)


if __name__ == "__main__":
    main()
