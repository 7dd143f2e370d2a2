"""`lathe sim` end to end: the real binary on examples/sim and, when present,
the shared traces in ../shared/traces."""
import json
import os
import subprocess

import pytest

from conftest import LATHE, ROOT

EXAMPLES = os.path.join(ROOT, "examples", "sim")
TRACES = os.path.normpath(os.path.join(ROOT, "..", "shared", "traces"))


def sim(*args, check=True, timeout=300):
    res = subprocess.run([LATHE, "sim", *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert res.returncode == 0, res.stderr
    return res


def example_run(*extra, check=True):
    return sim("--trace", os.path.join(EXAMPLES, "jobs.csv"), "--format", "csv",
               "--cluster", os.path.join(EXAMPLES, "small-cluster.yaml"), *extra, check=check)


def need_trace(name):
    path = os.path.join(TRACES, name)
    if not os.path.exists(path):
        pytest.skip(f"trace not found: {path}")
    return path


def test_example_csv_json_compares_policies():
    res = example_run("--policies", "fifo,drf,binpack,sjf,lathe", "-o", "json", "--validate")
    out = json.loads(res.stdout)
    assert out["mode"] == "events" and out["jobs"] == 14 and out["nodes"] == 5
    names = [r["policy"] for r in out["results"]]
    assert names == ["fifo", "drf", "binpack", "sjf", "lathe"]
    for r in out["results"]:
        assert r["finished"] == 14 and r["never_started"] == 0, r["policy"]
        assert r["avg_jct"] >= 600  # every job runs at least 300 s; most longer
        assert r["p50_jct"] <= r["p95_jct"] <= r["p99_jct"]
        assert 0 < r["gpu_util"] <= 1 and 0 < r["cpu_util"] <= 1
        assert r["avg_wait"] >= 0
        queues = {q["queue"]: q for q in r["queues"]}
        assert set(queues) == {"research", "product"}
        assert abs(queues["research"]["deserved"] - 2 / 3) < 1e-9
        assert r["series"] and all(s["gpu_util"] <= 1 for s in r["series"])
        assert r["preemptions"] >= 0 and r["reservations"] >= 0
    assert out["avg_jct_vs_fifo"]["fifo"] == 1
    # Progress and the summary go to stderr, never into the JSON.
    assert "read 14 jobs" in res.stderr


def test_example_table_and_yaml():
    res = example_run("--policies", "fifo,lathe", "-q")
    lines = res.stdout.splitlines()
    assert lines[0].startswith("14 jobs on 5 nodes")
    assert lines[1].split()[0] == "POLICY" and "AVG JCT" in lines[1]
    assert lines[2].split()[0] == "fifo" and lines[3].split()[0] == "lathe"
    assert "queue shares" in res.stdout
    assert res.stderr == ""
    res = example_run("--policies", "fifo", "-q", "-o", "yaml")
    assert "mode: events" in res.stdout


def test_deterministic_given_seed():
    a = example_run("--policies", "random,fgd", "-o", "json", "-q", "--seed", "3").stdout
    b = example_run("--policies", "random,fgd", "-o", "json", "-q", "--seed", "3").stdout
    strip = lambda s: [{k: v for k, v in r.items() if not k.endswith("seconds")}
                       for r in json.loads(s)["results"]]
    assert strip(a) == strip(b)


def test_unknown_policy_is_one_line_listing_known_ones():
    res = example_run("--policies", "fifo,nope", check=False)
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1
    assert 'unknown policy "nope"' in res.stderr and "fifo" in res.stderr and "fgd" in res.stderr


def test_bad_rows_abort_or_skip(tmp_path):
    bad = tmp_path / "bad.csv"
    with open(os.path.join(EXAMPLES, "jobs.csv")) as f:
        lines = f.read().splitlines()
    lines[3] = lines[3].replace(",1800,", ",soon,")
    bad.write_text("\n".join(lines) + "\n")
    args = ["--trace", str(bad), "--format", "csv", "--cluster",
            os.path.join(EXAMPLES, "small-cluster.yaml"), "--policies", "fifo"]
    res = sim(*args, check=False)
    assert res.returncode == 1
    assert f'{bad}:4: duration: "soon" is not a number' in res.stderr
    res = sim(*args, "--on-bad-row", "skip", "-o", "json")
    assert json.loads(res.stdout)["jobs"] == 13
    assert "1 bad rows skipped" in res.stderr


def test_bad_cluster_file_names_the_field(tmp_path):
    cluster = tmp_path / "c.yaml"
    cluster.write_text("nodes:\n  - {count: 2, cpu: 8, memory_mib: lots}\n")
    res = sim("--trace", os.path.join(EXAMPLES, "jobs.csv"), "--format", "csv",
              "--cluster", str(cluster), check=False)
    assert res.returncode == 1
    assert "nodes[0].memory_mib" in res.stderr and res.stderr.count("\n") == 1


def test_missing_inputs_are_clear():
    res = sim("--trace", "/nonexistent.csv", "--format", "csv", "--cluster",
              os.path.join(EXAMPLES, "small-cluster.yaml"), check=False)
    assert res.returncode == 1 and "/nonexistent.csv" in res.stderr
    res = sim("--help")
    assert "--policies" in res.stdout and "--mode" in res.stdout


def test_philly_subset_runs():
    trace = need_trace("philly_pollux.csv")
    res = sim("--trace", trace, "--format", "philly", "--cluster",
              os.path.join(EXAMPLES, "philly-cluster.yaml"), "--policies", "fifo,sjf",
              "--max-jobs", "300", "-o", "json", "-q")
    out = json.loads(res.stdout)
    assert out["jobs"] == 300
    fifo, sjf = out["results"]
    assert fifo["finished"] == 300 and sjf["finished"] == 300
    assert sjf["avg_jct"] <= fifo["avg_jct"] * 1.05


def test_openb_fill_small():
    pods = need_trace("openb_pod_list_default.csv")
    nodes = need_trace("openb_node_list_all_node.csv")
    res = sim("--trace", f"{pods},{nodes}", "--format", "openb", "--mode", "fgd-fill",
              "--policies", "bestfit,fgd", "--fill-until", "20", "-o", "json", "-q")
    out = json.loads(res.stdout)
    assert out["mode"] == "fgd-fill" and out["nodes"] == 1523 and out["gpus"] == 6212
    for r in out["results"]:
        assert r["end"]["arrived"] >= 0.2
        assert 0.75 <= r["end"]["unallocated"] <= 0.81
