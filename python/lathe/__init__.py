"""Lathe's Python SDK: experiment tracking, run artifacts and the model
registry against a Lathe server.

    import lathe
    with lathe.start_run(experiment="mnist", run_name="baseline") as run:
        lathe.log_params({"lr": 0.01, "epochs": 3})
        for step in range(1000):
            lathe.log_metric("loss", 1.0 / (step + 1), step=step)   # returns at once
        lathe.log_artifacts("model/", artifact_path="model")     # streamed uploads
    lathe.register_model("runs:/{}/model".format(run.run_id), "mnist-classifier")

The server, token and project come from LATHE_SERVER, LATHE_TOKEN and
LATHE_PROJECT (a Lathe job has all three). See python/README.md.
"""
from lathe._version import __version__
from lathe.artifacts import download_artifact, list_artifacts, log_artifact, log_artifacts
from lathe.errors import LatheError
from lathe.registry import (delete_model_alias, get_model_version, get_model_version_by_alias,
                            get_registered_model, register_model, set_model_alias)
from lathe.tracking import (Run, active_run, configure, end_run, flush, get_metric_history,
                            get_run, log_metric, log_metrics, log_param, log_params,
                            search_runs, set_experiment, set_tag, set_tags, start_run)

__all__ = [
    "__version__", "LatheError", "Run", "active_run", "configure", "delete_model_alias",
    "download_artifact", "end_run", "flush", "get_metric_history", "get_model_version",
    "get_model_version_by_alias", "get_registered_model", "get_run", "list_artifacts",
    "log_artifact", "log_artifacts", "log_metric", "log_metrics", "log_param", "log_params",
    "register_model", "search_runs", "set_experiment", "set_model_alias", "set_tag", "set_tags",
    "start_run",
]
