"""A job with `tracking: {experiment}` gets a run; the Python SDK inside the
job attaches to it through LATHE_RUN_ID; the run ends with the job."""
import json
import time

from conftest import Server

SCRIPT = """
import lathe
run = lathe.start_run()
for step in range(200):
    lathe.log_metric("loss", 1.0 / (step + 1), step=step)
lathe.log_param("lr", "0.01")
lathe.end_run()
print("logged to", run)
"""


def test_tracked_job_logs_into_its_own_run(tmp_path):
    server = Server(tmp_path / "home").start()
    try:
        token = server.admin_token
        server.cli("project", "create", "trk")
        status, job = server.request("POST", "/api/v1/projects/trk/jobs", token=token, body={
            "name": "train",
            "tracking": {"experiment": "nightly"},
            "roles": [{"name": "main", "command": ["/usr/bin/python3", "-c", SCRIPT],
                       "resources": {"cpu": "100m", "memory": "256Mi"}}],
        })
        assert status == 201, job
        deadline = time.time() + 60
        while time.time() < deadline:
            _, job = server.request("GET", "/api/v1/projects/trk/jobs/train", token=token)
            if job["phase"] in ("succeeded", "failed"):
                break
            time.sleep(0.1)
        logs = server.cli("job", "logs", "train", "--stream", "stderr", check=False,
                          env={"LATHE_PROJECT": "trk"}).stdout
        assert job["phase"] == "succeeded", (job, logs)
        run_id = job["run_id"]
        assert run_id and len(run_id) == 32, job

        status, run = server.request("GET", f"/api/v1/projects/trk/runs/{run_id}", token=token)
        assert status == 200, run
        assert run["status"] == "FINISHED", run
        assert run["job_id"] == job["id"]
        assert run["run_name"] == "train"
        assert run["params"] == {"lr": "0.01"}
        assert run["metrics"]["loss"]["step"] == 199
        assert run["tags"]["lathe.job_id"] == job["id"]
        status, exp = server.request("GET", "/api/v1/projects/trk/experiments/nightly", token=token)
        assert status == 200 and exp["id"] == run["experiment_id"], exp
        status, hist = server.request(
            "GET", f"/api/v1/projects/trk/runs/{run_id}/metrics/loss?max_points=50", token=token)
        assert status == 200, hist
        assert hist["total_points"] == 200 and len(hist["points"]) <= 50
    finally:
        server.stop()


def test_tracked_job_with_a_code_snapshot_tags_its_run_with_the_digest(tmp_path):
    """Model lineage reaches the code a job ran through the run's tag lathe.code_digest."""
    server = Server(tmp_path / "home").start()
    try:
        token = server.admin_token
        server.cli("project", "create", "trk")
        code = tmp_path / "code"
        code.mkdir()
        (code / "train.py").write_text("print('trained')\n")
        spec = tmp_path / "job.json"
        spec.write_text(json.dumps({
            "name": "snap", "tracking": {"experiment": "lineage"},
            "roles": [{"name": "main", "command": ["/usr/bin/python3", "train.py"],
                       "resources": {"cpu": "100m", "memory": "128Mi"}}]}))
        res = server.cli("job", "submit", "-f", str(spec), "--code", str(code), "--wait",
                         env={"LATHE_PROJECT": "trk"})
        assert "succeeded" in res.stdout, res
        _, job = server.request("GET", "/api/v1/projects/trk/jobs/snap", token=token)
        assert len(job["code"]) == 64
        _, run = server.request("GET", f"/api/v1/projects/trk/runs/{job['run_id']}", token=token)
        assert run["tags"]["lathe.code_digest"] == job["code"], run
    finally:
        server.stop()
