"""Training jobs and queues through the REST API and the `lathe` CLI.

Real jobs on the local executor (`echo`, `exit 3`, `sleep 60`, a code
snapshot): submit, list, describe, events, logs (plain and followed), cancel,
rm; spec errors answer 422 with the field path; queues are admin-only.
Every wait is bounded (`lathe job wait --timeout`, deadlines below).
"""
import json
import os
import subprocess
import time

import pytest

from conftest import LATHE, Server

PROJECT = "ml"


def spec(name, command, cpu=1, memory="256Mi", **extra):
    doc = {"name": name,
           "roles": [{"name": "main", "command": command,
                      "resources": {"cpu": cpu, "memory": memory}}]}
    doc.update(extra)
    return doc


def sh(name, script, **extra):
    return spec(name, ["sh", "-c", script], **extra)


@pytest.fixture
def jobs(server):
    server.cli("project", "create", PROJECT)
    return server


def cli(server, *args, **kw):
    env = dict(kw.pop("env", {}) or {})
    env.setdefault("LATHE_PROJECT", PROJECT)
    return server.cli(*args, env=env, **kw)


def write_spec(tmp_path, doc):
    path = tmp_path / f"{doc['name']}.yaml"
    path.write_text(json.dumps(doc))  # JSON is YAML too
    return str(path)


def submit(server, doc, token=None, project=PROJECT, query=""):
    status, body = server.request("POST", f"/api/v1/projects/{project}/jobs{query}",
                                  token=token or server.admin_token, body=doc)
    assert status == 201, body
    return body


def get_job(server, name, token=None, project=PROJECT):
    return server.request("GET", f"/api/v1/projects/{project}/jobs/{name}",
                          token=token or server.admin_token)


