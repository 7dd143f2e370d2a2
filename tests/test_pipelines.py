"""Pipelines through the REST API and the `lathe` CLI, on the real binary.

Versions; a 3-step pipeline passing outputs through a fan-out step, run with
`lathe pipeline run -f … --wait`; cache hits on the next run; a failing step
failing the run and `lathe pipeline-run retry` resuming from it without
rerunning what succeeded; cancel with the exit handler; the DAG route; 422s
naming the location for cycles, unknown steps, param types, bad expressions;
and `kill -9` of the server mid-run. Steps are small shell jobs that append
to files under tmp_path, so the tests count what ran. Every wait is bounded.
"""
import json
import os
import signal
import time

import pytest

from conftest import Server

PROJECT = "ml"
SMALL = {"cpu": "100m", "memory": "64Mi"}
TERMINAL = {"succeeded", "failed", "cancelled"}


@pytest.fixture
def pl(server):
    server.cli("project", "create", PROJECT)
    return server


def cli(server, *args, **kw):
    env = dict(kw.pop("env", {}) or {})
    env.setdefault("LATHE_PROJECT", PROJECT)
    return server.cli(*args, env=env, **kw)


def step(name, script, **extra):
    doc = {"name": name, "command": ["sh", "-c", script], "resources": SMALL}
    doc.update(extra)
    return doc


def write(tmp_path, doc, name=None):
    path = tmp_path / f"{name or doc['name']}.yaml"
    path.write_text(json.dumps(doc))  # JSON is YAML too
    return str(path)


def api(server, method, path, body=None, token=None):
    return server.request(method, f"/api/v1/projects/{PROJECT}{path}",
                          token=token or server.admin_token, body=body)


def get_run(server, run_id):
    status, run = api(server, "GET", f"/pipeline-runs/{run_id}")
    assert status == 200, run
    return run


def wait_run(server, run_id, states=TERMINAL, timeout=60, pred=None):
    deadline = time.time() + timeout
    run = None
    while time.time() < deadline:
        run = get_run(server, run_id)
        if run["state"] in states and (pred is None or pred(run)):
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not reach {states}: {json.dumps(run, indent=1)}")


def node(run, name):
    found = [n for n in run["nodes"] if n["node"] == name]
    assert found, (name, [n["node"] for n in run["nodes"]])
    return found[0]


def lines(path):
    return path.read_text().split() if path.exists() else []


def fan_out_pipeline(log):
    """prep -> square (one job per item) -> total; each step appends its node to `log`."""
    return {
        "name": "squares",
        "description": "sum of squares",
        "params": [{"name": "items", "type": "list", "default": [1, 2, 3]},
                   {"name": "greeting", "type": "string", "default": "hello"}],
        "steps": [
            step("prep",
                 f"echo prep >> {log}; printf '%s' '{{{{params.items}}}}' > "
                 "{{outputs.parameters.items}}; "
                 "mkdir -p {{outputs.artifacts.data}}; "
                 "echo {{params.greeting}} > {{outputs.artifacts.data}}/greeting.txt",
                 outputs={"parameters": ["items"], "artifacts": ["data"]}),
            step("square",
                 f"echo 'square[{{{{item}}}}]' >> {log}; "
                 "echo $(( {{item}} * {{item}} )) > {{outputs.parameters.sq}}",
                 for_each="{{steps.prep.outputs.parameters.items}}", parallelism=2,
                 outputs={"parameters": ["sq"]}),
            step("total",
                 f"echo total >> {log}; "
                 "echo '{{steps.square.outputs.parameters.sq}}' | tr -d '[] ' | tr ',' '\\n' "
                 "| awk '{s+=$1} END {print s}' > {{outputs.parameters.sum}}; "
                 "cp {{steps.prep.outputs.artifacts.data}}/greeting.txt "
                 "{{outputs.parameters.greeting}}",
                 outputs={"parameters": ["sum", "greeting"]}),
        ],
    }


