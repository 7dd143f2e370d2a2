"""The example pipeline (examples/pipelines) end to end through the real binary.

`lathe pipeline run -f examples/pipelines/pipeline.yaml --code
examples/pipelines --sample N` on the local executor: prepare, three train
jobs (two at a time), evaluate and register run as real processes with
Debian's scikit-learn; the assertions read the run's nodes and outputs, the
tracking runs the steps logged to and the registered model version with its
lineage. A second run shows the cache and the skipped register step; the
nightly schedule is created from schedule.yaml and backfilled for one night.
SQLite only: the store is not what these tests exercise (test_pipelines.py
covers both stores).
"""
import datetime
import json
import os
import subprocess
import time

import pytest

from conftest import ROOT, Server

EXAMPLE = os.path.join(ROOT, "examples", "pipelines")
PROJECT = "pipes"
SAMPLE = 150
RUN_TIMEOUT_S = 240  # a run takes ~20 s on an idle 2-core machine


def have_sklearn():
    return subprocess.run(["/usr/bin/python3", "-c", "import sklearn, pandas"],
                          capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not have_sklearn(),
                                reason="python3-sklearn and python3-pandas are not installed")


@pytest.fixture
def pipes_server(tmp_path):
    s = Server(tmp_path / "home", extra_args=["--set", "executor.local.nodes=2"]).start()
    s.cli("project", "create", PROJECT)
    yield s
    s.stop()


def lathe(server, *args, check=True):
    return server.cli(*args, check=check, env={"LATHE_PROJECT": PROJECT})


def api(server, path):
    status, body = server.request("GET", f"/api/v1/projects/{PROJECT}{path}",
                                  token=server.admin_token)
    assert status == 200, (path, status, body)
    return body


def start_run(server, *args):
    res = lathe(server, "pipeline", "run", *args, "-o", "json")
    return json.loads(res.stdout)["id"]


def wait_run(server, run_id):
    deadline = time.time() + RUN_TIMEOUT_S
    while time.time() < deadline:
        run = api(server, f"/pipeline-runs/{run_id}")
        if run["state"] in ("succeeded", "failed", "cancelled"):
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} did not end in {RUN_TIMEOUT_S} s: "
                         f"{json.dumps(api(server, f'/pipeline-runs/{run_id}'), indent=1)}")


def nodes_of(run):
    return {n["node"]: n for n in run["nodes"]}


def explain(server, run):
    """The run, its events and every step job's logs, for a failed assertion."""
    out = [json.dumps(run, indent=1)]
    out.append(lathe(server, "pipeline-run", "describe", run["id"], check=False).stdout)
    for n in run["nodes"]:
        if n.get("job_name"):
            for stream in ("stdout", "stderr"):
                res = lathe(server, "job", "logs", n["job_name"], "--stream", stream, check=False)
                out.append(f"--- {n['node']} {stream}\n{res.stdout}{res.stderr}")
    return "\n".join(out)


def run_example(server, *extra):
    run_id = start_run(server, "-f", os.path.join(EXAMPLE, "pipeline.yaml"), "--code", EXAMPLE,
                       "--sample", str(SAMPLE), *extra)
    run = wait_run(server, run_id)
    assert run["state"] == "succeeded", explain(server, run)
    return run


