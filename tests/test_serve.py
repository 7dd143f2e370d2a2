"""`lathe serve`: the REST front end end to end on the example models.

Drives the real binary on the example model repository (examples/models,
generated into a temporary directory by make_repository.sh with Debian's
python3-torch and python3-xgboost) over KServe V2 REST (JSON and the binary
extension) and TF Serving REST, and checks the answers against the outputs
Python computed (reference.json). Skips, saying why, when the binary, numpy
or the example models are missing.
"""
import concurrent.futures
import json
import math
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import LATHE, ROOT

np = pytest.importorskip("numpy")

pytestmark = pytest.mark.skipif(not os.path.exists(LATHE), reason=f"no binary at {LATHE}")

NP_TYPES = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32}


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    repo = tmp_path_factory.mktemp("models")
    script = os.path.join(ROOT, "examples", "models", "make_repository.sh")
    if not os.path.exists(script):
        pytest.skip("examples/models/make_repository.sh is missing")
    r = subprocess.run(["bash", script, str(repo)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot build the example models: " + (r.stderr or r.stdout)[-400:])
    return repo


class Serve:
    """A running `lathe serve` on a free port (--http 127.0.0.1:0 and --url-file)."""

    def __init__(self, repo, workdir, extra=()):
        self.url_file = os.path.join(workdir, "serve.url")
        self.log_path = os.path.join(workdir, "serve.log")
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [LATHE, "serve", "--repository", str(repo), "--http", "127.0.0.1:0",
             "--url-file", self.url_file, "--http-threads", "2", *extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while not os.path.exists(self.url_file):
            if self.proc.poll() is not None:
                raise RuntimeError(f"lathe serve exited {self.proc.returncode}:\n{self.logs()}")
            if time.time() > deadline:
                raise RuntimeError("lathe serve did not start:\n" + self.logs())
            time.sleep(0.02)
        with open(self.url_file) as f:
            self.url = f.read().strip()

    def logs(self):
        with open(self.log_path) as f:
            return f.read()

    def call(self, method, path, body=None, headers=None):
        """(status, headers, body bytes) whatever the status."""
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def json(self, method, path, body=None, headers=None):
        status, _, data = self.call(method, path, body, headers)
        return status, json.loads(data) if data else None

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="module")
def serve(repository, tmp_path_factory):
    s = Serve(repository, tmp_path_factory.mktemp("serve"))
    yield s
    assert s.stop() == 0, s.logs()


def reference(repository, model):
    with open(os.path.join(repository, model, "reference.json")) as f:
        return json.load(f)


def as_array(t):
    return np.array([math.nan if v is None else v for v in t["data"]],
                    dtype=NP_TYPES[t["datatype"]]).reshape(t["shape"])


def json_data(t):
    """A reference tensor's data for V2 JSON (NaN as the string "NaN")."""
    return ["NaN" if v is None else v for v in t["data"]]


def check(got, want, ref):
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64).reshape(-1),
                               np.asarray(want, dtype=np.float64).reshape(-1),
                               rtol=ref["rtol"], atol=ref["atol"])


MODELS = ["mlp", "dlrm", "fraud_xgb"]


@pytest.mark.parametrize("model", MODELS)
def test_v2_json_matches_reference(serve, repository, model):
    ref = reference(repository, model)
    for case in ref["cases"]:
        body = {"id": "ref-json",
                "inputs": [{"name": t["name"], "shape": t["shape"], "datatype": t["datatype"],
                            "data": json_data(t)} for t in case["inputs"]]}
        status, res = serve.json("POST", f"/v2/models/{model}/infer", body)
        assert status == 200, res
        assert res["id"] == "ref-json" and res["model_name"] == model
        assert res["model_version"] == "1"
        for out, want in zip(res["outputs"], case["outputs"]):
            assert out["name"] == want["name"] and out["shape"] == want["shape"]
            check(out["data"], want["data"], ref)