def test_create_adds_a_version_only_when_the_spec_changes(pl, tmp_path):
    doc = fan_out_pipeline(tmp_path / "log")
    path = write(tmp_path, doc)
    assert 'pipeline "squares" version 1 (new)' in cli(pl, "pipeline", "create", "-f", path).stdout
    assert 'version 1 (unchanged)' in cli(pl, "pipeline", "create", "-f", path).stdout
    doc["description"] = "sum of squares, v2"
    path = write(tmp_path, doc)
    assert 'version 2 (new)' in cli(pl, "pipeline", "create", "-f", path).stdout
    # REST: 200 for an unchanged spec, 201 for a new version; {spec, code} or the bare spec.
    status, body = api(pl, "POST", "/pipelines", {"spec": doc})
    assert status == 200 and body["version"] == 2 and body["created"] is False, body
    doc["description"] = "v3"
    status, body = api(pl, "POST", "/pipelines", doc)
    assert status == 201 and body["version"] == 3 and body["created"] is True, body
    assert body["spec"]["name"] == "squares" and body["code"] is None

    table = cli(pl, "pipeline", "ls").stdout.splitlines()
    assert table[0].split()[:2] == ["NAME", "LATEST"] and table[1].split()[:2] == ["squares", "3"]
    versions = json.loads(cli(pl, "pipeline", "versions", "squares", "-o", "json").stdout)
    assert sorted(v["version"] for v in versions["items"]) == [1, 2, 3]
    status, v1 = api(pl, "GET", "/pipelines/squares/versions/1")
    assert status == 200 and v1["spec"]["description"] == "sum of squares", v1
    shown = cli(pl, "pipeline", "show", "squares").stdout
    assert "LATEST VERSION:" in shown and "Steps:" in shown
    for name in ("prep", "square", "total", "items", "greeting"):
        assert name in shown, shown
    status, body = api(pl, "GET", "/pipelines/squares/versions/9")
    assert status == 404, body
    status, body = api(pl, "GET", "/pipelines/nosuch")
    assert status == 404, body


def test_outputs_flow_through_a_fan_out_and_the_next_run_hits_the_cache(pl, tmp_path):
    log = tmp_path / "log"
    path = write(tmp_path, fan_out_pipeline(log))
    res = cli(pl, "pipeline", "run", "-f", path, "--wait")
    out = res.stdout
    assert 'pipeline "squares" version 1 (new)' in out
    for change in ("prep: succeeded", "square[0]: succeeded", "square[2]: succeeded",
                   "total: succeeded"):
        assert change in out, out
    assert out.rstrip().endswith("succeeded") or "succeeded (" in out.splitlines()[-1], out
    run_id = out.split("pipeline run ")[1].split()[0]
    run = get_run(pl, run_id)
    assert run["state"] == "succeeded" and run["pipeline"] == "squares" and run["version"] == 1
    assert run["params"] == {"items": [1, 2, 3], "greeting": "hello"}
    assert node(run, "total")["outputs"]["parameters"] == {"sum": "14", "greeting": "hello"}
    assert sorted(node(run, f"square[{i}]")["outputs"]["parameters"]["sq"] for i in range(3)) \
        == ["1", "4", "9"]
    data = node(run, "prep")["outputs"]["artifacts"]["data"]
    assert os.path.isfile(os.path.join(data["path"], "greeting.txt")) and len(data["digest"]) == 64
    assert sorted(lines(log)) == ["prep", "square[1]", "square[2]", "square[3]", "total"]

    # The DAG for the UI: steps with aggregate states, edges between steps, nodes.
    status, graph = api(pl, "GET", f"/pipeline-runs/{run_id}/graph")
    assert status == 200, graph
    assert [(s["name"], s["state"], s["items"], s["exit_handler"]) for s in graph["steps"]] == \
        [("prep", "succeeded", 0, False), ("square", "succeeded", 3, False),
         ("total", "succeeded", 0, False)]
    edges = {(e["from"], e["to"]) for e in graph["edges"]}
    assert {("prep", "square"), ("square", "total"), ("prep", "total")} == edges, edges
    assert len(graph["nodes"]) == 5
    status, events = api(pl, "GET", f"/pipeline-runs/{run_id}/events")
    assert status == 200 and events["events"], events
    assert set(events["events"][0]) == {"seq", "time", "type", "reason", "message"}

    # The same run again: every step is a cache hit, no job runs, describe says so.
    res = cli(pl, "pipeline", "run", "squares", "--wait")
    second = res.stdout.split("pipeline run ")[1].split()[0]
    assert second != run_id
    assert sorted(lines(log)) == ["prep", "square[1]", "square[2]", "square[3]", "total"]
    described = json.loads(cli(pl, "pipeline-run", "describe", second, "-o", "json").stdout)
    assert described["state"] == "succeeded"
    assert all(n["cached"] and n["job_id"] is None for n in described["nodes"]), described
    assert node(described, "total")["cache_source"] == f"{run_id}/total"
    assert node(described, "total")["outputs"]["parameters"]["sum"] == "14"
    table = cli(pl, "pipeline-run", "describe", second).stdout
    header = next(l for l in table.splitlines() if l.startswith("NODE"))
    assert header.split() == ["NODE", "STATE", "ATTEMPT", "CACHED", "JOB", "DURATION", "REASON"]
    total_row = next(l for l in table.splitlines() if l.startswith("total "))
    assert total_row.split()[:2] == ["total", "succeeded"] and " yes " in total_row, table
    assert "Outputs:" in table and "Events:" in table

    # A changed param changes the key of the steps that use it, and only theirs.
    res = cli(pl, "pipeline", "run", "squares", "--param", "greeting=bonjour", "--wait")
    third = get_run(pl, res.stdout.split("pipeline run ")[1].split()[0])
    assert node(third, "prep")["cached"] is False and node(third, "square[0]")["cached"] is True
    assert node(third, "total")["outputs"]["parameters"]["greeting"] == "bonjour"
    # --no-cache runs everything.
    res = cli(pl, "pipeline", "run", "squares", "--no-cache", "--wait")
    fourth = get_run(pl, res.stdout.split("pipeline run ")[1].split()[0])
    assert fourth["cache"] is False and not any(n["cached"] for n in fourth["nodes"])

    runs = json.loads(cli(pl, "pipeline-run", "ls", "--pipeline", "squares", "-o", "json").stdout)
    assert len(runs["items"]) == 4 and all(r["state"] == "succeeded" for r in runs["items"])
    listing = cli(pl, "pipeline-run", "ls", "--limit", "1").stdout.splitlines()
    assert len(listing) == 2 and listing[0].split()[:3] == ["ID", "PIPELINE", "VERSION"]


