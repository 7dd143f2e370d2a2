#!/usr/bin/python3
"""Pipeline orchestration cost of `lathe server` on the local executor (issue 7).

    bench/pipelines_bench.py [--chain N] [--sizes 1000,2500,5000,10000]

1. Starts a server on a fresh home (SQLite, durable), creates a project.
2. Dispatch: a linear pipeline of N trivial steps (`true`, 10m CPU, 8Mi;
   caching off). For each edge, the next step's process start (its task's
   started_at, written by its shim just before exec) minus the previous
   step's process exit (its task's finished_at): the time the controllers
   need to notice a step ended, decide the next one, insert its job, admit it
   and start its process. Target: p50 < 20 ms.
3. Fan-out / fan-in at each size S, measured side by side on the same server:
   (a) S trivial jobs submitted through POST …/jobs:batch — what the job
       layer alone needs for S processes (the baseline);
   (b) a pipeline `start` → `fan` (for_each over S items, no parallelism
       limit) → `join`, with caching off.
   Pipeline overhead per step = (wall(b) - wall(a)) / S. The issue asks that
   it grow linearly: the per-step figure must stay flat as S grows.
   Wall times run from the first request to the last job's end.
Anchor: Airflow's scheduler tops out around 500-1,000 task instances/s and
adds seconds of latency per task (../shared/research/semantics.md).
"""
import argparse
import datetime
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LATHE = os.environ.get("LATHE_BIN", os.path.join(ROOT, "build", "lathe"))
TINY = {"cpu": "10m", "memory": "8Mi"}
PROJECT = "bench"
TERMINAL_RUN = ("succeeded", "failed", "cancelled")
TERMINAL_JOB = ("succeeded", "failed", "cancelled", "timed_out")


def parse_time(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


class Client:
    def __init__(self, url, token):
        host, port = url.replace("http://", "").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=300)
        self.headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}

    def call(self, method, path, body=None):
        self.conn.request(method, path, body=json.dumps(body) if body is not None else None,
                          headers=self.headers)
        res = self.conn.getresponse()
        data = res.read()
        if res.status >= 300:
            raise SystemExit(f"{method} {path}: {res.status} {data[:400]!r}")
        return json.loads(data) if data else None


def base(path):
    return f"/api/v1/projects/{PROJECT}{path}"


def run_pipeline(c, spec, params=None, timeout_s=3600):
    """Creates `spec`, runs it without the cache, waits; returns (run, wall seconds)."""
    c.call("POST", base("/pipelines"), {"spec": spec})
    t0 = time.perf_counter()
    run = c.call("POST", base(f"/pipelines/{spec['name']}/runs"),
                 {"params": params or {}, "cache": False})
    deadline = time.time() + timeout_s
    last = t0
    while time.time() < deadline:
        # The list route answers without nodes (a 10,000-node run is large).
        page = c.call("GET", base(f"/pipeline-runs?pipeline={spec['name']}&limit=1"))
        r = next((x for x in page["items"] if x["id"] == run["id"]), run)
        if r["state"] in TERMINAL_RUN:
            return r, time.perf_counter() - t0
        if time.perf_counter() - last > 15:
            last = time.perf_counter()
            print(f"    … {r['state']} after {last - t0:.0f} s", flush=True)
        time.sleep(0.05)
    raise SystemExit(f"run {run['id']} did not finish in {timeout_s} s")