def wait_phase(server, name, phases, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status, job = get_job(server, name)
        assert status == 200, job
        if job["phase"] in phases:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {name} did not reach {phases}: {job}")


def test_echo_job_succeeds_and_its_log_says_hello(jobs, tmp_path):
    path = write_spec(tmp_path, sh("hello", "echo hello; echo to-stderr >&2"))
    res = cli(jobs, "job", "submit", "-f", path, "--wait")
    assert 'job "hello" succeeded' in res.stdout
    assert cli(jobs, "job", "logs", "hello").stdout == "hello\n"
    assert cli(jobs, "job", "logs", "hello", "--stream", "stderr").stdout == "to-stderr\n"
    # ls: a table, then JSON with the job's fields and canonical spec.
    lines = cli(jobs, "job", "ls").stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["NAME", "PHASE", "REASON"]
    assert lines[1].split()[:2] == ["hello", "succeeded"]
    items = json.loads(cli(jobs, "job", "ls", "-o", "json").stdout)["items"]
    assert len(items) == 1
    job = items[0]
    assert job["project"] == PROJECT and job["queue"] == "default" and job["created_by"] == "admin"
    assert job["spec"]["roles"][0]["command"] == ["sh", "-c", "echo hello; echo to-stderr >&2"]
    for key in ("created_at", "admitted_at", "started_at", "finished_at"):
        assert job[key].endswith("Z"), key
    [task] = job["tasks"]
    assert {k: task[k] for k in ("role", "index", "state", "exit_code", "signal")} == \
        {"role": "main", "index": 0, "state": "exited", "exit_code": 0, "signal": 0}, task
    assert task["node"] and task["started_at"] <= task["finished_at"], task
    # describe: fields, tasks and events; -o json carries the events too.
    table = cli(jobs, "job", "describe", "hello").stdout
    assert "PHASE:" in table and "succeeded" in table
    assert "Tasks:" in table and "Events:" in table and "Submitted" in table
    described = json.loads(cli(jobs, "job", "describe", job["id"], "-o", "json").stdout)
    reasons = [e["reason"] for e in described["events"]]
    assert reasons[0] == "Submitted" and reasons[-1] == "Completed", reasons
    status, events = jobs.request("GET", f"/api/v1/projects/{PROJECT}/jobs/hello/events",
                                  token=jobs.admin_token)
    assert status == 200 and set(events["events"][0]) == {"time", "type", "reason", "message"}
    # Plain REST logs: text/plain with the next offset; offset skips bytes.
    status, text = jobs.request("GET", f"/api/v1/projects/{PROJECT}/jobs/hello/logs?offset=2",
                                token=jobs.admin_token)
    assert status == 200 and text == "llo\n"


def test_failing_job_ends_failed_with_its_exit_code(jobs, tmp_path):
    path = write_spec(tmp_path, sh("fails", "echo about to fail; exit 3"))
    res = cli(jobs, "job", "submit", "-f", path, "--wait", check=False)
    assert res.returncode == 1 and "failed" in res.stderr, res
    described = json.loads(cli(jobs, "job", "describe", "fails", "-o", "json").stdout)
    assert described["phase"] == "failed"
    assert described["tasks"][0]["exit_code"] == 3
    table = cli(jobs, "job", "describe", "fails").stdout
    task_line = [l for l in table.splitlines() if l.startswith("main ")][0]
    assert task_line.split()[3:5] == ["exited", "3"], table
    res = cli(jobs, "job", "wait", "fails", "--timeout", "10s", check=False)
    assert res.returncode == 1


def test_sleeping_job_cancels_and_is_removed(jobs, tmp_path):
    cli(jobs, "job", "submit", "-f", write_spec(tmp_path, spec("sleeper", ["sleep", "60"])))
    wait_phase(jobs, "sleeper", {"running"})
    # A running job cannot be removed.
    res = cli(jobs, "job", "rm", "sleeper", check=False)
    assert res.returncode == 1 and "sleeper" in res.stderr
    assert "cancelling" in cli(jobs, "job", "cancel", "sleeper").stdout
    res = cli(jobs, "job", "wait", "sleeper", "--timeout", "30s", check=False)
    assert res.returncode == 1 and "cancelled" in res.stderr
    job = wait_phase(jobs, "sleeper", {"cancelled"})
    assert job["finished_at"] is not None
    # Cancelling again is a conflict; POST without :cancel is 405.
    status, body = jobs.request("POST", f"/api/v1/projects/{PROJECT}/jobs/sleeper:cancel",
                                token=jobs.admin_token)
    assert status == 409, body
    status, body = jobs.request("POST", f"/api/v1/projects/{PROJECT}/jobs/sleeper",
                                token=jobs.admin_token)
    assert status == 405 and body["error"]["code"] == "METHOD_NOT_ALLOWED"
    cli(jobs, "job", "rm", "sleeper")
    assert get_job(jobs, "sleeper")[0] == 404
    task_root = os.path.join(jobs.home, "tasks", job["id"])
    assert not os.path.exists(task_root)


def test_followed_log_streams_until_the_task_ends(jobs, tmp_path):
    script = "for i in 1 2 3; do echo tick $i; sleep 0.3; done; printf 'caf\\303'; sleep 0.3; " \
             "printf '\\251 done\\n'"
    cli(jobs, "job", "submit", "-f", write_spec(tmp_path, sh("ticker", script)))
    started = time.time()
    res = cli(jobs, "job", "logs", "ticker", "-f")
    assert res.stdout == "tick 1\ntick 2\ntick 3\ncafé done\n"
    assert time.time() - started < 20
    # Following a finished job prints what there is and ends at once.
    assert cli(jobs, "job", "logs", "ticker", "--follow").stdout == res.stdout


def test_pending_job_says_why_in_describe(tmp_path):
    server = Server(tmp_path / "home", extra_args=["--set", "executor.local.cpu=2"]).start()
    try:
        server.cli("project", "create", PROJECT)
        submit(server, spec("hog", ["sleep", "60"], cpu=2))
        wait_phase(server, "hog", {"running"})
        submit(server, spec("waiter", ["true"], cpu=2))
        deadline = time.time() + 20
        while True:
            job = get_job(server, "waiter")[1]
            if job.get("pending_reason") or time.time() > deadline:
                break
            time.sleep(0.05)
        assert job["phase"] == "pending" and job["pending_reason"], job
        table = cli(server, "job", "describe", "waiter").stdout
        assert "PENDING REASON:" in table and job["pending_reason"] in table
        q = json.loads(server.cli("queue", "get", "default", "-o", "json").stdout)
        assert q["running"] == 1 and q["pending"] == 1 and q["usage"]["cpu"] == "2", q
        cli(server, "job", "cancel", "hog")
        res = cli(server, "job", "wait", "waiter", "--timeout", "30s")
        assert "succeeded" in res.stdout
    finally:
        server.stop()


def test_invalid_spec_answers_422_with_the_field_path(jobs):
    bad = spec("bad", ["true"])
    bad["roles"].append({"name": "b", "command": ["true"],
                         "resources": {"cpu": 1, "memory": "3GB"}})
    status, body = jobs.request("POST", f"/api/v1/projects/{PROJECT}/jobs",
                                token=jobs.admin_token, body=bad)
    assert status == 422, body
    assert body["error"]["code"] == "INVALID_ARGUMENT"
    assert body["error"]["field"] == "roles[1].resources.memory"
    assert body["error"]["message"].startswith('roles[1].resources.memory: "3GB" is not a quantity')
    # YAML bodies too; malformed bodies stay 400.
    status, body = jobs.request("POST", f"/api/v1/projects/{PROJECT}/jobs", token=jobs.admin_token,
                                raw=b"name: y\nroles: 3\n",
                                headers={"Content-Type": "application/yaml"})
    assert status == 422 and body["error"]["field"] == "roles", body
    status, body = jobs.request("POST", f"/api/v1/projects/{PROJECT}/jobs",
                                token=jobs.admin_token, raw=b'{"name":')
    assert status == 400, body
    # A project in the body must match the path.
    status, body = jobs.request("POST", f"/api/v1/projects/{PROJECT}/jobs", token=jobs.admin_token,
                                body=dict(spec("x", ["true"]), project="other"))
    assert status == 422 and body["error"]["field"] == "project", body
    # The CLI prints the same one line.
    res = jobs.cli("job", "submit", "-f", "-", "--project", PROJECT, input=json.dumps(bad),
                   check=False)
    assert res.returncode == 1
    assert res.stderr.startswith('error: roles[1].resources.memory: "3GB" is not a quantity')
    assert get_job(jobs, "bad")[0] == 404


def test_job_no_node_can_hold_is_rejected_at_submit(jobs):
    status, body = jobs.request("POST", f"/api/v1/projects/{PROJECT}/jobs", token=jobs.admin_token,
                                body=spec("huge", ["true"], cpu=10000))
    assert status == 422, body
    assert "no node" in body["error"]["message"] and "10000" in body["error"]["message"]
    assert get_job(jobs, "huge")[0] == 404


def test_job_to_a_missing_queue_is_rejected(jobs):
    status, body = jobs.request("POST", f"/api/v1/projects/{PROJECT}/jobs", token=jobs.admin_token,
                                body=spec("lost", ["true"], queue="nope"))
    assert status == 422 and body["error"]["field"] == "queue", body
    assert "nope" in body["error"]["message"]


def test_batch_submit_is_all_or_nothing(jobs):
    batch = {"jobs": [spec(f"b{i}", ["true"]) for i in range(3)]}
    status, body = jobs.request("POST", f"/api/v1/projects/{PROJECT}/jobs:batch",
                                token=jobs.admin_token, body=batch)
    assert status == 201, body
    assert [j["name"] for j in body["jobs"]] == ["b0", "b1", "b2"]
    bad = {"jobs": [spec("c0", ["true"]), spec("c1", ["true"], cpu="lots")]}
    status, body = jobs.request("POST", f"/api/v1/projects/{PROJECT}/jobs:batch",
                                token=jobs.admin_token, body=bad)
    assert status == 422 and body["error"]["field"] == "jobs[1].roles[0].resources.cpu", body
    assert get_job(jobs, "c0")[0] == 404
    status, body = jobs.request("POST", f"/api/v1/projects/{PROJECT}/jobs:batch",
                                token=jobs.admin_token, body={"jobs": []})
    assert status == 422 and body["error"]["field"] == "jobs", body
    for i in range(3):
        wait_phase(jobs, f"b{i}", {"succeeded"})
    # Filters and paging.
    status, page = jobs.request("GET", f"/api/v1/projects/{PROJECT}/jobs?phase=succeeded&limit=2",
                                token=jobs.admin_token)
    assert status == 200 and len(page["items"]) == 2 and page["next_page_token"], page
    status, rest = jobs.request(
        "GET", f"/api/v1/projects/{PROJECT}/jobs?phase=succeeded&limit=2&page_token="
        + page["next_page_token"], token=jobs.admin_token)
    assert len(rest["items"]) == 1 and not rest["next_page_token"]
    status, none = jobs.request("GET", f"/api/v1/projects/{PROJECT}/jobs?phase=running",
                                token=jobs.admin_token)
    assert none["items"] == []
    status, body = jobs.request("GET", f"/api/v1/projects/{PROJECT}/jobs?phase=sleeping",
                                token=jobs.admin_token)
    assert status == 400 and body["error"]["field"] == "phase"


def test_project_comes_from_the_flag_or_the_environment(jobs, tmp_path):
    res = jobs.cli("job", "ls", check=False, env={"LATHE_PROJECT": ""})
    assert res.returncode == 1 and "--project" in res.stderr
    jobs.cli("job", "submit", "-f", write_spec(tmp_path, spec("flagged", ["true"])),
             "--project", PROJECT, env={"LATHE_PROJECT": ""})
    assert "flagged" in jobs.cli("job", "ls", "--project", PROJECT,
                                 env={"LATHE_PROJECT": ""}).stdout


def test_queues_lifecycle_and_only_admins_change_them(jobs, tmp_path):
    out = jobs.cli("queue", "create", "team-a", "--guarantee", "cpu=1,memory=1Gi",
                   "--ceiling", "cpu=2", "--weight", "2").stdout
    assert "team-a" in out and "cpu=2" in out
    qfile = tmp_path / "q.yaml"
    qfile.write_text("name: team-b\nparent: team-a\nguarantee: {cpu: 500m}\n")
    jobs.cli("queue", "create", "-f", str(qfile))
    lines = jobs.cli("queue", "ls").stdout.strip().splitlines()
    assert lines[0].split() == ["NAME", "PARENT", "WEIGHT", "GUARANTEE", "CEILING", "USAGE",
                                "RUNNING", "PENDING"]
    rows = {l.split()[0]: l.split() for l in lines[1:]}
    assert set(rows) == {"default", "team-a", "team-b"}
    assert rows["team-b"][1] == "team-a"
    assert rows["team-a"][2] == "2" and rows["team-a"][4] == "cpu=2"
    jobs.cli("queue", "update", "team-a", "--weight", "5", "--ceiling", "none")
    q = json.loads(jobs.cli("queue", "get", "team-a", "-o", "json").stdout)
    assert q["spec"]["weight"] == 5 and q["spec"]["ceiling"] == {}
    assert q["spec"]["guarantee"]["cpu"] == "1"  # unchanged by the update

    # Usage and pending count of a (leaf) queue with a running job.
    submit(jobs, spec("busy", ["sleep", "60"], queue="team-b"))
    wait_phase(jobs, "busy", {"running"})
    q = json.loads(jobs.cli("queue", "get", "team-b", "-o", "json").stdout)
    assert q["usage"] == {"cpu": "1", "memory": "256Mi", "gpu": "0"}, q
    assert q["running"] == 1 and q["pending"] == 0, q
    row = [l.split() for l in jobs.cli("queue", "ls").stdout.splitlines() if l.startswith("team-b")]
    assert row[0][5] == "cpu=1,memory=256Mi,gpu=0" and row[0][6:] == ["1", "0"], row
    jobs.cli("job", "cancel", "busy", "--project", PROJECT)
    wait_phase(jobs, "busy", {"cancelled"})

    # Non-admins read queues but cannot change them.
    jobs.cli("user", "create", "bob")
    bob = json.loads(jobs.cli("token", "create", "--name", "b", "--user", "bob",
                              "-o", "json").stdout)["token"]
    status, _ = jobs.request("GET", "/api/v1/queues", token=bob)
    assert status == 200
    for method, path, body in [("POST", "/api/v1/queues", {"name": "mine"}),
                               ("PUT", "/api/v1/queues/team-b", {"weight": 9}),
                               ("DELETE", "/api/v1/queues/team-b", None)]:
        status, answer = jobs.request(method, path, token=bob, body=body)
        assert status == 403, (method, path, answer)
    res = jobs.cli("queue", "rm", "team-b", token=bob, check=False)
    assert res.returncode == 1
    # Bad queue specs are 422 with the field.
    status, body = jobs.request("PUT", "/api/v1/queues/team-b", token=jobs.admin_token,
                                body={"weight": 0})
    assert status == 422 and body["error"]["field"] == "weight", body
    status, body = jobs.request("PUT", "/api/v1/queues/team-b", token=jobs.admin_token,
                                body={"name": "other"})
    assert status == 422 and body["error"]["field"] == "name", body

    jobs.cli("queue", "rm", "team-b")
    jobs.cli("queue", "rm", "team-a")
    names = [q["name"] for q in json.loads(jobs.cli("queue", "ls", "-o", "json").stdout)["items"]]
    assert names == ["default"]


def test_scoped_token_of_another_project_cannot_see_the_job(jobs):
    submit(jobs, spec("private", ["true"]))
    jobs.cli("project", "create", "other")
    other = json.loads(jobs.cli("token", "create", "--name", "o", "--project", "other",
                                "-o", "json").stdout)["token"]
    for path in [f"/api/v1/projects/{PROJECT}/jobs/private",
                 f"/api/v1/projects/{PROJECT}/jobs",
                 f"/api/v1/projects/{PROJECT}/jobs/private/logs"]:
        status, body = jobs.request("GET", path, token=other)
        assert status == 404, (path, body)
    status, body = jobs.request("POST", f"/api/v1/projects/{PROJECT}/jobs", token=other,
                                body=spec("sneaky", ["true"]))
    assert status == 404, body
    # A viewer of the project sees the job but cannot submit or cancel.
    viewer = json.loads(jobs.cli("token", "create", "--name", "v", "--project", PROJECT,
                                 "--role", "viewer", "-o", "json").stdout)["token"]
    assert get_job(jobs, "private", token=viewer)[0] == 200
    status, _ = jobs.request("POST", f"/api/v1/projects/{PROJECT}/jobs", token=viewer,
                             body=spec("nope", ["true"]))
    assert status == 403


CHECK_ENV = r"""
import json, os, urllib.error, urllib.request
def get(path):
    req = urllib.request.Request(os.environ["LATHE_SERVER"] + path,
                                 headers={"Authorization": "Bearer " + os.environ["LATHE_TOKEN"]})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, None
status, who = get("/api/v1/whoami")
own = get("/api/v1/projects/" + os.environ["LATHE_PROJECT"] + "/jobs/" + os.environ["LATHE_JOB_ID"])
other = get("/api/v1/projects/other")
print(json.dumps({"job_id": os.environ["LATHE_JOB_ID"], "whoami": who,
                  "own_job": own[0], "own_phase": own[1]["phase"], "other": other[0]}))
"""


def test_jobs_get_a_server_url_and_a_token_scoped_to_their_project(jobs, tmp_path):
    jobs.cli("project", "create", "other")
    (tmp_path / "check_env.py").write_text(CHECK_ENV)
    doc = spec("envcheck", ["/usr/bin/python3", str(tmp_path / "check_env.py")])
    job = submit(jobs, doc)
    wait_phase(jobs, "envcheck", {"succeeded", "failed"})
    log = cli(jobs, "job", "logs", "envcheck").stdout
    seen = json.loads(log.strip().splitlines()[-1])
    assert seen["job_id"] == job["id"]
    assert seen["whoami"]["user"] == "admin"
    project = json.loads(jobs.cli("project", "get", PROJECT, "-o", "json").stdout)
    assert seen["whoami"]["project_scope"] == project["id"]
    assert seen["own_job"] == 200 and seen["own_phase"] in ("launching", "running")
    assert seen["other"] == 404


def test_code_snapshot_becomes_the_working_directory(jobs, tmp_path):
    code = tmp_path / "code"
    (code / "sub").mkdir(parents=True)
    (code / "data.txt").write_text("snapshot data\n")
    (code / "sub" / "more.txt").write_text("more\n")
    path = write_spec(tmp_path, sh("catter", "cat data.txt sub/more.txt"))
    res = cli(jobs, "job", "submit", "-f", path, "--code", str(code), "--wait")
    assert "succeeded" in res.stdout, res
    assert cli(jobs, "job", "logs", "catter").stdout == "snapshot data\nmore\n"
    described = json.loads(cli(jobs, "job", "describe", "catter", "-o", "json").stdout)
    digest = described["code"]
    assert len(digest) == 64
    assert os.path.isdir(os.path.join(jobs.home, "code", digest))
    # The same bytes upload to the same digest; junk is refused.
    archive = subprocess.run(["tar", "-czf", "-", "-C", str(code), "."], capture_output=True,
                             check=True).stdout
    status, body = jobs.request("PUT", f"/api/v1/projects/{PROJECT}/code", token=jobs.admin_token,
                                raw=archive, headers={"Content-Type": "application/gzip"})
    assert status == 200 and len(body["digest"]) == 64
    status, body = jobs.request("PUT", f"/api/v1/projects/{PROJECT}/code", token=jobs.admin_token,
                                raw=b"not a tarball", headers={"Content-Type": "application/gzip"})
    assert status == 400 and body["error"]["field"] == "body", body
    status, body = jobs.request("POST", f"/api/v1/projects/{PROJECT}/jobs?code={'0' * 64}",
                                token=jobs.admin_token, body=spec("nocode", ["true"]))
    assert status == 400 and body["error"]["field"] == "code", body
    res = cli(jobs, "job", "submit", "-f", path, "--code", str(tmp_path / "missing"), check=False)
    assert res.returncode == 1 and "--code" in res.stderr


def test_job_help_lists_every_command_and_hides_the_shim(tmp_path):
    out = subprocess.run([LATHE, "--help"], capture_output=True, text=True, check=True).stdout
    assert "job" in out and "queue" in out and "shim" not in out
    out = subprocess.run([LATHE, "job", "--help"], capture_output=True, text=True,
                         check=True).stdout
    for cmd in ["submit", "ls", "describe", "cancel", "rm", "logs", "wait"]:
        assert cmd in out
    out = subprocess.run([LATHE, "queue", "--help"], capture_output=True, text=True,
                         check=True).stdout
    for cmd in ["ls", "create", "update", "rm"]:
        assert cmd in out
