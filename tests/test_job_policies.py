"""Restart policies, deadlines, TTL and gangs on real processes (issue 4).

SQLite only: the controller logic is store-agnostic and test_jobs.py /
test_job_recovery.py run on both stores.
"""
import os
import time

import pytest

from conftest import Server

PROJECT = "pol"


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path / "home", extra_args=["--local-nodes", "2", "--set",
                                              "jobs.kill_grace_ms=500"]).start()
    s.cli("project", "create", PROJECT)
    yield s
    s.stop()


def submit(server, doc):
    status, body = server.request("POST", f"/api/v1/projects/{PROJECT}/jobs",
                                  token=server.admin_token, body=doc)
    assert status == 201, body
    return body


def wait_phase(server, name, phases, timeout=30):
    deadline = time.time() + timeout
    job = None
    while time.time() < deadline:
        status, job = server.request("GET", f"/api/v1/projects/{PROJECT}/jobs/{name}",
                                     token=server.admin_token)
        if status == 404 and "gone" in phases:
            return None
        assert status == 200, job
        if job["phase"] in phases:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {name} did not reach {phases}: {job}")


def events(server, name):
    status, body = server.request("GET", f"/api/v1/projects/{PROJECT}/jobs/{name}/events",
                                  token=server.admin_token)
    assert status == 200, body
    return [e["reason"] for e in body["events"]]


def role(name, script, replicas=1):
    return {"name": name, "replicas": replicas, "command": ["sh", "-c", script],
            "resources": {"cpu": "100m", "memory": "64Mi"}}


def test_on_failure_restarts_the_whole_gang_as_a_new_attempt(server, tmp_path):
    marks = tmp_path / "marks"
    # Attempt 0: worker 1 fails while worker 0 sleeps; attempt 1 succeeds.
    script = (f'echo "$LATHE_ATTEMPT $LATHE_REPLICA_INDEX" >> {marks}; '
              'if [ "$LATHE_ATTEMPT" = 0 ]; then '
              '  if [ "$LATHE_REPLICA_INDEX" = 1 ]; then exit 4; else sleep 30; fi; fi; exit 0')
    submit(server, {"name": "flaky", "roles": [role("worker", script, replicas=2)],
                    "restart_policy": {"policy": "OnFailure", "limit": 2, "backoff": "1s"}})
    job = wait_phase(server, "flaky", ("succeeded", "failed"), timeout=40)
    assert job["phase"] == "succeeded", job
    assert job["attempt"] == 1 and job["restarts"] == 1, job
    reasons = events(server, "flaky")
    assert "Restarting" in reasons, reasons
    lines = sorted(marks.read_text().split("\n")[:-1])
    # Both workers ran once per attempt: the sleeping one was stopped and restarted too.
    assert lines == ["0 0", "0 1", "1 0", "1 1"], lines


def test_exit_codes_policy_gives_up_after_the_limit(server):
    submit(server, {"name": "always-42", "roles": [role("main", "exit 42")],
                    "restart_policy": {"policy": "ExitCodes", "exit_codes": [42], "limit": 1,
                                       "backoff": "1s"}})
    job = wait_phase(server, "always-42", ("succeeded", "failed"), timeout=30)
    assert job["phase"] == "failed"
    assert job["reason"] == "BackoffLimitExceeded", job
    assert job["restarts"] == 1
    assert job["tasks"][0]["exit_code"] == 42


def test_timeout_ends_timed_out(server):
    submit(server, {"name": "slow", "roles": [role("main", "sleep 60")], "timeout": "1s"})
    job = wait_phase(server, "slow", ("timed_out", "failed", "succeeded"), timeout=20)
    assert job["phase"] == "timed_out", job
    assert job["reason"] == "DeadlineExceeded"


def test_ttl_after_finished_removes_the_job(server):
    submit(server, {"name": "brief", "roles": [role("main", "true")], "ttl_after_finished": "1s"})
    wait_phase(server, "brief", ("succeeded",), timeout=20)
    assert wait_phase(server, "brief", ("gone",), timeout=20) is None


def test_gang_waits_until_all_its_tasks_fit(server):
    # Two nodes; each worker asks for a whole node's CPUs: 2 fit, 3 never run together.
    cpus = os.cpu_count()
    hold = {"name": "hold", "roles": [{"name": "main", "command": ["sleep", "30"],
                                       "resources": {"cpu": cpus, "memory": "64Mi"}}]}
    submit(server, hold)
    wait_phase(server, "hold", ("running",))
    gang = {"name": "gang", "roles": [{"name": "worker", "replicas": 2, "command": ["true"],
                                       "resources": {"cpu": cpus, "memory": "64Mi"}}]}
    submit(server, gang)
    time.sleep(1)
    status, job = server.request("GET", f"/api/v1/projects/{PROJECT}/jobs/gang",
                                 token=server.admin_token)
    assert job["phase"] == "pending", job
    assert job["tasks"] == [] and job["pending_reason"], job
    status, _ = server.request("POST", f"/api/v1/projects/{PROJECT}/jobs/hold:cancel",
                               token=server.admin_token)
    assert status == 200
    job = wait_phase(server, "gang", ("succeeded", "failed"), timeout=30)
    assert job["phase"] == "succeeded"
    assert sorted(t["node"] for t in job["tasks"]) == ["local-0", "local-1"]
