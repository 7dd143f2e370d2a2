"""Jobs survive `kill -9` of the server: shims keep running tasks, the
restarted server reattaches, and every job reaches the right terminal state
exactly once — no task started twice, no job lost (issue 4, Reliability)."""
import collections
import os
import signal
import time

from conftest import Server

JOBS = 200


def job_spec(i, starts):
    code = 1 if i % 10 == 3 else 0
    sleep = (i % 7) * 0.3
    return {
        "name": f"job-{i:03d}",
        "roles": [{
            "name": "main",
            "command": ["/bin/sh", "-c",
                        f'echo "$LATHE_JOB_ID $LATHE_ATTEMPT" >> {starts}; sleep {sleep}; exit {code}'],
            "resources": {"cpu": "100m", "memory": "16Mi"},
        }],
    }


def wait_all_terminal(server, token, deadline_s):
    deadline = time.time() + deadline_s
    jobs = {}
    while time.time() < deadline:
        jobs = {}
        page = ""
        while True:
            status, body = server.request(
                "GET", f"/api/v1/projects/rel/jobs?limit=1000&page_token={page}", token=token)
            assert status == 200, body
            for j in body["items"]:
                jobs[j["name"]] = j
            page = body["next_page_token"]
            if not page:
                break
        if len(jobs) == JOBS and all(
                j["phase"] in ("succeeded", "failed", "cancelled", "timed_out") for j in jobs.values()):
            return jobs
        time.sleep(0.5)
    counts = collections.Counter(j["phase"] for j in jobs.values())
    raise AssertionError(f"not all jobs ended in {deadline_s}s: {dict(counts)}")


def test_kill_9_with_200_jobs_pending_and_running(tmp_path, store_url):
    home = tmp_path / "home"
    starts = tmp_path / "starts.log"
    args = ["--set", "executor.local.cpu=2", "--set", "executor.local.memory=8Gi"]
    server = Server(home, store=store_url, extra_args=args).start()
    token = server.admin_token
    server.cli("project", "create", "rel")
    status, body = server.request("POST", "/api/v1/projects/rel/jobs:batch", token=token,
                                  body={"jobs": [job_spec(i, starts) for i in range(JOBS)]})
    assert status == 201, body
    # Let some jobs finish and many run, with the rest pending; then kill -9.
    time.sleep(2.5)
    server.stop(sig=signal.SIGKILL)
    assert server.proc.returncode == -signal.SIGKILL
    time.sleep(0.5)

    restarted = Server(home, store=store_url, extra_args=args).start()
    try:
        jobs = wait_all_terminal(restarted, token, deadline_s=150)
    finally:
        restarted.stop()

    for i in range(JOBS):
        want = "failed" if i % 10 == 3 else "succeeded"
        got = jobs[f"job-{i:03d}"]
        assert got["phase"] == want, got
        assert got["attempt"] == 0, got

    with open(starts) as f:
        lines = [l.split() for l in f.read().splitlines()]
    started = collections.Counter(job_id for job_id, _ in lines)
    assert len(started) == JOBS, f"{len(started)} distinct jobs started"
    twice = {k: n for k, n in started.items() if n != 1}
    assert not twice, f"tasks started more than once: {twice}"
    assert all(attempt == "0" for _, attempt in lines)


def shim_pids_of(job_id):
    """Pids of `lathe shim` processes whose task directory is under job_id."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"shim" in argv and any(job_id.encode() in a for a in argv):
            out.append(int(pid))
    return out


def test_task_whose_shim_vanished_fails_as_lost(tmp_path):
    server = Server(tmp_path / "home").start()
    try:
        token = server.admin_token
        server.cli("project", "create", "rel")
        status, job = server.request("POST", "/api/v1/projects/rel/jobs", token=token, body={
            "name": "victim",
            "roles": [{"name": "main", "command": ["sleep", "60"],
                       "resources": {"cpu": "100m", "memory": "16Mi"}}],
        })
        assert status == 201, job
        deadline = time.time() + 20
        while time.time() < deadline:
            _, job = server.request("GET", "/api/v1/projects/rel/jobs/victim", token=token)
            if job["phase"] == "running":
                break
            time.sleep(0.1)
        assert job["phase"] == "running", job
        pids = shim_pids_of(job["id"])
        assert len(pids) == 1, pids
        os.kill(pids[0], signal.SIGKILL)
        deadline = time.time() + 20
        while time.time() < deadline:
            _, job = server.request("GET", "/api/v1/projects/rel/jobs/victim", token=token)
            if job["phase"] in ("failed", "succeeded", "cancelled"):
                break
            time.sleep(0.1)
        assert job["phase"] == "failed", job
        assert job["reason"] == "TaskLost", job
        assert "lost" in job["message"]
    finally:
        server.stop()
