"""Lathe's Python SDK: experiment tracking against a Lathe server.

    import lathe
    with lathe.start_run(experiment="mnist", run_name="baseline"):
        lathe.log_params({"lr": 0.01, "epochs": 3})
        for step in range(1000):
            lathe.log_metric("loss", 1.0 / (step + 1), step=step)   # returns at once

The server, token and project come from LATHE_SERVER, LATHE_TOKEN and
LATHE_PROJECT (a Lathe job has all three). See python/README.md.
"""
from lathe._version import __version__
from lathe.errors import LatheError
from lathe.tracking import (Run, active_run, configure, end_run, flush, get_metric_history,
                            get_run, log_metric, log_metrics, log_param, log_params,
                            search_runs, set_experiment, set_tag, set_tags, start_run)

__all__ = [
    "__version__", "LatheError", "Run", "active_run", "configure", "end_run", "flush",
    "get_metric_history", "get_run", "log_metric", "log_metrics", "log_param", "log_params",
    "search_runs", "set_experiment", "set_tag", "set_tags", "start_run",
]
