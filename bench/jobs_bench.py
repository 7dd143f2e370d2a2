#!/usr/bin/python3
"""Training-job throughput of `lathe server` on the local executor (issue 4).

    bench/jobs_bench.py [jobs] [batch]     (defaults 10000 and 1000)

1. Starts a server on a fresh home (SQLite, durable), creates a project.
2. Submits `jobs` trivial jobs (`true`, 10m CPU, 8Mi memory each) through
   POST /api/v1/projects/{p}/jobs:batch, `batch` jobs per request, over one
   keep-alive connection, and reports submissions per second (wall time of
   all requests; every submission is durable when its request returns).
3. Waits until every job has ended and reports how many succeeded and how
   long the controller took to run them all.
4. From each job's record: admission → process start = the task's
   started_at (written by its shim just before exec) minus the job's
   admitted_at (written when the scheduler bound it); p50/p90/p99 over the
   burst (2 cores saturated by shims and tasks starting), then over 100 jobs
   submitted one at a time on the idle server.
Targets: ≥ 2,000 submissions/s; all complete; admission → start p50 < 20 ms.
"""
import datetime
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LATHE = os.environ.get("LATHE_BIN", os.path.join(ROOT, "build", "lathe"))


def parse_time(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


class Client:
    def __init__(self, url, token):
        host, port = url.replace("http://", "").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=120)
        self.headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}

    def call(self, method, path, body=None):
        self.conn.request(method, path, body=json.dumps(body) if body is not None else None,
                          headers=self.headers)
        res = self.conn.getresponse()
        data = res.read()
        if res.status >= 300:
            raise SystemExit(f"{method} {path}: {res.status} {data[:300]!r}")
        return json.loads(data) if data else None


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    home = tempfile.mkdtemp(prefix="lathe-bench-jobs-")
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
        c.call("POST", "/api/v1/projects", {"name": "bench"})
        spec = lambda i: {"name": f"t{i:06d}", "roles": [{
            "name": "main", "command": ["true"], "resources": {"cpu": "10m", "memory": "8Mi"}}]}

        t0 = time.perf_counter()
        for start in range(0, n, batch):
            c.call("POST", "/api/v1/projects/bench/jobs:batch",
                   {"jobs": [spec(i) for i in range(start, min(n, start + batch))]})
        submit_s = time.perf_counter() - t0
        print(f"submitted {n} jobs in {submit_s:.2f} s: {n / submit_s:,.0f} submissions/s "
              f"(batches of {batch})", flush=True)

        ended = {}
        last_report = 0
        while True:
            ended.clear()
            done = 0
            for phase in ("succeeded", "failed", "cancelled", "timed_out"):
                page = ""
                while True:
                    body = c.call("GET", f"/api/v1/projects/bench/jobs?phase={phase}&limit=1000"
                                         f"&page_token={page}")
                    for j in body["items"]:
                        ended[j["id"]] = j
                    page = body["next_page_token"]
                    if not page:
                        break
            done = len(ended)
            elapsed = time.perf_counter() - t0
            if elapsed - last_report > 10:
                print(f"  {done}/{n} ended after {elapsed:.0f} s", flush=True)
                last_report = elapsed
            if done == n or elapsed > 1800:
                break
            time.sleep(1)
        total_s = time.perf_counter() - t0
        phases = {}
        for j in ended.values():
            phases[j["phase"]] = phases.get(j["phase"], 0) + 1
        print(f"all ended: {done}/{n} in {total_s:.1f} s from the first submission "
              f"({done / total_s:,.0f} jobs/s end to end); phases {phases}")

        lat = []
        for j in ended.values():
            t = j["tasks"][0] if j.get("tasks") else None
            if not t or not t.get("started_at") or not j.get("admitted_at"):
                continue
            lat.append((parse_time(t["started_at"]) - parse_time(j["admitted_at"])) * 1000)
        lat.sort()
        if lat:
            q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
            print(f"admission -> process start over {len(lat)} jobs: p50 {q(0.5):.1f} ms, "
                  f"p90 {q(0.9):.1f} ms, p99 {q(0.99):.1f} ms (millisecond timestamps)")

        # One job at a time on the now idle server: the latency a user sees.
        single = []
        for i in range(100):
            j = c.call("POST", "/api/v1/projects/bench/jobs", {
                "name": f"one{i:03d}", "roles": [{"name": "main", "command": ["true"],
                                                  "resources": {"cpu": "10m", "memory": "8Mi"}}]})
            deadline = time.time() + 30
            while time.time() < deadline:
                j = c.call("GET", f"/api/v1/projects/bench/jobs/{j['id']}")
                if j["phase"] in ("succeeded", "failed"):
                    break
                time.sleep(0.005)
            t = j["tasks"][0]
            single.append((parse_time(t["started_at"]) - parse_time(j["admitted_at"])) * 1000)
        single.sort()
        print(f"admission -> process start, one job at a time on an idle server ({len(single)} "
              f"jobs): p50 {single[len(single) // 2]:.1f} ms, p90 {single[int(len(single) * 0.9)]:.1f} ms, "
              f"max {single[-1]:.1f} ms")
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