def retry_pipeline(log, flag):
    return {
        "name": "resumable",
        "steps": [
            step("first", f"echo first >> {log}"),
            step("flaky", f"if [ -e {flag} ]; then echo flaky-failed >> {log}; exit 3; fi; "
                          f"echo flaky >> {log}", depends="first"),
            step("last", f"echo last >> {log}", depends="flaky"),
        ],
        "on_exit": step("cleanup", f"echo cleanup >> {log}"),
    }


def test_failed_step_fails_the_run_and_retry_resumes_from_it(pl, tmp_path):
    log, flag = tmp_path / "log", tmp_path / "fail"
    flag.write_text("")
    path = write(tmp_path, retry_pipeline(log, flag))
    # --no-cache: what does not rerun below is kept by retry, not by the cache.
    res = cli(pl, "pipeline", "run", "-f", path, "--no-cache", "--wait", check=False)
    assert res.returncode == 1, res
    assert "flaky: failed" in res.stdout and "ended failed" in res.stderr, res
    run_id = res.stdout.split("pipeline run ")[1].split()[0]
    run = get_run(pl, run_id)
    assert run["state"] == "failed"
    assert node(run, "first")["state"] == "succeeded"
    assert node(run, "flaky")["state"] == "failed"
    assert node(run, "last")["state"] == "omitted"
    assert lines(log) == ["first", "flaky-failed", "cleanup"]

    flag.unlink()
    res = cli(pl, "pipeline-run", "retry", run_id, "--wait")
    assert "resumed from its failed steps (retry 1)" in res.stdout, res.stdout
    run = get_run(pl, run_id)
    assert run["state"] == "succeeded" and run["retries"] == 1
    assert node(run, "first")["attempt"] == 1 and node(run, "flaky")["state"] == "succeeded"
    # `first` ran once in all; the exit handler once per attempt of the run.
    assert lines(log) == ["first", "flaky-failed", "cleanup", "flaky", "last", "cleanup"]
    # A succeeded run cannot be retried; a missing one is 404.
    status, body = api(pl, "POST", f"/pipeline-runs/{run_id}/retry")
    assert status == 409, body
    status, body = api(pl, "POST", "/pipeline-runs/nosuch/retry")
    assert status == 404, body
    # Deleting: the run, then (no active run left) the pipeline.
    cli(pl, "pipeline-run", "rm", run_id)
    assert api(pl, "GET", f"/pipeline-runs/{run_id}")[0] == 404
    assert 'pipeline "resumable" deleted' in cli(pl, "pipeline", "rm", "resumable").stdout
    assert api(pl, "GET", "/pipelines/resumable")[0] == 404