def test_example_pipeline_trains_evaluates_and_registers_the_best_model(pipes_server):
    server = pipes_server
    run = run_example(server)
    nodes = nodes_of(run)
    assert set(nodes) == {"prepare", "train[0]", "train[1]", "train[2]", "evaluate", "register",
                          "summary"}, explain(server, run)
    assert all(n["state"] == "succeeded" and not n["cached"] for n in nodes.values()), \
        explain(server, run)
    assert run["params"]["sample"] == SAMPLE and run["params"]["c_values"] == [0.1, 1.0, 10.0]

    # prepare: the sample's row count and the data set as a directory artifact.
    assert nodes["prepare"]["outputs"]["parameters"]["rows"] == str(SAMPLE)
    data = nodes["prepare"]["outputs"]["artifacts"]["data"]["path"]
    assert sorted(os.listdir(data)) == ["test.csv", "train.csv"]
    lines = 0
    for name in ("train.csv", "test.csv"):
        with open(os.path.join(data, name)) as f:
            lines += sum(1 for _ in f) - 1  # the header
    assert lines == SAMPLE

    # train: one tracking run per item, tagged with the pipeline run and node.
    scores, train_runs = [], []
    for i, c in enumerate([0.1, 1.0, 10.0]):
        out = nodes[f"train[{i}]"]["outputs"]
        scores.append(float(out["parameters"]["val_score"]))
        train_runs.append(out["parameters"]["run_id"])
        tracked = api(server, f"/runs/{out['parameters']['run_id']}")
        assert tracked["tags"]["lathe.pipeline_run_id"] == run["id"], tracked
        assert tracked["tags"]["lathe.pipeline_step"] == f"train[{i}]", tracked
        assert float(tracked["params"]["C"]) == c
        assert tracked["metrics"]["val_accuracy"]["value"] == pytest.approx(scores[-1], abs=1e-6)
        assert os.path.isfile(os.path.join(out["artifacts"]["model"]["path"], "model.pkl"))
    assert all(0.5 < s <= 1.0 for s in scores), scores

    # evaluate: the best validation score's model, its test AUC over the threshold.
    ev = nodes["evaluate"]["outputs"]["parameters"]
    best = max(range(3), key=lambda i: (scores[i], -i))
    auc = float(ev["auc"])
    assert 0.95 <= auc <= 1.0, ev
    assert ev["best_run_id"] == train_runs[best]
    assert ev["best_model"] == nodes[f"train[{best}]"]["outputs"]["artifacts"]["model"]["path"]
    ev_run = api(server, "/runs/" + api(server, f"/jobs/{nodes['evaluate']['job_id']}")["run_id"])
    assert ev_run["metrics"]["test_auc"]["value"] == pytest.approx(auc, abs=1e-6), ev_run

    # register: version 1 with alias champion, its run tagged with the pipeline
    # run and the step, the model uploaded to that run.
    model = api(server, "/models/breast-cancer")
    assert model["aliases"] == {"champion": 1}, model
    version = api(server, "/models/breast-cancer/versions/1")
    lineage = version["lineage"]
    assert lineage["pipeline_run_id"] == run["id"] and lineage["pipeline_step"] == "register", \
        lineage
    assert lineage["experiment_name"] == "breast-cancer"
    assert lineage["job_id"] == nodes["register"]["job_id"]
    assert lineage["code_digest"], lineage
    assert version["tags"]["train_run_id"] == train_runs[best], version
    assert version["tags"]["pipeline_run_id"] == run["id"]
    assert float(version["tags"]["test_auc"]) == pytest.approx(auc, abs=1e-6)
    reg_run = api(server, f"/runs/{version['run_id']}")
    assert reg_run["tags"]["lathe.pipeline_step"] == "register", reg_run
    listing = api(server, f"/runs/{version['run_id']}/artifacts?path=model")
    assert sorted(f["path"] for f in listing["files"]) == ["model/model.json", "model/model.pkl"]

    # The exit handler printed its summary line.
    res = lathe(server, "job", "logs", nodes["summary"]["job_name"])
    assert res.stdout.strip() == f"pipeline breast-cancer run {run['id']} finished", res.stdout


def test_example_pipeline_rerun_hits_the_cache_and_skips_register_below_threshold(pipes_server):
    server = pipes_server
    first = run_example(server)
    # Same data params: every step that reads them is a cache hit. The
    # threshold is read only by register's `when`, which is now false.
    second = run_example(server, "--param", "threshold=1.01")
    nodes = nodes_of(second)
    for name in ("prepare", "train[0]", "train[1]", "train[2]", "evaluate"):
        assert nodes[name]["state"] == "succeeded" and nodes[name]["cached"], explain(server, second)
        assert nodes[name]["cache_source"] == f"{first['id']}/{name}"
        assert nodes[name]["outputs"] == nodes_of(first)[name]["outputs"]
    assert nodes["register"]["state"] == "skipped", explain(server, second)
    assert nodes["register"]["reason"] == "WhenFalse"
    assert not nodes["summary"]["cached"]  # it names the run, so it never hits
    versions = api(server, "/models/breast-cancer/versions")
    assert [v["version"] for v in versions["items"]] == [1], versions


def test_example_schedule_backfill_passes_the_scheduled_time(pipes_server):
    server = pipes_server
    lathe(server, "pipeline", "create", "-f", os.path.join(EXAMPLE, "pipeline.yaml"),
          "--code", EXAMPLE)
    lathe(server, "schedule", "create", "-f", os.path.join(EXAMPLE, "schedule.yaml"))
    sched = api(server, "/schedules/nightly")
    spec = sched["spec"]
    assert spec["cron"] == "0 2 * * *" and spec["timezone"] == "Europe/Berlin", spec
    assert spec["catchup"] is False and spec["overlap"] == "Forbid", spec
    assert sched["next_tick"].endswith(("T01:00:00.000Z", "T00:00:00.000Z")), sched  # CET / CEST

    # One night: 2026-11-02 02:00 CET is 01:00 UTC.
    lathe(server, "schedule", "backfill", "nightly", "--from", "2026-11-02T00:00:00Z",
          "--to", "2026-11-02T23:59:59Z")
    deadline = time.time() + RUN_TIMEOUT_S
    runs = []
    while time.time() < deadline and not runs:
        runs = api(server, "/pipeline-runs?schedule=nightly")["items"]
        time.sleep(0.5)
    assert len(runs) == 1, runs
    run = wait_run(server, runs[0]["id"])
    assert run["state"] == "succeeded", explain(server, run)
    scheduled = run["params"]["scheduled_time"]
    assert instant(scheduled) == instant("2026-11-02T01:00:00Z"), run["params"]
    assert run["params"]["threshold"] == 0.95
    prepare = nodes_of(run)["prepare"]
    res = lathe(server, "job", "logs", prepare["job_name"])
    assert f"scheduled run for {scheduled}\n" in res.stdout, res.stdout


def instant(rfc3339):
    return datetime.datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
