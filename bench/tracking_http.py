#!/usr/bin/python3
"""Experiment-tracking ingest over HTTP (issue 5).

    bench/tracking_http.py [--store URL] [--clients 10] [--points 1000]
                           [--requests 200] [--calls 2000] [--api native|mlflow]

Starts `lathe server` on a fresh home (SQLite by default, durable: WAL with
synchronous=FULL; `--store postgresql://…` for PostgreSQL), creates a project
"default" and then measures:

1. Latency of one synchronous log-metric call: one client, one keep-alive
   connection, `--calls` MLflow `POST /api/2.0/mlflow/runs/log-metric`
   calls (each a new step, as `mlflow.log_metric` sends them), timed from
   the request's send to the response's last byte on the client; p50, p90,
   p99. The same for the native `POST …/runs/{id}/log` with one point, and
   the MLflow call again from the C++ client (`tracking_load … log-metric`),
   which leaves out Python's ≈ 0.1–0.2 ms per call.
2. Batched ingest: `--clients` processes, each with its own run and
   keep-alive connection, send `--requests` requests of `--points` points
   (10 keys × points/10 steps, distinct steps, so that no batch is a replay)
   through the native API (`--api mlflow`: `runs/log-batch`). Bodies are
   built before the clock starts; points/s = all points / wall time from
   the first request to the last answer. Every answer is 200, and every
   acknowledged point is durable. By default the clients are threads of
   the C++ load generator `tracking_load` (bench/tracking_load.cc, built
   beside the binary): on a small machine Python processes that build and
   send 1,000-point bodies use more CPU than the server spends storing
   them. `--loadgen python` uses Python processes instead.

Targets (issue 5): log-metric p50 < 0.5 ms; ≥ 1,000,000 points/s.
Prints one line per measurement and, with --json FILE, writes them there.
"""
import argparse
import http.client
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LATHE = os.environ.get("LATHE_BIN", os.path.join(ROOT, "build", "lathe"))
PROJECT = "default"


class Client:
    def __init__(self, url, token):
        host, port = url.replace("http://", "").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=120)
        self.headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}

    def send(self, method, path, body):
        """body: bytes (one send() with the headers, as http.client does)."""
        self.conn.request(method, path, body=body, headers=self.headers)
        res = self.conn.getresponse()
        data = res.read()
        if res.status != 200 and res.status != 201:
            raise SystemExit(f"{method} {path}: {res.status} {data[:300]!r}")
        return data

    def call(self, method, path, body=None):
        data = self.send(method, path, json.dumps(body).encode() if body is not None else None)
        return json.loads(data) if data else None


def new_run(c):
    return c.call("POST", f"/api/v1/projects/{PROJECT}/runs", {"experiment": "bench"})["run_id"]


def percentiles(samples_s):
    xs = sorted(samples_s)
    pick = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))] * 1e3
    return {"p50_ms": round(pick(0.50), 3), "p90_ms": round(pick(0.90), 3),
            "p99_ms": round(pick(0.99), 3), "mean_ms": round(statistics.mean(xs) * 1e3, 3)}


def latency(url, token, calls, api):
    c = Client(url, token)
    run_id = new_run(c)
    if api == "mlflow":
        path = "/api/2.0/mlflow/runs/log-metric"
        body = lambda i: (f'{{"run_uuid":"{run_id}","key":"x","value":{i * 0.5},'
                          f'"timestamp":{1795392659886 + i},"step":{i},"run_id":"{run_id}"}}').encode()
    else:
        path = f"/api/v1/projects/{PROJECT}/runs/{run_id}/log"
        body = lambda i: (f'{{"metrics":[{{"key":"x","value":{i * 0.5},"step":{i},'
                          f'"timestamp":{1795392659886 + i}}}]}}').encode()
    bodies = [body(i) for i in range(calls + 200)]
    for b in bodies[:200]:  # warm-up: connection, caches, page cache
        c.send("POST", path, b)
    samples = []
    for b in bodies[200:]:
        t0 = time.perf_counter()
        c.send("POST", path, b)
        samples.append(time.perf_counter() - t0)
    return percentiles(samples)


def batch_body(api, run_id, req, points):
    steps = points // 10
    base = req * steps
    ts = 1795392659886 + base
    if api == "mlflow":
        items = ",".join(f'{{"key":"k{k}","value":{(base + s) * 0.001 + k},"timestamp":{ts + s},'
                         f'"step":{base + s}}}' for s in range(steps) for k in range(10))
        return f'{{"run_id":"{run_id}","metrics":[{items}]}}'.encode()
    items = ",".join(f'{{"key":"k{k}","value":{(base + s) * 0.001 + k},"step":{base + s},'
                     f'"timestamp":{ts + s}}}' for s in range(steps) for k in range(10))
    return f'{{"metrics":[{items}]}}'.encode()


