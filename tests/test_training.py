"""Real distributed training through `lathe job submit` on the local executor.

PyTorch DDP (gloo), OpenMPI and XGBoost jobs from examples/jobs/ run as
gangs of real processes; the assertions read what the processes printed.
SQLite only: the store is not what these tests exercise (test_jobs.py and
test_job_recovery.py cover both stores).
"""
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT, Server

EXAMPLES = os.path.join(ROOT, "examples", "jobs")


def have_python_module(name):
    return subprocess.run(["/usr/bin/python3", "-c", f"import {name}"],
                          capture_output=True).returncode == 0


@pytest.fixture
def jobs_server(tmp_path):
    s = Server(tmp_path / "home", extra_args=["--set", "executor.local.nodes=2"]).start()
    s.cli("project", "create", "train")
    yield s
    s.stop()


def submit_example(server, name, timeout="5m"):
    d = os.path.join(EXAMPLES, name)
    server.cli("job", "submit", "-f", os.path.join(d, "job.yaml"), "--code", d,
               env={"LATHE_PROJECT": "train"})
    job = yaml_name(os.path.join(d, "job.yaml"))
    res = server.cli("job", "wait", job, "--timeout", timeout, check=False,
                     env={"LATHE_PROJECT": "train"})
    described = json.loads(server.cli("job", "describe", job, "-o", "json",
                                      env={"LATHE_PROJECT": "train"}).stdout)
    assert res.returncode == 0, (res.stdout, res.stderr, described, logs_of(server, job, described))
    assert described["phase"] == "succeeded"
    return job, described


def yaml_name(path):
    with open(path) as f:
        for line in f:
            m = re.match(r"name:\s*(\S+)", line)
            if m:
                return m.group(1)
    raise AssertionError("no name in " + path)


def logs_of(server, job, described):
    out = {}
    for t in described.get("tasks", []):
        key = f"{t['role']}-{t['index']}"
        res = server.cli("job", "logs", job, "--role", t["role"], "--index", str(t["index"]),
                         check=False, env={"LATHE_PROJECT": "train"})
        out[key] = res.stdout
        err = server.cli("job", "logs", job, "--role", t["role"], "--index", str(t["index"]),
                         "--stream", "stderr", check=False, env={"LATHE_PROJECT": "train"})
        out[key + ".stderr"] = err.stdout
    return out


@pytest.mark.skipif(not have_python_module("torch"), reason="python3-torch is not installed")
def test_pytorch_ddp_two_workers_end_with_identical_parameters(jobs_server):
    job, described = submit_example(jobs_server, "pytorch-ddp")
    assert [(t["role"], t["index"]) for t in described["tasks"]] == [("worker", 0), ("worker", 1)]
    logs = logs_of(jobs_server, job, described)
    digests = {}
    for key in ("worker-0", "worker-1"):
        m = re.search(r"rank (\d) params_sha256 ([0-9a-f]{64})", logs[key])
        assert m, logs
        digests[int(m.group(1))] = m.group(2)
    assert set(digests) == {0, 1}
    assert digests[0] == digests[1]


@pytest.mark.skipif(shutil.which("mpirun") is None or shutil.which("mpicc") is None,
                    reason="OpenMPI is not installed")
def test_mpi_two_ranks_allreduce_as_root(jobs_server):
    job, described = submit_example(jobs_server, "mpi")
    logs = logs_of(jobs_server, job, described)
    out = logs["launcher-0"]
    assert "rank 0 of 2" in out and "rank 1 of 2" in out, logs
    assert out.count("allreduce sum 3 (ok)") == 2, logs


@pytest.mark.skipif(not have_python_module("xgboost"), reason="python3-xgboost is not installed")
def test_xgboost_two_workers_train_one_model(jobs_server):
    job, described = submit_example(jobs_server, "xgboost")
    logs = logs_of(jobs_server, job, described)
    digests = set()
    ranks = set()
    for key in ("master-0", "worker-0"):
        m = re.search(r"rank (\d) of 2 model_sha256 ([0-9a-f]{64})", logs[key])
        assert m, logs
        ranks.add(int(m.group(1)))
        digests.add(m.group(2))
    assert ranks == {0, 1}
    assert len(digests) == 1, logs
    # The job's run: metrics, the model artifact, and a registered version whose
    # lineage goes back to the run, the job and its code snapshot.
    token = jobs_server.admin_token
    run_id = described["run_id"]
    _, run = jobs_server.request("GET", f"/api/v1/projects/train/runs/{run_id}", token=token)
    assert run["status"] == "FINISHED" and run["metrics"]["train_logloss"]["step"] == 19, run
    assert run["params"]["max_depth"] == "4"
    _, listing = jobs_server.request("GET", f"/api/v1/projects/train/runs/{run_id}/artifacts?path=model",
                                     token=token)
    assert [f["path"] for f in listing["files"]] == ["model/model.json"], listing
    status, model = jobs_server.request("GET", f"/api/v1/projects/train/models/xgboost-demo/versions/1",
                                        token=token)
    assert status == 200, model
    assert model["run_id"] == run_id and model["source"].endswith(f"/{run_id}/artifacts/model")
    lineage = model["lineage"]
    assert lineage["job_id"] == described["id"] and lineage["code_digest"] == described["code"]
    assert lineage["experiment_name"] == "xgboost-demo", lineage
    status, raw = jobs_server.request("GET", f"/api/v1/projects/train/runs/{run_id}/artifacts/model/model.json",
                                      token=token)
    assert status == 200