def test_optional_step_failure_does_not_fail_the_run(pl, tmp_path):
    doc = {"name": "tolerant",
           "steps": [step("may-fail", "exit 1", optional=True),
                     step("after", "true", depends="may-fail.failed || may-fail.succeeded")]}
    res = cli(pl, "pipeline", "run", "-f", write(tmp_path, doc), "--wait")
    run = get_run(pl, res.stdout.split("pipeline run ")[1].split()[0])
    assert run["state"] == "succeeded"
    assert node(run, "may-fail")["state"] == "failed" and node(run, "after")["state"] == "succeeded"


def test_cancel_stops_the_running_step_and_runs_the_exit_handler(pl, tmp_path):
    log = tmp_path / "log"
    doc = {"name": "slow",
           "steps": [step("sleep", f"echo started >> {log}; sleep 60"),
                     step("never", f"echo never >> {log}", depends="sleep")],
           "on_exit": step("bye", f"echo bye >> {log}")}
    res = cli(pl, "pipeline", "run", "-f", write(tmp_path, doc))
    run_id = res.stdout.split("pipeline run ")[1].split()[0]
    wait_run(pl, run_id, {"running"}, timeout=30,
             pred=lambda r: any(n["node"] == "sleep" and n["state"] == "running"
                                for n in r["nodes"]))
    assert "cancelling" in cli(pl, "pipeline-run", "cancel", run_id).stdout
    run = wait_run(pl, run_id, timeout=40)
    assert run["state"] == "cancelled" and run["cancel_requested"] is True, run
    assert node(run, "sleep")["state"] in ("cancelled", "errored")
    assert node(run, "bye")["state"] == "succeeded"
    assert "never" not in lines(log) and lines(log)[-1] == "bye"
    status, job = pl.request("GET", f"/api/v1/projects/{PROJECT}/jobs/{node(run, 'sleep')['job_id']}",
                             token=pl.admin_token)
    assert status == 200 and job["phase"] == "cancelled", job
    status, body = api(pl, "POST", f"/pipeline-runs/{run_id}/cancel")
    assert status == 409, body
    res = cli(pl, "pipeline-run", "ls", "--state", "cancelled")
    assert run_id in res.stdout


def test_bad_specs_answer_422_naming_the_location(pl):
    def post(doc):
        status, body = api(pl, "POST", "/pipelines", {"spec": doc})
        assert status == 422, (doc, status, body)
        return body["error"]

    cycle = post({"name": "cyc", "steps": [step("a", "true", depends="b"),
                                          step("b", "true", depends="a")]})
    assert cycle["field"].startswith("steps[") and "cycle" in cycle["message"], cycle
    unknown = post({"name": "unk", "steps": [step("a", "true"), step("b", "true", depends="trian")]})
    assert unknown["field"] == "steps[1].depends" and "trian" in unknown["message"], unknown
    expr = post({"name": "expr", "steps": [step("a", "true"), step("b", "true", when="a &&")]})
    assert expr["field"] == "steps[1].when" and "offset" in expr["message"], expr
    bad_default = post({"name": "types", "params": [{"name": "n", "type": "int", "default": "x"}],
                        "steps": [step("a", "echo {{params.n}}")]})
    assert bad_default["field"].startswith("params[0]"), bad_default
    unknown_ref = post({"name": "refs", "steps": [step("a", "echo {{params.nosuch}}")]})
    assert unknown_ref["field"].startswith("steps[0]") and "nosuch" in unknown_ref["message"]
    assert api(pl, "GET", "/pipelines/cyc")[0] == 404  # nothing was written

    # A param of the wrong type when a run starts: 422 naming params.NAME.
    status, body = api(pl, "POST", "/pipelines",
                       {"spec": {"name": "typed",
                                 "params": [{"name": "n", "type": "int", "default": 1}],
                                 "steps": [step("a", "echo {{params.n}}")]}})
    assert status == 201, body
    status, body = api(pl, "POST", "/pipelines/typed/runs", {"params": {"n": "three"}})
    assert status == 422 and body["error"]["field"] == "params.n", body
    status, body = api(pl, "POST", "/pipelines/typed/runs", {"params": {"m": 1}})
    assert status == 422 and body["error"]["field"] == "params.m", body
    res = cli(pl, "pipeline", "run", "typed", "--param", "n=three", check=False)
    assert res.returncode == 1 and "params.n" in res.stderr, res
    # --sample needs a declared `sample` param.
    res = cli(pl, "pipeline", "run", "typed", "--sample", "10", check=False)
    assert res.returncode == 1 and "sample" in res.stderr, res
    # Malformed envelopes are plain 400s.
    status, body = api(pl, "POST", "/pipelines/typed/runs", {"version": "one"})
    assert status == 400 and body["error"]["field"] == "version", body
    status, body = api(pl, "POST", "/pipelines/typed/runs", {"cache": True, "nope": 1})
    assert status == 400 and body["error"]["field"] == "nope", body
    status, body = api(pl, "POST", "/pipelines/nosuch/runs", {})
    assert status == 404, body