def dispatch(c, n):
    steps = []
    for i in range(n):
        step = {"name": f"s{i:03d}", "command": ["true"], "resources": TINY}
        if i:
            step["depends"] = f"s{i - 1:03d}"
        steps.append(step)
    run, wall = run_pipeline(c, {"name": "chain", "steps": steps})
    if run["state"] != "succeeded":
        raise SystemExit(f"chain run {run['id']} ended {run['state']}: {run['message']}")
    run = c.call("GET", base(f"/pipeline-runs/{run['id']}"))
    task = {}
    for node in run["nodes"]:
        job = c.call("GET", base(f"/jobs/{node['job_id']}"))
        task[node["node"]] = job["tasks"][0]
    gaps = []
    for i in range(1, n):
        prev, cur = task[f"s{i - 1:03d}"], task[f"s{i:03d}"]
        gaps.append((parse_time(cur["started_at"]) - parse_time(prev["finished_at"])) * 1000)
    gaps.sort()
    q = lambda p: gaps[min(len(gaps) - 1, int(p * len(gaps)))]
    print(f"dispatch, {n}-step chain in {wall:.2f} s: previous step's exit -> next step's "
          f"process start over {len(gaps)} edges: p50 {q(0.5):.1f} ms, p90 {q(0.9):.1f} ms, "
          f"max {gaps[-1]:.1f} ms (millisecond timestamps)", flush=True)
    return statistics.median(gaps)


def wait_jobs(c, names_prefix, n, t0, timeout_s=3600):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        done = 0
        for phase in TERMINAL_JOB:
            page = ""
            while True:
                body = c.call("GET", base(f"/jobs?phase={phase}&limit=1000&page_token={page}"))
                done += sum(1 for j in body["items"] if j["name"].startswith(names_prefix))
                page = body["next_page_token"]
                if not page:
                    break
        if done >= n:
            return time.perf_counter() - t0
        time.sleep(0.5)
    raise SystemExit(f"{n} jobs did not end in {timeout_s} s")


def baseline_jobs(c, size, tag):
    prefix = f"b{tag}-"
    t0 = time.perf_counter()
    for start in range(0, size, 1000):
        c.call("POST", base("/jobs:batch"), {"jobs": [
            {"name": f"{prefix}{i:06d}", "roles": [{"name": "main", "command": ["true"],
                                                    "resources": TINY}]}
            for i in range(start, min(size, start + 1000))]})
    return wait_jobs(c, prefix, size, t0)


def fan(c, size, tag):
    spec = {
        "name": f"fan{tag}",
        "params": [{"name": "items", "type": "list", "default": []}],
        "steps": [
            {"name": "start", "command": ["true"], "resources": TINY},
            {"name": "fan", "depends": "start", "for_each": "{{params.items}}",
             "command": ["true"], "resources": TINY},
            {"name": "join", "depends": "fan", "command": ["true"], "resources": TINY},
        ],
    }
    run, wall = run_pipeline(c, spec, {"items": list(range(size))})
    if run["state"] != "succeeded":
        raise SystemExit(f"fan run {run['id']} ended {run['state']}: {run['message']}")
    return wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chain", type=int, default=50, help="steps in the dispatch chain")
    ap.add_argument("--sizes", default="1000,2500,5000,10000",
                    help="fan-out sizes, comma-separated")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]

    home = tempfile.mkdtemp(prefix="lathe-bench-pipelines-")
    proc = subprocess.Popen([LATHE, "server", "--home", home, "--listen", "127.0.0.1:0",
                             "--log-level", "warn"], stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(home, "server.err"), "w"))
    try:
        url_file = os.path.join(home, "server.url")
        for _ in range(1000):
            if os.path.exists(url_file):
                break
            time.sleep(0.01)
        url = open(url_file).read().strip()
        token = open(os.path.join(home, "admin.token")).read().strip()
        c = Client(url, token)
        c.call("POST", "/api/v1/projects", {"name": PROJECT})

        dispatch(c, args.chain)
        print("\nfan-out / fan-in (wall seconds; overhead = pipeline - jobs alone, per step)")
        print(f"{'steps':>8} {'jobs alone':>11} {'pipeline':>9} {'overhead/step':>14} "
              f"{'pipeline steps/s':>17}", flush=True)
        for i, size in enumerate(sizes):
            jobs_s = baseline_jobs(c, size, i)
            pipe_s = fan(c, size, i)
            steps = size + 2
            print(f"{steps:>8} {jobs_s:>10.1f}s {pipe_s:>8.1f}s "
                  f"{(pipe_s - jobs_s) / size * 1000:>11.2f} ms {steps / pipe_s:>17.0f}",
                  flush=True)
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
