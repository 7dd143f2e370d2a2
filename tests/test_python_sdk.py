"""The Python SDK (python/lathe) against the real server.

Scripts run with /usr/bin/python3 and PYTHONPATH=python, as a user's would:
params and thousands of metric points through the background thread, what
the native API then shows, search with a filter, attaching to an existing
run through LATHE_RUN_ID, a Lathe job that imports the SDK from the
PYTHONPATH the server gives it, and errors as LatheError. Every script and
wait is bounded.
"""
import json
import os
import subprocess
import textwrap
import time

import pytest

from conftest import ROOT

PROJECT = "ml"
PYTHON = "/usr/bin/python3"
SDK = os.path.join(ROOT, "python")


@pytest.fixture
def tracked(server):
    server.cli("project", "create", PROJECT)
    return server


def script(server, body, env=None, timeout=60):
    """Runs a Python script with the SDK configured for `server`; returns its
    stdout (the script must succeed)."""
    full = dict(os.environ, PYTHONPATH=SDK, LATHE_SERVER=server.url,
                LATHE_TOKEN=server.admin_token, LATHE_PROJECT=PROJECT)
    full.pop("LATHE_RUN_ID", None)
    full.update(env or {})
    res = subprocess.run([PYTHON, "-c", textwrap.dedent(body)], capture_output=True, text=True,
                         env=full, timeout=timeout)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def api(server, method, path, body=None, expect=200):
    status, answer = server.request(method, f"/api/v1/projects/{PROJECT}{path}",
                                    token=server.admin_token, body=body)
    assert status == expect, (status, answer)
    return answer


def test_a_script_logs_params_and_thousands_of_points(tracked):
    started = time.time()
    out = script(tracked, """
        import time, lathe
        with lathe.start_run(experiment="sdk", run_name="train", tags={"team": "ads"}) as run:
            lathe.log_params({"lr": 0.01, "epochs": 3})
            lathe.set_tag("stage", "dev")
            t0 = time.time()
            for i in range(20000):
                lathe.log_metric("loss", 1.0 / (i + 1), step=i)
            queued = time.time() - t0
            lathe.log_metrics({"acc": 0.875, "weird": float("nan")}, step=19999)
            lathe.log_metric("train/grad norm", float("inf"), step=1)
        print(run.run_id, queued)
    """)
    run_id, queued = out.split()
    # 20,000 calls return without waiting for the network.
    assert float(queued) < 5, queued
    assert time.time() - started < 60
    run = api(tracked, "GET", f"/runs/{run_id}")
    assert run["status"] == "FINISHED" and run["end_time"] and run["run_name"] == "train"
    assert run["params"] == {"lr": "0.01", "epochs": "3"}
    assert run["tags"]["team"] == "ads" and run["tags"]["stage"] == "dev"
    assert run["metrics"]["loss"]["step"] == 19999
    assert run["metrics"]["loss"]["value"] == pytest.approx(1 / 20000)
    assert run["metrics"]["acc"]["value"] == 0.875
    assert run["metrics"]["weird"]["value"] == "NaN"
    assert run["metrics"]["train/grad norm"]["value"] == "Infinity"
    experiment = api(tracked, "GET", "/experiments/sdk")
    assert run["experiment_id"] == experiment["id"]
    # Every point arrived exactly once; the server downsamples on request.
    full = api(tracked, "GET", f"/runs/{run_id}/metrics/loss?max_points=0&limit=1000")
    assert full["total_points"] == 20000
    small = api(tracked, "GET", f"/runs/{run_id}/metrics/loss?max_points=100")
    assert small["downsampled"] and 0 < len(small["points"]) <= 100
    # The SDK reads the same data back.
    out = script(tracked, f"""
        import lathe
        pts = lathe.get_metric_history("{run_id}", "loss")
        assert [p["step"] for p in pts] == list(range(20000)), len(pts)
        few = lathe.get_metric_history("{run_id}", "loss", max_points=50)
        assert 0 < len(few) <= 50
        nan = lathe.get_metric_history("{run_id}", "weird")[0]["value"]
        assert nan != nan
        run = lathe.get_run("{run_id}")
        print(run["metrics"]["train/grad norm"]["value"])
    """)
    assert out.strip() == "inf"


def test_search_runs_with_a_filter_and_an_order(tracked):
    out = script(tracked, """
        import json, lathe
        lathe.set_experiment("sweep")
        for lr, acc in [("0.1", 0.7), ("0.01", 0.9), ("0.001", 0.8)]:
            with lathe.start_run(run_name="lr-" + lr):
                lathe.log_param("lr", lr)
                lathe.log_metric("acc", acc)
        with lathe.start_run(experiment="other", run_name="elsewhere"):
            lathe.log_metric("acc", 0.99)
        good = lathe.search_runs(filter="metrics.acc > 0.75", experiments="sweep",
                                 order_by="metrics.acc DESC", output="list")
        one = lathe.search_runs(filter="params.lr = '0.01'", experiments=["sweep"], output="list")
        everywhere = lathe.search_runs(output="list")
        capped = lathe.search_runs(max_results=2, output="list")
        try:
            import pandas
        except ImportError:
            frame = None
        else:  # the default output when pandas is there
            df = lathe.search_runs(experiments="sweep", order_by="metrics.acc DESC")
            assert isinstance(df, pandas.DataFrame)
            frame = [list(df["run_name"]), list(df["params.lr"]), list(df["metrics.acc"])]
        print(json.dumps({"good": [r["run_name"] for r in good],
                          "one": [(r["run_name"], r["metrics"]["acc"]["value"]) for r in one],
                          "everywhere": len(everywhere), "capped": len(capped), "frame": frame}))
    """)
    seen = json.loads(out)
    if seen["frame"] is not None:
        assert seen["frame"] == [["lr-0.01", "lr-0.001", "lr-0.1"], ["0.01", "0.001", "0.1"],
                                 [0.9, 0.8, 0.7]]
    assert seen["good"] == ["lr-0.01", "lr-0.001"]
    assert seen["one"] == [["lr-0.01", 0.9]]
    assert seen["everywhere"] == 4 and seen["capped"] == 2