@pytest.mark.parametrize("model", MODELS)
def test_v2_binary_matches_reference(serve, repository, model):
    ref = reference(repository, model)
    for case in ref["cases"]:
        raws = [as_array(t).tobytes() for t in case["inputs"]]
        header = json.dumps({
            "inputs": [{"name": t["name"], "shape": t["shape"], "datatype": t["datatype"],
                        "parameters": {"binary_data_size": len(raw)}}
                       for t, raw in zip(case["inputs"], raws)],
            "parameters": {"binary_data_output": True}}).encode()
        status, headers, body = serve.call(
            "POST", f"/v2/models/{model}/infer", header + b"".join(raws),
            {"Inference-Header-Content-Length": str(len(header)),
             "Content-Type": "application/octet-stream"})
        assert status == 200, body
        n = int(headers["Inference-Header-Content-Length"])
        res = json.loads(body[:n])
        offset = n
        for out, want in zip(res["outputs"], case["outputs"]):
            size = out["parameters"]["binary_data_size"]
            got = np.frombuffer(body[offset:offset + size], NP_TYPES[out["datatype"]])
            offset += size
            assert out["shape"] == want["shape"]
            check(got, want["data"], ref)
        assert offset == len(body)


def test_tfserving_predict_row_and_columnar(serve, repository):
    ref = reference(repository, "mlp")
    case = ref["cases"][-1]
    x = as_array(case["inputs"][0])
    status, res = serve.json("POST", "/v1/models/mlp:predict", {"instances": x.tolist()})
    assert status == 200, res
    check(res["predictions"], case["outputs"][0]["data"], ref)

    ref = reference(repository, "dlrm")
    case = ref["cases"][-1]
    inputs = {t["name"]: as_array(t).tolist() for t in case["inputs"]}
    status, res = serve.json("POST", "/v1/models/dlrm/versions/1:predict", {"inputs": inputs})
    assert status == 200, res
    check(res["outputs"], case["outputs"][0]["data"], ref)
    rows = [{k: v[i] for k, v in inputs.items()} for i in range(len(inputs["dense"]))]
    status, res = serve.json("POST", "/v1/models/dlrm:predict", {"instances": rows})
    assert status == 200, res
    check(res["predictions"], case["outputs"][0]["data"], ref)

    status, res = serve.json("POST", "/v1/models/nope:predict", {"instances": [[1]]})
    assert status == 404 and "nope" in res["error"]