def test_sample_sets_the_documented_param(pl, tmp_path):
    out = tmp_path / "sample"
    doc = {"name": "quick", "params": [{"name": "sample", "type": "int", "default": 0}],
           "steps": [step("a", f"echo {{{{params.sample}}}} > {out}")]}
    cli(pl, "pipeline", "run", "-f", write(tmp_path, doc), "--sample", "25", "--wait")
    assert out.read_text().strip() == "25"


def test_viewers_read_and_editors_run(pl, tmp_path):
    pl.cli("user", "create", "vera")
    pl.cli("project", "member", "set", PROJECT, "vera", "viewer")
    token = json.loads(pl.cli("token", "create", "--name", "t", "--user", "vera", "-o",
                              "json").stdout)["token"]
    status, body = api(pl, "POST", "/pipelines", {"spec": {"name": "p", "steps": [step("a", "true")]}},
                       token=token)
    assert status == 403, body
    status, body = api(pl, "POST", "/pipelines", {"spec": {"name": "p", "steps": [step("a", "true")]}})
    assert status == 201, body
    status, body = api(pl, "GET", "/pipelines", token=token)
    assert status == 200 and [p["name"] for p in body["items"]] == ["p"], body
    status, body = api(pl, "POST", "/pipelines/p/runs", {}, token=token)
    assert status == 403, body
    status, body = pl.request("GET", "/api/v1/projects/other/pipelines", token=token)
    assert status == 404, body


def test_kill_9_mid_run_then_restart_completes_without_rerunning_steps(tmp_path, store_url):
    home = tmp_path / "home"
    log = tmp_path / "done"
    server = Server(home, store=store_url).start()
    token = server.admin_token
    server.cli("project", "create", PROJECT)
    doc = {"name": "durable",
           "steps": [step("one", f"sleep 0.5; echo one >> {log}"),
                     step("two", f"sleep 3; echo two >> {log}", depends="one"),
                     step("fan", f"sleep 1; echo 'fan{{{{item}}}}' >> {log}",
                          for_each=[1, 2, 3], depends="two"),
                     step("three", f"echo three >> {log}", depends="fan")]}
    status, body = server.request("POST", f"/api/v1/projects/{PROJECT}/pipelines", token=token,
                                  body={"spec": doc})
    assert status == 201, body
    status, run = server.request("POST", f"/api/v1/projects/{PROJECT}/pipelines/durable/runs",
                                 token=token, body={"cache": False})
    assert status == 201, run
    run_id = run["id"]
    wait_run(server, run_id, {"running"}, timeout=30,
             pred=lambda r: any(n["node"] == "two" and n["state"] == "running" for n in r["nodes"]))
    server.stop(sig=signal.SIGKILL)
    assert server.proc.returncode == -signal.SIGKILL

    restarted = Server(home, store=store_url).start()
    try:
        run = wait_run(restarted, run_id, timeout=90)
        assert run["state"] == "succeeded", json.dumps(run, indent=1)
        assert all(n["attempt"] == 1 for n in run["nodes"]), run["nodes"]
    finally:
        restarted.stop()
    done = lines(log)
    assert sorted(done) == ["fan1", "fan2", "fan3", "one", "three", "two"], done
