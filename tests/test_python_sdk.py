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

from conftest import ROOT, Server

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


def test_artifacts_round_trip_files_and_directories(tracked, tmp_path):
    src = tmp_path / "model"
    (src / "data" / "deep").mkdir(parents=True)
    (src / "MLmodel").write_text("flavors:\n  python_function: {}\n")
    (src / "data" / "weights.bin").write_bytes(os.urandom(3 << 20))  # several 64 KiB blocks
    (src / "data" / "deep" / "name with spaces %.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("hello")
    out = script(tracked, f"""
        import json, os, lathe
        with lathe.start_run(experiment="art", run_name="with-files") as run:
            one = lathe.log_artifact({str(tmp_path / "notes.txt")!r})
            many = lathe.log_artifacts({str(src)!r}, artifact_path="model")
            lathe.log_artifact({str(tmp_path / "notes.txt")!r}, artifact_path="docs/v1")
        print(json.dumps({{"run_id": run.run_id, "one": one, "many": many,
                          "root": lathe.list_artifacts(run.run_id),
                          "data": lathe.list_artifacts(run.run_id, "model/data")}}))
        os.makedirs({str(tmp_path / "back")!r})  # an existing directory: cp -r puts them inside
        lathe.download_artifact(run.run_id, "model", {str(tmp_path / "back")!r})
        lathe.download_artifact(run.run_id, "notes.txt", {str(tmp_path / "back")!r})
    """)
    seen = json.loads(out)
    assert seen["one"]["path"] == "notes.txt" and seen["one"]["file_size"] == 5
    assert sorted(a["path"] for a in seen["many"]) == [
        "model/MLmodel", "model/data/deep/name with spaces %.json", "model/data/weights.bin"]
    assert [(f["path"], f["is_dir"]) for f in seen["root"]] == [
        ("docs", True), ("model", True), ("notes.txt", False)]
    data = {f["path"]: f for f in seen["data"]}
    assert data["model/data/weights.bin"]["file_size"] == 3 << 20
    assert data["model/data/deep"]["is_dir"]
    # Byte for byte, nothing left behind.
    for rel in ("MLmodel", "data/weights.bin", "data/deep/name with spaces %.json"):
        assert (tmp_path / "back" / "model" / rel).read_bytes() == (src / rel).read_bytes(), rel
    assert (tmp_path / "back" / "notes.txt").read_text() == "hello"
    assert sorted(os.listdir(tmp_path / "back")) == ["model", "notes.txt"]
    # The native listing agrees.
    listing = api(tracked, "GET", f"/runs/{seen['run_id']}/artifacts?path=model")
    run = api(tracked, "GET", f"/runs/{seen['run_id']}")
    assert listing["root_uri"] == run["artifact_uri"]
    assert [f["path"] for f in listing["files"]] == ["model/MLmodel", "model/data"]


def test_artifact_errors_surface_as_lathe_error(tracked, tmp_path):
    (tmp_path / "f.txt").write_text("x")
    out = script(tracked, f"""
        import json, lathe
        seen = {{}}
        def catch(name, fn):
            try:
                fn()
                seen[name] = None
            except lathe.LatheError as e:
                seen[name] = [e.code, e.http_status, e.field]
        run = lathe.start_run()
        catch("dotdot", lambda: lathe.log_artifact({str(tmp_path / "f.txt")!r}, "a/../b"))
        catch("no_run", lambda: lathe.list_artifacts("0" * 32))
        catch("missing", lambda: lathe.download_artifact(run.run_id, "nope.txt",
                                                         {str(tmp_path / "x")!r}))
        lathe.end_run()
        print(json.dumps(seen))
    """)
    seen = json.loads(out)
    assert seen["dotdot"] == ["INVALID_ARGUMENT", None, "artifact_path"], seen
    assert seen["no_run"][:2] == ["NOT_FOUND", 404], seen
    assert seen["missing"][:2] == ["NOT_FOUND", 404], seen


def test_register_model_from_a_runs_uri_with_aliases(tracked, tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "MLmodel").write_text("flavors: {}\n")
    out = script(tracked, f"""
        import json, lathe
        with lathe.start_run(experiment="reg", run_name="trainer") as run:
            lathe.log_artifacts({str(tmp_path / "model")!r}, artifact_path="model")
        v1 = lathe.register_model("runs:/" + run.run_id + "/model", "churn",
                                  tags={{"framework": "sklearn"}}, description="first")
        v2 = lathe.register_model("runs:/" + run.run_id + "/model", "churn")
        v3 = lathe.register_model("s3://bucket/churn/3", "churn")
        lathe.set_model_alias("churn", "champion", v1["version"])
        moved = lathe.set_model_alias("churn", "champion", v2["version"])
        by_alias = lathe.get_model_version_by_alias("churn", "champion")
        full = lathe.get_model_version("churn", 2)
        model = lathe.get_registered_model("churn")
        lathe.delete_model_alias("churn", "champion")
        try:
            lathe.get_model_version_by_alias("churn", "champion")
            gone = None
        except lathe.LatheError as e:
            gone = e.code
        print(json.dumps({{"run": lathe.get_run(run.run_id), "v1": v1, "v2": v2, "v3": v3,
                          "moved": moved, "by_alias": by_alias, "full": full, "model": model,
                          "gone": gone}}))
    """)
    seen = json.loads(out)
    run = seen["run"]
    v1, v2, v3 = seen["v1"], seen["v2"], seen["v3"]
    assert [v1["version"], v2["version"], v3["version"]] == [1, 2, 3]
    assert v1["source"] == run["artifact_uri"] + "/model"
    assert v1["source"].startswith("mlflow-artifacts:/")
    assert v1["run_id"] == run["run_id"] and v3["run_id"] is None
    assert v3["source"] == "s3://bucket/churn/3"
    assert v1["tags"] == {"framework": "sklearn"} and v1["description"] == "first"
    assert v1["status"] == "READY"
    assert seen["moved"]["version"] == 2 and "champion" in seen["moved"]["aliases"]
    assert seen["by_alias"]["version"] == 2
    lineage = seen["full"]["lineage"]
    assert lineage["run_id"] == run["run_id"] and lineage["run_name"] == "trainer"
    assert lineage["experiment_name"] == "reg"
    assert seen["model"]["aliases"] == {"champion": 2}
    assert seen["gone"] == "NOT_FOUND"
    # The native API shows the same versions, newest first.
    versions = api(tracked, "GET", "/models/churn/versions")["items"]
    assert [v["version"] for v in versions] == [3, 2, 1]


TRACKED_JOB_SCRIPT = """
import os, lathe
os.makedirs("out/model", exist_ok=True)
with open("out/model/weights.bin", "wb") as f:
    f.write(b"w" * 100000)
run = lathe.start_run()
lathe.log_metric("loss", 0.1)
lathe.log_artifacts("out/model", artifact_path="model")
version = lathe.register_model("runs:/" + run.run_id + "/model", "job-model")
lathe.set_model_alias("job-model", "latest-job", version["version"])
lathe.end_run()
print("run", run.run_id)
print("version", version["version"])
"""


def test_a_tracked_job_logs_artifacts_and_registers_a_model(tracked, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "train.py").write_text(TRACKED_JOB_SCRIPT)
    spec = {"name": "reg-job", "tracking": {"experiment": "jobs"},
            "roles": [{"name": "main", "command": [PYTHON, str(work / "train.py")],
                       "working_dir": str(work),
                       "resources": {"cpu": 1, "memory": "512Mi"}}]}
    job = api(tracked, "POST", "/jobs", spec, expect=201)
    deadline = time.time() + 60
    while time.time() < deadline:
        job = api(tracked, "GET", "/jobs/reg-job")
        if job["phase"] in ("succeeded", "failed", "cancelled", "timed_out"):
            break
        time.sleep(0.1)
    stdout = tracked.cli("job", "logs", "reg-job", env={"LATHE_PROJECT": PROJECT}).stdout
    stderr = tracked.cli("job", "logs", "reg-job", "--stream", "stderr",
                         env={"LATHE_PROJECT": PROJECT}).stdout
    assert job["phase"] == "succeeded", (job, stdout, stderr)
    lines = dict(line.split(" ", 1) for line in stdout.strip().splitlines())
    assert lines["run"] == job["run_id"]  # the SDK attached to the job's run
    files = api(tracked, "GET", f"/runs/{job['run_id']}/artifacts?path=model")["files"]
    assert files == [{"path": "model/weights.bin", "is_dir": False, "file_size": 100000}]
    version = api(tracked, "GET", f"/models/job-model/versions/{lines['version']}")
    assert version["run_id"] == job["run_id"] and version["aliases"] == ["latest-job"]
    lineage = version["lineage"]
    assert lineage["job_id"] == job["id"] and lineage["job_name"] == "reg-job"
    assert lineage["experiment_name"] == "jobs"


def test_an_upload_over_the_limit_fails_at_once_with_the_servers_answer(tmp_path):
    """The server answers 413 before the body is in; the SDK reads that answer
    instead of reporting a broken pipe, and does not retry it."""
    server = Server(tmp_path / "home",
                    extra_args=["--set", "artifacts.max_file_bytes=100000"]).start()
    try:
        server.cli("project", "create", PROJECT)
        with open(tmp_path / "big.bin", "wb") as f:
            f.truncate(20 << 20)
        started = time.time()
        out = script(server, f"""
            import json, lathe
            with lathe.start_run() as run:
                try:
                    lathe.log_artifact({str(tmp_path / "big.bin")!r})
                    seen = None
                except lathe.LatheError as e:
                    seen = [e.code, e.http_status, e.field]
            print(json.dumps({{"seen": seen, "files": lathe.list_artifacts(run.run_id)}}))
        """, env={"LATHE_RETRY_TIMEOUT": "30"})
        seen = json.loads(out)
        assert seen["seen"] == ["RESOURCE_EXHAUSTED", 413, "body"], seen
        assert seen["files"] == []
        assert time.time() - started < 20
    finally:
        server.stop()