def test_metadata_status_and_index(serve):
    status, meta = serve.json("GET", "/v2/models/mlp")
    assert status == 200
    assert meta["platform"] == "pytorch_torchscript" and meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 256]}]
    status, meta = serve.json("GET", "/v2/models/fraud_xgb/versions/1")
    assert status == 200 and meta["platform"] == "xgboost"
    assert serve.call("GET", "/v2/models/dlrm/ready")[0] == 200
    assert serve.call("GET", "/v2/health/ready")[0] == 200
    assert serve.call("GET", "/v2/health/live")[0] == 200
    status, server = serve.json("GET", "/v2")
    assert status == 200 and "binary_tensor_data" in server["extensions"]
    status, tf = serve.json("GET", "/v1/models/mlp")
    assert tf == {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    status, index = serve.json("POST", "/v2/repository/index", {})
    assert status == 200
    assert sorted((e["name"], e["version"], e["state"]) for e in index) == [
        ("dlrm", "1", "READY"), ("fraud_xgb", "1", "READY"), ("mlp", "1", "READY")]
    status, cfg = serve.json("GET", "/v2/models/mlp/config")
    assert status == 200 and cfg["max_batch_size"] == 256
    # No token configured: management is refused, saying how to enable it.
    status, res = serve.json("POST", "/v2/repository/models/mlp/unload", {})
    assert status == 403 and "--token-file" in res["error"]


def test_bad_requests_name_the_problem(serve):
    status, res = serve.json("POST", "/v2/models/mlp/infer", {
        "inputs": [{"name": "x", "shape": [1, 255], "datatype": "FP32", "data": [0] * 255}]})
    assert status == 400 and '"x"' in res["error"]
    status, res = serve.json("POST", "/v2/models/dlrm/infer", {
        "inputs": [{"name": "dense", "shape": [1, 13], "datatype": "FP64", "data": [0] * 13}]})
    assert status == 400 and "dense" in res["error"]
    header = json.dumps({"inputs": [{"name": "x", "shape": [1, 256], "datatype": "FP32",
                                     "parameters": {"binary_data_size": 1024}}]}).encode()
    status, _, body = serve.call("POST", "/v2/models/mlp/infer", header + b"\0" * 100,
                                 {"Inference-Header-Content-Length": str(len(header))})
    assert status == 400 and 'inputs[0] "x"' in json.loads(body)["error"]
    good = {"inputs": [{"name": "x", "shape": [1, 256], "datatype": "FP32", "data": [0] * 256}]}
    status, res = serve.json("POST", "/v2/models/mlp/versions/3/infer", good)
    assert status == 404 and "3" in res["error"]


def test_metrics_and_stats(serve):
    body = {"inputs": [{"name": "x", "shape": [1, 256], "datatype": "FP32", "data": [0.5] * 256}]}
    assert serve.json("POST", "/v2/models/mlp/infer", body)[0] == 200
    status, _, text = serve.call("GET", "/metrics")
    text = text.decode()
    assert status == 200
    assert 'lathe_inference_request_success_total{model="mlp",version="1"}' in text
    assert "lathe_inference_overload_level" in text
    assert "process_resident_memory_bytes" in text
    status, stats = serve.json("GET", "/v2/models/mlp/stats")
    assert status == 200 and stats["model_stats"][0]["inference_count"] >= 1


def test_explicit_mode_with_tokens(repository, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("# serving tokens\nsecret-1\n")
    s = Serve(repository, tmp_path, ["--model-control-mode", "explicit", "--load-model", "mlp",
                                     "--token-file", str(tokens)])
    try:
        auth = {"Authorization": "Bearer secret-1"}
        assert s.call("GET", "/v2/health/ready")[0] == 200
        assert s.call("GET", "/v2/models/mlp")[0] == 401
        assert s.call("GET", "/v2/models/mlp", headers=auth)[0] == 200
        assert s.call("GET", "/v2/models/dlrm", headers=auth)[0] == 404
        assert s.call("POST", "/v2/repository/models/dlrm/load", b"{}")[0] == 401
        status, _, body = s.call("POST", "/v2/repository/models/dlrm/load", b"{}", auth)
        assert status == 200, body
        assert s.call("GET", "/v2/models/dlrm/ready", headers=auth)[0] == 200
        assert s.call("POST", "/v2/repository/models/dlrm/unload", b"{}", auth)[0] == 200
        assert s.call("GET", "/v2/models/dlrm/ready", headers=auth)[0] != 200
    finally:
        assert s.stop(signal.SIGINT) == 0, s.logs()


def test_poll_mode_hot_reload_loses_no_request(repository, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copytree(os.path.join(repository, "mlp"), repo / "mlp")
    s = Serve(repo, tmp_path, ["--model-control-mode", "poll", "--poll-interval-ms", "100"])
    body = {"inputs": [{"name": "x", "shape": [1, 256], "datatype": "FP32", "data": [0.1] * 256}]}
    stop = threading.Event()
    results = []

    def client():
        while not stop.is_set():
            status, res = s.json("POST", "/v2/models/mlp/infer", body)
            results.append((status, res.get("model_version") if status == 200 else res))

    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(client) for _ in range(4)]
            time.sleep(0.5)
            # A new version appears atomically: built aside, renamed into place.
            shutil.copytree(repo / "mlp" / "1", repo / ".staging")
            os.rename(repo / ".staging", repo / "mlp" / "2")
            deadline = time.time() + 30
            while time.time() < deadline:
                if results and results[-1] == (200, "2"):
                    break
                time.sleep(0.05)
            time.sleep(0.5)  # requests keep flowing after the swap
            stop.set()
            for f in futures:
                f.result()
        failures = [r for r in results if r[0] != 200]
        assert not failures, failures[:5]
        versions = [v for _, v in results]
        assert versions[-1] == "2", "version 2 never served"
        assert "1" in versions
        status, meta = s.json("GET", "/v2/models/mlp")
        assert meta["versions"] == ["2"]
    finally:
        assert s.stop() == 0, s.logs()
    assert not os.path.exists(s.url_file)


def test_cli_errors_are_clear(repository, tmp_path):
    def run(*args):
        return subprocess.run([LATHE, "serve", *args], capture_output=True, text=True, timeout=30)

    r = run()
    assert r.returncode != 0 and "--repository" in r.stderr
    r = run("--repository", str(tmp_path / "missing"))
    assert r.returncode != 0 and "not a directory" in r.stderr
    r = run("--repository", str(repository), "--load-model", "mlp")
    assert r.returncode != 0 and "explicit" in r.stderr
    r = run("--repository", str(repository), "--http", "localhost")
    assert r.returncode != 0 and "ADDRESS:PORT" in r.stderr
    r = run("--repository", str(repository), "--grpc", "8001")
    assert r.returncode != 0 and "--grpc" in r.stderr
    r = run("--repository", str(repository), "--model-control-mode", "sometimes")
    assert r.returncode != 0 and "model-control-mode" in r.stderr
    r = run("--help")
    assert r.returncode == 0 and "--token-file" in r.stdout
