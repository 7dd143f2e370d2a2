"""`lathe experiment`, `lathe run` and `lathe metrics` against the real server.

Runs are made through the native API (docs/tracking.md), then read back with
the CLI as tables, JSON and YAML.
"""
import json
import subprocess

import pytest

from conftest import LATHE

PROJECT = "ml"


@pytest.fixture
def tracked(server):
    server.cli("project", "create", PROJECT)
    return server


def cli(server, *args, **kw):
    env = dict(kw.pop("env", {}) or {})
    env.setdefault("LATHE_PROJECT", PROJECT)
    return server.cli(*args, env=env, **kw)


def api(server, method, path, body=None, expect=200):
    status, answer = server.request(method, f"/api/v1/projects/{PROJECT}{path}",
                                    token=server.admin_token, body=body)
    assert status == expect, (status, answer)
    return answer


def make_run(server, name, experiment, params, metrics, status="FINISHED"):
    """A run with params and, per metric, a list of values at steps 0, 1, …"""
    run = api(server, "POST", "/runs", {"experiment": experiment, "run_name": name,
                                        "tags": {"owner": "cli-test"}}, expect=201)
    points = [{"key": k, "value": v, "step": i, "timestamp": 1700000000000 + i}
              for k, values in metrics.items() for i, v in enumerate(values)]
    for i in range(0, len(points), 1000):
        api(server, "POST", f"/runs/{run['run_id']}/log", {"metrics": points[i:i + 1000]})
    api(server, "POST", f"/runs/{run['run_id']}/log", {"params": params})
    api(server, "PATCH", f"/runs/{run['run_id']}", {"status": status})
    return run["run_id"]


def test_experiment_create_ls_show(tracked):
    res = cli(tracked, "experiment", "create", "vision", "--tag", "team=cv", "--tag", "tier=1")
    assert 'experiment "vision" created' in res.stdout
    lines = cli(tracked, "experiment", "ls").stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["ID", "NAME", "LIFECYCLE"]
    assert any(line.split()[1:3] == ["vision", "active"] for line in lines[1:]), lines
    items = json.loads(cli(tracked, "experiment", "ls", "-o", "json").stdout)["items"]
    vision = [e for e in items if e["name"] == "vision"][0]
    assert vision["tags"] == {"team": "cv", "tier": "1"}
    table = cli(tracked, "experiment", "show", "vision").stdout
    assert "NAME:" in table and "vision" in table and "Tags:" in table and "team" in table
    shown = json.loads(cli(tracked, "experiment", "show", vision["id"], "-o", "json").stdout)
    assert shown["name"] == "vision"
    assert "name: vision" in cli(tracked, "experiment", "show", "vision", "-o", "yaml").stdout
    res = cli(tracked, "experiment", "create", "vision", check=False)
    assert res.returncode == 1 and res.stderr.startswith("error:")
    res = cli(tracked, "experiment", "create", "x", "--tag", "novalue", check=False)
    assert res.returncode == 1 and "--tag" in res.stderr


def test_run_ls_filters_orders_and_pages(tracked):
    make_run(tracked, "a", "sweep", {"lr": "0.1"}, {"acc": [0.5, 0.7]})
    make_run(tracked, "b", "sweep", {"lr": "0.01"}, {"acc": [0.6, 0.9]})
    make_run(tracked, "c", "sweep", {"lr": "0.001"}, {"acc": [0.8]})
    make_run(tracked, "d", "other", {"lr": "0.1"}, {"acc": [0.99]})
    out = cli(tracked, "run", "ls", "--experiment", "sweep", "--filter", "metrics.acc > 0.75",
              "--order-by", "metrics.acc DESC").stdout
    lines = out.strip().splitlines()
    assert lines[0].split()[:2] == ["RUN", "ID"] and "metrics.acc" in lines[0]
    assert [line.split()[1] for line in lines[1:]] == ["b", "c"], out
    assert "0.9" in lines[1]
    runs = json.loads(cli(tracked, "run", "ls", "--filter", "params.lr = '0.1'", "-o", "json")
                      .stdout)["items"]
    assert sorted(r["run_name"] for r in runs) == ["a", "d"]
    assert len(json.loads(cli(tracked, "run", "ls", "-o", "json").stdout)["items"]) == 4
    # One page, then the rest from the token printed on stderr.
    first = cli(tracked, "run", "ls", "--limit", "3", "-o", "json")
    assert len(json.loads(first.stdout)["items"]) == 3
    token = first.stderr.strip().split()[-1]
    rest = cli(tracked, "run", "ls", "--limit", "3", "--page-token", token, "-o", "json")
    assert len(json.loads(rest.stdout)["items"]) == 1
    res = cli(tracked, "run", "ls", "--filter", "metrics.acc >>> 1", check=False)
    assert res.returncode == 1 and res.stderr.startswith("error:")