def ingest_client(args):
    url, token, api, requests, points, start_at, out = args
    c = Client(url, token)
    run_id = new_run(c)
    path = ("/api/2.0/mlflow/runs/log-batch" if api == "mlflow"
            else f"/api/v1/projects/{PROJECT}/runs/{run_id}/log")
    bodies = [batch_body(api, run_id, r, points) for r in range(requests)]
    while time.time() < start_at:
        time.sleep(0.001)
    t0 = time.time()
    lat = []
    for b in bodies:
        s = time.perf_counter()
        c.send("POST", path, b)
        lat.append(time.perf_counter() - s)
    out.put((t0, time.time(), lat))


def ingest(url, token, clients, requests, points, api):
    q = multiprocessing.Queue()
    # Bodies take a while to build: start everyone at the same instant.
    start_at = time.time() + max(2.0, requests * points / 400_000)
    procs = [multiprocessing.Process(target=ingest_client,
                                     args=((url, token, api, requests, points, start_at, q),))
             for _ in range(clients)]
    for p in procs:
        p.start()
    results = [q.get() for _ in procs]
    for p in procs:
        p.join()
    first = min(r[0] for r in results)
    last = max(r[1] for r in results)
    total = clients * requests * points
    lat = [x for r in results for x in r[2]]
    out = {"points": total, "seconds": round(last - first, 3),
           "points_per_s": int(total / (last - first)), "requests_per_s": int(clients * requests / (last - first))}
    out.update({"request_" + k: v for k, v in percentiles(lat).items()})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", default="", help="store URL (default: SQLite in the fresh home)")
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--points", type=int, default=1000, help="points per request")
    ap.add_argument("--requests", type=int, default=200, help="requests per client")
    ap.add_argument("--calls", type=int, default=2000, help="synchronous log-metric calls")
    ap.add_argument("--api", choices=["native", "mlflow"], default="native",
                    help="API of the batched ingest")
    ap.add_argument("--loadgen", default="auto",
                    help="batched-ingest clients: auto (tracking_load if built), python, or a path")
    ap.add_argument("--server-threads", type=int, default=0)
    ap.add_argument("--json", default="", help="also write the results to this file")
    args = ap.parse_args()

    home = tempfile.mkdtemp(prefix="lathe-bench-tracking-")
    cmd = [LATHE, "server", "--home", home, "--listen", "127.0.0.1:0", "--log-level", "warn"]
    if args.store:
        cmd += ["--store", args.store]
    env = dict(os.environ)
    if args.server_threads:
        env["LATHE_HTTP_THREADS"] = str(args.server_threads)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=env,
                            stderr=open(os.path.join(home, "server.err"), "w"))
    try:
        url_file = os.path.join(home, "server.url")
        for _ in range(1000):
            if os.path.exists(url_file):
                break
            time.sleep(0.01)
        url = open(url_file).read().strip()
        token = open(os.path.join(home, "admin.token")).read().strip()
        Client(url, token).call("POST", "/api/v1/projects", {"name": PROJECT})
        results = {"store": args.store or "sqlite", "cpus": os.cpu_count()}
        results["log_metric_mlflow"] = latency(url, token, args.calls, "mlflow")
        print("log-metric (MLflow, 1 point, sync):", results["log_metric_mlflow"], flush=True)
        results["log_native_1"] = latency(url, token, args.calls, "native")
        print("log (native, 1 point, sync):       ", results["log_native_1"], flush=True)
        loadgen = args.loadgen
        if loadgen == "auto":
            loadgen = os.path.join(os.path.dirname(LATHE), "bench", "tracking_load")
            if not os.access(loadgen, os.X_OK):
                loadgen = "python"
        if loadgen != "python":
            # The same call from a C++ client: the server and loopback alone.
            out = subprocess.run([loadgen, url, token, "1", str(args.calls), "1", "log-metric"],
                                 check=True, capture_output=True, text=True).stdout
            results["log_metric_mlflow_cpp_client"] = json.loads(out)
            print("log-metric (MLflow, C++ client):   ", results["log_metric_mlflow_cpp_client"],
                  flush=True)
        if loadgen == "python":
            results["ingest"] = ingest(url, token, args.clients, args.requests, args.points, args.api)
            results["ingest"].update({"clients": args.clients, "points_per_request": args.points,
                                      "api": args.api})
        else:
            out = subprocess.run([loadgen, url, token, str(args.clients), str(args.requests),
                                  str(args.points), args.api], check=True, capture_output=True,
                                 text=True).stdout
            results["ingest"] = json.loads(out)
        results["ingest"]["loadgen"] = "python" if loadgen == "python" else "tracking_load (C++)"
        print(f"ingest ({args.api}, {args.clients} clients x {args.points} points):",
              results["ingest"], flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