def test_start_run_attaches_to_the_run_in_lathe_run_id(tracked):
    created = api(tracked, "POST", "/runs", {"experiment": "jobs", "run_name": "job-run"},
                  expect=201)
    out = script(tracked, """
        import lathe
        with lathe.start_run(tags={"attached": "yes"}) as run:
            for i in range(1500):
                lathe.log_metric("x", i, step=i)
        print(run.run_id, run.owned)
    """, env={"LATHE_RUN_ID": created["run_id"]})
    assert out.split() == [created["run_id"], "False"]
    run = api(tracked, "GET", f"/runs/{created['run_id']}")
    assert run["tags"]["attached"] == "yes"
    assert run["metrics"]["x"]["step"] == 1499
    assert run["status"] == "RUNNING"  # a job's run: its status follows the job
    runs = api(tracked, "POST", "/runs:search", {})["runs"]
    assert len(runs) == 1  # nothing else was created


JOB_SCRIPT = """
import os, lathe
run = lathe.start_run(experiment="from-jobs", run_name=os.environ["LATHE_JOB_NAME"])
for i in range(300):
    lathe.log_metric("x", i * 0.5, step=i)
lathe.log_param("job", os.environ["LATHE_JOB_ID"])
lathe.end_run()
print("sdk", lathe.__file__)
print("run", run.run_id)
"""


def test_a_lathe_job_imports_the_sdk_from_its_pythonpath(tracked, tmp_path):
    (tmp_path / "train.py").write_text(JOB_SCRIPT)
    spec = {"name": "sdk-job", "roles": [{"name": "main",
                                          "command": [PYTHON, str(tmp_path / "train.py")],
                                          "resources": {"cpu": 1, "memory": "512Mi"}}]}
    job = api(tracked, "POST", "/jobs", spec, expect=201)
    deadline = time.time() + 60
    while time.time() < deadline:
        job = api(tracked, "GET", "/jobs/sdk-job")
        if job["phase"] in ("succeeded", "failed", "cancelled", "timed_out"):
            break
        time.sleep(0.1)
    stdout = tracked.cli("job", "logs", "sdk-job", env={"LATHE_PROJECT": PROJECT}).stdout
    stderr = tracked.cli("job", "logs", "sdk-job", "--stream", "stderr",
                         env={"LATHE_PROJECT": PROJECT}).stdout
    assert job["phase"] == "succeeded", (job, stdout, stderr)
    lines = dict(line.split(" ", 1) for line in stdout.strip().splitlines())
    assert lines["sdk"] == os.path.join(SDK, "lathe", "__init__.py")
    run = api(tracked, "GET", f"/runs/{lines['run']}")
    assert run["run_name"] == "sdk-job" and run["status"] == "FINISHED"
    assert run["params"]["job"] == job["id"]
    assert api(tracked, "GET", f"/runs/{lines['run']}/metrics/x")["total_points"] == 300


def test_errors_surface_as_lathe_error(tracked):
    out = script(tracked, """
        import json, lathe
        seen = {}
        def catch(name, fn):
            try:
                fn()
                seen[name] = None
            except lathe.LatheError as e:
                seen[name] = [e.code, e.http_status, e.field, bool(e.message)]
        lathe.start_run()
        lathe.log_param("lr", "0.1")
        catch("param_changed", lambda: lathe.log_param("lr", "0.2"))
        catch("bad_key", lambda: lathe.log_metric("no!", 1))
        catch("no_run", lambda: lathe.get_run("0" * 32))
        catch("no_experiment", lambda: lathe.search_runs(experiments="missing", output="list"))
        catch("bad_filter", lambda: lathe.search_runs(filter="metrics.x >>> 1", output="list"))
        lathe.end_run()
        lathe.configure(token="lathe_wrong")
        catch("bad_token", lambda: lathe.start_run())
        print(json.dumps(seen))
    """)
    seen = json.loads(out)
    assert seen["param_changed"][:2] == ["INVALID_ARGUMENT", 400], seen
    assert seen["bad_key"] == ["INVALID_ARGUMENT", None, "key", True]
    assert seen["no_run"][:2] == ["NOT_FOUND", 404]
    assert seen["no_experiment"][:2] == ["NOT_FOUND", 404], seen
    assert seen["bad_filter"][:2] == ["INVALID_ARGUMENT", 400], seen
    assert seen["bad_token"][:2] == ["UNAUTHENTICATED", 401]


def test_a_script_that_raises_leaves_its_run_failed(tracked):
    res = subprocess.run([PYTHON, "-c", textwrap.dedent("""
        import lathe
        print(lathe.start_run(run_name="boom").run_id, flush=True)
        lathe.log_metric("x", 1.0)
        raise SystemError("diverged")
    """)], capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PYTHONPATH=SDK, LATHE_SERVER=tracked.url,
                 LATHE_TOKEN=tracked.admin_token, LATHE_PROJECT=PROJECT))
    assert res.returncode == 1 and "diverged" in res.stderr
    run = api(tracked, "GET", f"/runs/{res.stdout.strip()}")
    assert run["status"] == "FAILED" and run["metrics"]["x"]["value"] == 1.0
