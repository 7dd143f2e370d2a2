"""An in-memory stand-in for the native tracking, artifact and registry
routes (docs/tracking.md, docs/registry.md), on http.server in a thread,
with failure injection. Enough of the contract
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
        self.artifacts = {}  # (run_id, path) -> bytes
        self.models = {}  # name -> registered model (without versions)
        self.versions = {}  # name -> {number: version}
        self.next_version = {}  # name -> the next version number
        self.body_reads = []  # sizes of each read of an artifact upload body
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

            def _answer_bytes(self, data):
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self):
                n = int(self.headers.get("Content-Length") or 0)
                url = urlsplit(self.path)
                if self.command == "PUT" and "/artifacts/" in url.path:
                    raw = b""
                    while len(raw) < n:  # as a streaming server would
                        block = self.rfile.read1(min(1 << 20, n - len(raw)))
                        if not block:
                            break
                        with fake.lock:
                            fake.body_reads.append(len(block))
                        raw += block
                    body = raw
                else:
                    raw = self.rfile.read(n) if n else b""
                    body = json.loads(raw) if raw else None
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
                if isinstance(answer, bytes):
                    return self._answer_bytes(answer)
                self._answer(status, answer)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

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
                       "start_time": now(), "end_time": None,
                       "artifact_uri": "mlflow-artifacts:/{}/{}/artifacts".format(e["id"], rid),
                       "lifecycle": "active", "job_id": None, "params": {},
                       "tags": dict(body.get("tags") or {}), "metrics": {}}
                self.runs[rid] = run
                return 201, run
            if parts and parts[0] == "models":
                return self.registry(method, parts[1:], query, body)
            if len(parts) >= 3 and parts[0] == "runs" and parts[2] == "artifacts":
                if parts[1] not in self.runs:
                    return 404, error("NOT_FOUND", 'run "{}" not found'.format(parts[1]))
                return self.artifact(method, parts[1], parts[3:], query, body)
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

    def artifact(self, method, run_id, parts, query, body):
        if any(p in ("", ".", "..") for p in parts):
            return 400, error("INVALID_ARGUMENT", "bad artifact path", "path")
        path = "/".join(parts)
        if not parts:  # the listing
            if method != "GET":
                return 405, error("METHOD_NOT_ALLOWED", "no such route")
            sub = (query.get("path") or [""])[0].strip("/")
            prefix = sub + "/" if sub else ""
            entries = {}
            for (rid, p), data in self.artifacts.items():
                if rid != run_id or not p.startswith(prefix):
                    continue
                name, _, deeper = p[len(prefix):].partition("/")
                if deeper:
                    entries[prefix + name] = {"path": prefix + name, "is_dir": True, "file_size": 0}
                else:
                    entries[prefix + name] = {"path": prefix + name, "is_dir": False,
                                              "file_size": len(data)}
            run = self.runs[run_id]
            return 200, {"root_uri": run["artifact_uri"],
                         "files": [entries[k] for k in sorted(entries)]}
        if method == "PUT":
            self.artifacts[(run_id, path)] = body
            return 201, {"path": path, "file_size": len(body)}
        if method == "GET":
            data = self.artifacts.get((run_id, path))
            if data is None:
                return 404, error("NOT_FOUND", "no artifact " + path)
            return 200, data
        if method == "DELETE":
            if self.artifacts.pop((run_id, path), None) is None:
                return 404, error("NOT_FOUND", "no artifact " + path)
            return 204, None
        return 405, error("METHOD_NOT_ALLOWED", "no such route")

    def registry(self, method, parts, query, body):
        if not parts:
            if method == "POST":
                name = body["name"]
                if name in self.models:
                    return 409, error("ALREADY_EXISTS", 'model "{}" exists'.format(name), "name")
                self.models[name] = {"name": name, "project": self.project,
                                     "description": body.get("description") or "",
                                     "created_at": now(), "updated_at": now(),
                                     "tags": dict(body.get("tags") or {})}
                self.versions[name] = {}
                self.next_version[name] = 1
                return 201, self.model(name)
            if method == "GET":
                return 200, {"items": [self.model(n) for n in sorted(self.models)],
                             "next_page_token": ""}
        name = parts[0]
        if name not in self.models:
            return 404, error("NOT_FOUND", 'model "{}" not found'.format(name))
        versions = self.versions[name]
        if len(parts) == 1:
            if method == "GET":
                return 200, self.model(name)
            if method == "DELETE":
                del self.models[name], self.versions[name]
                return 204, None
        if parts[1:] == ["versions"]:
            if method == "POST":
                n = self.next_version[name]
                self.next_version[name] = n + 1
                versions[n] = {"name": name, "version": n, "created_at": now(),
                               "updated_at": now(), "user": "admin",
                               "description": body.get("description") or "", "stage": "None",
                               "source": body["source"], "run_id": body.get("run_id"),
                               "run_link": body.get("run_link") or "", "status": "READY",
                               "tags": dict(body.get("tags") or {}), "aliases": []}
                return 201, versions[n]
            if method == "GET":
                return 200, {"items": [versions[n] for n in sorted(versions, reverse=True)],
                             "next_page_token": ""}
        if len(parts) == 3 and parts[1] == "versions":
            v = versions.get(int(parts[2]))
            if v is None:
                return 404, error("NOT_FOUND", "no version " + parts[2])
            if method == "GET":
                run = self.runs.get(v["run_id"] or "")
                lineage = {"run_id": v["run_id"], "run_name": run["run_name"] if run else None,
                           "run_status": run["status"] if run else None}
                return 200, dict(v, lineage=lineage)
        if len(parts) == 3 and parts[1] == "aliases":
            alias = parts[2]
            if method == "PUT":
                if not isinstance(body.get("version"), int):
                    return 400, error("INVALID_ARGUMENT", "version: expected an integer", "version")
                v = versions.get(body["version"])
                if v is None:
                    return 404, error("NOT_FOUND", "no version {}".format(body["version"]))
                for other in versions.values():
                    if alias in other["aliases"]:
                        other["aliases"].remove(alias)
                v["aliases"].append(alias)
                return 200, v
            holder = [v for v in versions.values() if alias in v["aliases"]]
            if method == "DELETE":  # an absent alias too, as the server does
                if holder:
                    holder[0]["aliases"].remove(alias)
                return 204, None
            if not holder:
                return 404, error("NOT_FOUND", "no alias " + alias)
            if method == "GET":
                return 200, holder[0]
        return 405, error("METHOD_NOT_ALLOWED", "no such route")

    def model(self, name):
        m = dict(self.models[name])
        versions = self.versions[name]
        m["aliases"] = {a: n for n, v in versions.items() for a in v["aliases"]}
        m["latest_versions"] = [versions[max(versions)]] if versions else []
        return m

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