def test_run_show_by_id_and_by_name(tracked):
    run_id = make_run(tracked, "shown", "e1", {"lr": "0.1", "layers": "4"},
                      {"loss": [3.0, 2.0, 1.5], "acc": [0.25, 0.5]})
    for ref in (run_id, "shown"):
        out = cli(tracked, "run", "show", ref).stdout
        assert "RUN ID:" in out and run_id in out and "FINISHED" in out
        params = out.split("Params:")[1].split("Tags:")[0]
        assert "layers" in params and "lr" in params and "0.1" in params
        assert "owner" in out.split("Tags:")[1]
        metrics = out.split("Metrics (latest):")[1].strip().splitlines()
        assert metrics[0].split() == ["KEY", "VALUE", "STEP", "TIMESTAMP"]
        assert metrics[1].split()[:3] == ["acc", "0.5", "1"]
        assert metrics[2].split()[:3] == ["loss", "1.5", "2"]
    doc = json.loads(cli(tracked, "run", "show", run_id, "-o", "json").stdout)
    assert doc["params"]["layers"] == "4" and doc["metrics"]["loss"]["value"] == 1.5
    res = cli(tracked, "run", "show", "no-such-run", check=False)
    assert res.returncode == 1 and "not found" in res.stderr
    res = cli(tracked, "run", "show", "0" * 32, check=False)
    assert res.returncode == 1 and res.stderr.startswith("error:")
    make_run(tracked, "shown", "e1", {}, {})
    res = cli(tracked, "run", "show", "shown", check=False)
    assert res.returncode == 1 and "several runs" in res.stderr


def test_run_compare_puts_params_and_metrics_side_by_side(tracked):
    a = make_run(tracked, "small", "cmp", {"lr": "0.1", "batch": "32"}, {"acc": [0.5, 0.75], "loss": [1.0]})
    b = make_run(tracked, "large", "cmp", {"lr": "0.01"}, {"acc": [0.875]})
    out = cli(tracked, "run", "compare", a, "large").stdout
    rows = {line.split()[0]: line.split()[1:] for line in out.strip().splitlines()}
    assert rows["KEY"] == ["small", "large"]
    assert rows["params.lr"] == ["0.1", "0.01"]
    assert rows["params.batch"] == ["32", "-"]
    assert rows["metrics.acc"] == ["0.75", "0.875"]
    assert rows["metrics.loss"] == ["1", "-"]
    only = cli(tracked, "run", "compare", a, b, "--metric", "acc").stdout
    assert "metrics.acc" in only and "metrics.loss" not in only
    doc = json.loads(cli(tracked, "run", "compare", a, b, "-o", "json").stdout)
    assert [r["run_name"] for r in doc["runs"]] == ["small", "large"]
    assert doc["runs"][1]["metrics"]["acc"]["value"] == 0.875
    res = cli(tracked, "run", "compare", a, check=False)
    assert res.returncode == 1 and "two" in res.stderr


def test_metrics_prints_a_sparkline_and_a_summary(tracked):
    values = [float(i % 50) for i in range(1000)]
    values[500] = 100.0
    run_id = make_run(tracked, "curve", "m", {}, {"loss": values, "flat": [2.0, 2.0]})
    out = cli(tracked, "metrics", run_id, "loss").stdout
    lines = out.strip().splitlines()
    assert lines[0].startswith("loss") and "curve" in lines[0]
    spark = lines[1]
    assert 1 < len(spark) <= 60 and set(spark) <= set("▁▂▃▄▅▆▇█ ")
    assert "█" in spark  # the spike survives downsampling
    summary = lines[2]
    assert "min 0 " in summary and "max 100 (step 500)" in summary
    assert "last 49 (step 999)" in summary and "count 1000" in summary
    narrow = cli(tracked, "metrics", "curve", "loss", "--max-points", "10").stdout
    assert len(narrow.strip().splitlines()[1]) <= 10
    doc = json.loads(cli(tracked, "metrics", run_id, "loss", "-o", "json").stdout)
    assert doc["summary"]["max"] == 100 and doc["summary"]["count"] == 1000
    assert doc["total_points"] == 1000 and doc["downsampled"] is True
    assert cli(tracked, "metrics", run_id, "flat").stdout.strip().splitlines()[1] == "▄▄"
    res = cli(tracked, "metrics", run_id, "missing", check=False)
    assert res.returncode == 1 and res.stderr.startswith("error:")
    res = cli(tracked, "metrics", run_id, "loss", "--max-points", "0", check=False)
    assert res.returncode != 0


def test_project_comes_from_the_flag_or_the_environment(tracked):
    res = tracked.cli("run", "ls", check=False, env={"LATHE_PROJECT": ""})
    assert res.returncode == 1 and "--project" in res.stderr
    assert tracked.cli("run", "ls", "--project", PROJECT, env={"LATHE_PROJECT": ""}).returncode == 0
    res = tracked.cli("experiment", "ls", "--project", "nope", check=False)
    assert res.returncode == 1 and "not found" in res.stderr


def test_every_tracking_command_has_help():
    for args in (["experiment"], ["experiment", "ls"], ["experiment", "create"],
                 ["experiment", "show"], ["run"], ["run", "ls"], ["run", "show"],
                 ["run", "compare"], ["metrics"]):
        res = subprocess.run([LATHE, *args, "--help"], capture_output=True, text=True, timeout=10)
        assert res.returncode == 0 and "--help" in res.stdout, (args, res.stderr)
    out = subprocess.run([LATHE, "--help"], capture_output=True, text=True, check=True).stdout
    for cmd in ("experiment", "run", "metrics"):
        assert cmd in out
