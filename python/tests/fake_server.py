"""An in-memory stand-in for the native tracking routes of docs/tracking.md,
on http.server in a thread, with failure injection. Enough of the contract
for the SDK's unit tests; the real server is tested in tests/test_python_sdk.py.
"""
import json
import re
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

PREFIX = "/api/v1/projects/"


class FakeLathe:
    def __init__(self, token="tok", project="ml"):
        self.token = token
        self.project = project
        self.lock = threading.Lock()
        self.experiments = {}  # name -> experiment
        self.runs = {}  # run_id -> run
        self.history = {}  # (run_id, key) -> [points]
        self.requests = []  # (method, path, body)
        self.log_bodies = []  # bodies of successful /log requests
        self.connections = 0
        self.fail = []  # queue of (status, headers, body) answers to give before serving
        self.delay = 0.0  # seconds each /log request takes
        self.close_after_each = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                # Headers and body go in two writes: no Nagle delay between them.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with fake.lock:
                    fake.connections += 1

            def log_message(self, *args):
                pass

            def _answer(self, status, body, headers=None):
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                if fake.close_after_each:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(data)

            def _handle(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                body = json.loads(raw) if raw else None
                url = urlsplit(self.path)
                with fake.lock:
                    fake.requests.append((self.command, url.path, body))
                    injected = fake.fail.pop(0) if fake.fail else None
                if injected is not None:
                    if injected == "drop":
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    status, headers, err = injected
                    return self._answer(status, err, headers)
                if self.headers.get("Authorization") != "Bearer " + fake.token:
                    return self._answer(401, error("UNAUTHENTICATED", "missing or unknown token"))
                status, answer = fake.route(self.command, url.path, parse_qs(url.query), body)
                self._answer(status, answer)

            do_GET = do_POST = do_PATCH = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:{}".format(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    # ---- the contract

    def experiment(self, name):
        if name not in self.experiments:
            eid = str(len(self.experiments) + 1)
            self.experiments[name] = {"id": eid, "name": name, "project": self.project,
                                      "artifact_location": "mlflow-artifacts:/" + eid,
                                      "lifecycle": "active", "created_at": now(),
                                      "updated_at": now(), "tags": {}}
        return self.experiments[name]

    def find_experiment(self, ref):
        for e in self.experiments.values():
            if e["id"] == ref or e["name"] == ref:
                return e
        return None

    def route(self, method, path, query, body):
        if not path.startswith(PREFIX):
            return 404, error("NOT_FOUND", "no route")
        project, _, rest = path[len(PREFIX):].partition("/")
        if unquote(project) != self.project:
            return 404, error("NOT_FOUND", 'project "{}" not found'.format(unquote(project)))
        parts = [unquote(p) for p in rest.split("/")]
        with self.lock:
            if parts == ["experiments"] and method == "POST":
                if body["name"] in self.experiments:
                    return 409, error("ALREADY_EXISTS", "experiment exists")
                return 201, self.experiment(body["name"])
            if len(parts) == 2 and parts[0] == "experiments" and method == "GET":
                e = self.find_experiment(parts[1])
                return (200, e) if e else (404, error("NOT_FOUND", "no experiment " + parts[1]))
            if parts == ["runs"] and method == "POST":
                e = self.experiment(body.get("experiment") or "Default")
                rid = uuid.uuid4().hex
                run = {"run_id": rid, "run_name": body.get("run_name") or "bold-crane-42",
                       "experiment_id": e["id"], "user": "admin", "status": "RUNNING",
                       "start_time": now(), "end_time": None, "artifact_uri": "x",
                       "lifecycle": "active", "job_id": None, "params": {},
                       "tags": dict(body.get("tags") or {}), "metrics": {}}
                self.runs[rid] = run
                return 201, run
            if parts == ["runs:search"] and method == "POST":
                runs = sorted(self.runs.values(), key=lambda r: r["start_time"])
                f = body.get("filter") or ""
                m = re.match(r"params\.(\w+) = '(.*)'", f)
                if m:
                    runs = [r for r in runs if r["params"].get(m.group(1)) == m.group(2)]
                start = int(body.get("page_token") or 0)
                limit = body.get("limit") or 100
                page = runs[start:start + limit]
                nxt = str(start + limit) if start + limit < len(runs) else ""
                return 200, {"runs": page, "next_page_token": nxt}
            if len(parts) >= 2 and parts[0] == "runs":
                run = self.runs.get(parts[1])
                if run is None:
                    return 404, error("NOT_FOUND", 'run "{}" not found'.format(parts[1]))
                if len(parts) == 2 and method == "GET":
                    return 200, run
                if len(parts) == 2 and method == "PATCH":
                    for k in ("status", "end_time", "run_name"):
                        if k in body:
                            run[k] = body[k]
                    return 200, run
                if parts[2:] == ["log"] and method == "POST":
                    return self.log(run, body)
                if len(parts) == 4 and parts[2] == "metrics" and method == "GET":
                    pts = self.history.get((run["run_id"], parts[3]), [])
                    mp = int(query.get("max_points", ["0"])[0])
                    if mp:
                        return 200, {"key": parts[3], "points": pts[-mp:], "total_points": len(pts),
                                     "downsampled": len(pts) > mp, "next_page_token": ""}
                    start = int(query.get("page_token", ["0"])[0])
                    limit = int(query.get("limit", ["100"])[0])
                    nxt = str(start + limit) if start + limit < len(pts) else ""
                    return 200, {"key": parts[3], "points": pts[start:start + limit],
                                 "total_points": len(pts), "downsampled": False,
                                 "next_page_token": nxt}
            return 405, error("METHOD_NOT_ALLOWED", "no such route")

    def log(self, run, body):
        metrics = body.get("metrics") or []
        if len(metrics) > 1000:
            return 400, error("INVALID_ARGUMENT", "at most 1000 metrics", "metrics")
        for k, v in (body.get("params") or {}).items():
            if k in run["params"] and run["params"][k] != v:
                return 400, error("INVALID_ARGUMENT", "changing param values is not allowed",
                                  "params." + k)
        for i, m in enumerate(metrics):
            if m["key"] == "reject-me":
                return 400, error("INVALID_ARGUMENT", "rejected key", "metrics[{}].key".format(i))
        if self.delay:
            time.sleep(self.delay)
        run["params"].update(body.get("params") or {})
        run["tags"].update(body.get("tags") or {})
        for m in metrics:
            self.history.setdefault((run["run_id"], m["key"]), []).append(
                {"step": m["step"], "value": m["value"], "timestamp": m["timestamp"]})
            run["metrics"][m["key"]] = {"value": m["value"], "step": m["step"],
                                        "timestamp": m["timestamp"]}
        self.log_bodies.append(body)
        return 200, {}

    def points(self, run_id, key):
        with self.lock:
            return list(self.history.get((run_id, key), []))


def error(code, message, field=None):
    return {"error": {"code": code, "message": message, "field": field, "request_id": "rid-1"}}


def now():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".{:03d}Z".format(int(t * 1000) % 1000)
