"""Run artifacts through the real binary (docs/tracking.md "Artifacts"):
the MLflow artifact proxy as an MLflow client drives it (protocols.md §5.5,
§5.9: runs/get then one PUT per file; list; download; delete), the MLflow
artifacts/list RPC, the native routes, streaming (a 50 MB upload and
download in constant server memory), the upload limit (413, nothing
stored), path safety over HTTP (.., %2e%2e, %2F, absolute, a symbolic link
planted on disk) and tenancy (viewers read only, unknown runs, other
projects). SQLite, and PostgreSQL when configured.
"""
import hashlib
import http.client
import json
import os
import time
import urllib.parse

import pytest

from conftest import Server

PROXY = "/api/2.0/mlflow-artifacts/artifacts"
MLFLOW = "/api/2.0/mlflow"
CLIENT_VERSION = "3.6.0"


class Wire:
    """Raw HTTP on one keep-alive connection, as requests/urllib3 (the MLflow
    client) and the Lathe SDK send it; bodies are bytes."""

    def __init__(self, server, token, headers=None):
        parsed = urllib.parse.urlparse(server.url)
        self.host, self.port = parsed.hostname, parsed.port
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        self.headers = {"Authorization": "Bearer " + token,
                        "X-MLflow-Client-Version": CLIENT_VERSION,
                        "User-Agent": "mlflow-python-client/" + CLIENT_VERSION}
        self.headers.update(headers or {})

    def call(self, method, path, body=None, headers=None):
        """Returns (status, headers, body bytes)."""
        h = dict(self.headers)
        h.update(headers or {})
        try:
            self.conn.request(method, path, body=body, headers=h)
            res = self.conn.getresponse()
            data = res.read()
        except (http.client.HTTPException, ConnectionError):
            self.conn.close()
            raise
        if res.getheader("Connection", "").lower() == "close":
            self.conn.close()
        return res.status, res, data

    def json(self, method, path, body=None, headers=None):
        status, _, data = self.call(method, path, body, headers)
        return status, (json.loads(data) if data else None)

    def close(self):
        self.conn.close()


def rpc_body(body):
    return json.dumps(body).encode()


@pytest.fixture
def admin(server):
    w = Wire(server, server.admin_token)
    yield w
    w.close()


def create_run(wire, project_header=None):
    headers = {"Content-Type": "application/json"}
    if project_header:
        headers["X-Lathe-Project"] = project_header
    status, res = wire.json("POST", MLFLOW + "/runs/create",
                            rpc_body({"experiment_id": "0", "start_time": int(time.time() * 1000)}),
                            headers)
    assert status == 200, res
    info = res["run"]["info"]
    return info["experiment_id"], info["run_id"], info["artifact_uri"]


def proxy_path(exp, run, rel=""):
    return f"{PROXY}/{exp}/{run}/artifacts" + (f"/{rel}" if rel else "")


def run_dir(server, exp, run):
    return os.path.join(server.home, "artifacts", exp, run, "artifacts")


def tree(root):
    """Every file and directory under `root`, relative."""
    out = set()
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            out.add(os.path.relpath(os.path.join(dirpath, name), root))
    return out


def assert_mlflow_error(answer, http_status, code):
    status, body = answer
    assert status == http_status, body
    assert body["error_code"] == code, body
    return body["message"]


# ---- the MLflow client's sequences

def test_log_text_and_log_artifact_then_download_list_and_delete(server, admin):
    exp, run, uri = create_run(admin)
    assert uri == f"mlflow-artifacts:/{exp}/{run}/artifacts"
    # log_text("hello", "notes/hello.txt"): runs/get, then one PUT.
    status, got = admin.json("GET", MLFLOW + f"/runs/get?run_uuid={run}&run_id={run}")
    assert status == 200 and got["run"]["info"]["artifact_uri"] == uri
    status, res = admin.json("PUT", proxy_path(exp, run, "notes/hello.txt"), b"hello",
                             {"Content-Type": "text/plain"})
    assert (status, res) == (200, {})
    # log_artifact("model.pkl", "model") and a nested directory.
    blob = bytes(range(256)) * 40
    assert admin.json("PUT", proxy_path(exp, run, "model/model.pkl"), blob,
                      {"Content-Type": "application/octet-stream"}) == (200, {})
    assert admin.json("PUT", proxy_path(exp, run, "model/data/weights.bin"), b"w" * 10) == (200, {})
    assert admin.json("PUT", proxy_path(exp, run, "model/MLmodel"), b"flavors: {}\n") == (200, {})
    # An empty file, and a replaced one.
    assert admin.json("PUT", proxy_path(exp, run, "empty.txt"), b"") == (200, {})
    assert admin.json("PUT", proxy_path(exp, run, "notes/hello.txt"), b"hello again") == (200, {})

    # Download: the bytes, a guessed type, as an attachment.
    status, res, data = admin.call("GET", proxy_path(exp, run, "notes/hello.txt"))
    assert status == 200 and data == b"hello again"
    assert res.getheader("Content-Type").startswith("text/plain")
    assert res.getheader("X-Content-Type-Options") == "nosniff"
    assert "attachment" in res.getheader("Content-Disposition")
    status, res, data = admin.call("GET", proxy_path(exp, run, "model/model.pkl"))
    assert status == 200 and data == blob
    assert res.getheader("Content-Type") == "application/octet-stream"
    status, _, data = admin.call("GET", proxy_path(exp, run, "empty.txt"))
    assert status == 200 and data == b""
    # The ajax-api prefix serves the same.
    status, _, data = admin.call("GET", "/ajax-api/2.0/mlflow-artifacts/artifacts/"
                                 f"{exp}/{run}/artifacts/model/MLmodel")
    assert status == 200 and data == b"flavors: {}\n"

    # list_artifacts through the proxy: base names of the listed directory,
    # file_size for files only, is_dir always.
    q = urllib.parse.urlencode({"path": f"{exp}/{run}/artifacts"})
    status, res = admin.json("GET", f"{PROXY}?{q}")
    assert status == 200, res
    assert res["files"] == [
        {"path": "empty.txt", "is_dir": False, "file_size": 0},
        {"path": "model", "is_dir": True},
        {"path": "notes", "is_dir": True},
    ]
    q = urllib.parse.urlencode({"path": f"{exp}/{run}/artifacts/model"})
    status, res = admin.json("GET", f"{PROXY}?{q}")
    assert res["files"] == [
        {"path": "MLmodel", "is_dir": False, "file_size": 12},
        {"path": "data", "is_dir": True},
        {"path": "model.pkl", "is_dir": False, "file_size": len(blob)},
    ]
    q = urllib.parse.urlencode({"path": f"{exp}/{run}/artifacts/model/data/"})
    assert admin.json("GET", f"{PROXY}?{q}")[1]["files"] == [
        {"path": "weights.bin", "is_dir": False, "file_size": 10}]
    q = urllib.parse.urlencode({"path": f"{exp}/{run}/artifacts/absent"})
    assert admin.json("GET", f"{PROXY}?{q}") == (200, {})

    # artifacts/list: paths relative to the run's artifact root.
    status, res = admin.json("GET", MLFLOW + f"/artifacts/list?run_id={run}")
    assert status == 200 and res["root_uri"] == uri
    assert [f["path"] for f in res["files"]] == ["empty.txt", "model", "notes"]
    status, res = admin.json("GET", MLFLOW + f"/artifacts/list?run_uuid={run}&path=model")
    assert res["files"] == [
        {"path": "model/MLmodel", "is_dir": False, "file_size": 12},
        {"path": "model/data", "is_dir": True},
        {"path": "model/model.pkl", "is_dir": False, "file_size": len(blob)},
    ]
    assert "next_page_token" not in res
    status, res = admin.json("GET", MLFLOW + f"/artifacts/list?run_id={run}&path=model/data")
    assert res["files"] == [{"path": "model/data/weights.bin", "is_dir": False, "file_size": 10}]
    status, res = admin.json("GET", "/ajax-api/2.0/mlflow/artifacts/list?run_id=" + run + "&path=notes")
    assert res["files"] == [{"path": "notes/hello.txt", "is_dir": False, "file_size": 11}]

    # Delete a file, then a directory; deleting again is still {} (retries).
    assert admin.json("DELETE", proxy_path(exp, run, "notes/hello.txt")) == (200, {})
    assert admin.json("DELETE", proxy_path(exp, run, "notes/hello.txt")) == (200, {})
    assert admin.call("GET", proxy_path(exp, run, "notes/hello.txt"))[0] == 404
    assert admin.json("DELETE", proxy_path(exp, run, "model")) == (200, {})
    res = admin.json("GET", MLFLOW + f"/artifacts/list?run_id={run}")[1]
    assert [f["path"] for f in res["files"]] == ["empty.txt", "notes"]
    assert tree(run_dir(server, exp, run)) == {"empty.txt", "notes"}
    # The spooled bodies were all moved or removed.
    assert os.listdir(os.path.join(server.home, "artifacts", ".spool")) == []


def test_multipart_is_refused_so_clients_fall_back_to_one_put(admin):
    exp, run, _ = create_run(admin)
    for step in ("create", "complete", "abort"):
        message = assert_mlflow_error(
            admin.json("POST", f"/api/2.0/mlflow-artifacts/mpu/{step}/{exp}/{run}/artifacts/big.bin",
                       rpc_body({"path": "big.bin", "num_parts": 2}),
                       {"Content-Type": "application/json"}),
            501, "NOT_IMPLEMENTED")
        assert message.startswith(
            "Multipart upload is not supported for the current artifact repository")


# ---- native routes (the Lathe SDK's log_artifact)

def test_native_put_get_list_delete(server, admin):
    _, run, uri = create_run(admin)
    base = f"/api/v1/projects/default/runs/{run}/artifacts"
    status, res = admin.json("PUT", base + "/plots/loss.png", b"\x89PNG...")
    assert (status, res) == (201, {"path": "plots/loss.png", "file_size": 7})
    assert admin.json("PUT", base + "/plots/deep/er/x.csv", b"a,b\n1,2\n")[0] == 201
    # Percent-encoded names decode once: "a b%25.txt" is stored as "a b%.txt".
    status, res = admin.json("PUT", base + "/plots/a%20b%25.txt", b"pct")
    assert (status, res) == (201, {"path": "plots/a b%.txt", "file_size": 3})
    status, res, data = admin.call("GET", base + "/plots/loss.png")
    assert (status, data) == (200, b"\x89PNG...")
    assert res.getheader("Content-Type") == "image/png"
    assert admin.call("GET", base + "/plots/a%20b%25.txt")[2] == b"pct"

    status, res = admin.json("GET", base)
    assert status == 200 and res == {"root_uri": uri, "files": [
        {"path": "plots", "is_dir": True, "file_size": 0}]}
    status, res = admin.json("GET", base + "?path=plots")
    assert [(f["path"], f["is_dir"], f["file_size"]) for f in res["files"]] == [
        ("plots/a b%.txt", False, 3), ("plots/deep", True, 0), ("plots/loss.png", False, 7)]
    assert admin.json("GET", base + "?path=nothing/here") == (200, {"root_uri": uri, "files": []})

    status, _, data = admin.call("DELETE", base + "/plots/loss.png")
    assert (status, data) == (204, b"")
    status, err = admin.json("DELETE", base + "/plots/loss.png")
    assert status == 404 and err["error"]["code"] == "NOT_FOUND"
    assert admin.json("GET", base + "/plots/loss.png")[0] == 404
    assert admin.call("DELETE", base + "/plots")[0] == 204
    assert admin.json("GET", base)[1]["files"] == []
    # A directory is not downloadable.
    admin.json("PUT", base + "/d/f", b"x")
    status, err = admin.json("GET", base + "/d")
    assert status == 404 and err["error"]["code"] == "NOT_FOUND"
    # A file where a directory would be, and a directory where a file would be.
    status, err = admin.json("PUT", base + "/d/f/g", b"x")
    assert status == 400 and err["error"]["field"] == "path", err
    status, err = admin.json("PUT", base + "/d", b"x")
    assert status == 400 and err["error"]["field"] == "path", err


# ---- streaming and limits

def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_50mb_upload_and_download_stream_in_constant_memory(server, admin):
    exp, run, _ = create_run(admin)
    size = 50 * 1024 * 1024
    chunk = hashlib.sha256(b"seed").digest() * (1 << 15)  # 1 MiB, not compressible by accident
    digest = hashlib.sha256()
    for _ in range(size // len(chunk)):
        digest.update(chunk)
    # Warm the server up (allocator arenas, one small upload) before the baseline.
    assert admin.json("PUT", proxy_path(exp, run, "warm.bin"), chunk[:4096]) == (200, {})
    before = vm_hwm_kib(server.proc.pid)

    def body():
        for _ in range(size // len(chunk)):
            yield chunk

    status, res, _ = admin.call("PUT", proxy_path(exp, run, "big/blob.bin"), body(),
                                {"Content-Length": str(size),
                                 "Content-Type": "application/octet-stream"})
    assert status == 200
    after_upload = vm_hwm_kib(server.proc.pid)
    on_disk = os.path.join(run_dir(server, exp, run), "big", "blob.bin")
    assert os.path.getsize(on_disk) == size

    # Download, read in pieces.
    admin.conn.request("GET", proxy_path(exp, run, "big/blob.bin"), headers=admin.headers)
    res = admin.conn.getresponse()
    assert res.status == 200 and int(res.getheader("Content-Length")) == size
    got = hashlib.sha256()
    while True:
        piece = res.read(1 << 20)
        if not piece:
            break
        got.update(piece)
    assert got.hexdigest() == digest.hexdigest()
    after_download = vm_hwm_kib(server.proc.pid)
    # The server's peak resident memory grew by far less than the file.
    limit_kib = 12 * 1024
    assert after_upload - before < limit_kib, (before, after_upload)
    assert after_download - before < limit_kib, (before, after_download)


def put_raw(server, path, token, body_len, chunked=False, chunk=64 * 1024):
    """Sends a PUT of `body_len` bytes; returns the status, tolerating a
    server that answers (413) and closes before the body is all sent."""
    parsed = urllib.parse.urlparse(server.url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    conn.putrequest("PUT", path)
    conn.putheader("Authorization", "Bearer " + token)
    if chunked:
        conn.putheader("Transfer-Encoding", "chunked")
    else:
        conn.putheader("Content-Length", str(body_len))
    conn.endheaders()
    sent = 0
    try:
        while sent < body_len:
            n = min(chunk, body_len - sent)
            data = b"z" * n
            conn.send(b"%x\r\n%s\r\n" % (n, data) if chunked else data)
            sent += n
        if chunked:
            conn.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        res = conn.getresponse()
        status, text = res.status, res.read()
    finally:
        conn.close()
    return status, text


@pytest.fixture
def small_server(tmp_path, store_url):
    s = Server(tmp_path / "home", store=store_url,
               extra_args=["--set", "artifacts.max_file_bytes=1Mi"]).start()
    yield s
    s.stop()


def test_an_upload_over_the_limit_is_413_and_stores_nothing(small_server):
    server = small_server
    admin = Wire(server, server.admin_token)
    exp, run, _ = create_run(admin)
    limit = 1 << 20
    assert admin.json("PUT", proxy_path(exp, run, "at-limit.bin"), b"a" * limit) == (200, {})
    native = f"/api/v1/projects/default/runs/{run}/artifacts"
    for path, chunked in ((proxy_path(exp, run, "big.bin"), False),
                          (proxy_path(exp, run, "big-chunked.bin"), True),
                          (native + "/big-native.bin", False),
                          (native + "/big-native-chunked.bin", True)):
        status, text = put_raw(server, path, server.admin_token, 3 * limit, chunked=chunked)
        assert status == 413, (path, chunked, text)
    assert tree(run_dir(server, exp, run)) == {"at-limit.bin"}
    spool = os.path.join(server.home, "artifacts", ".spool")
    deadline = time.time() + 5
    while os.listdir(spool) and time.time() < deadline:
        time.sleep(0.05)
    assert os.listdir(spool) == []
    # Other requests are not limited by it: a 2 MiB JSON body is not an upload.
    status, res = admin.json("POST", MLFLOW + "/experiments/create",
                             rpc_body({"name": "padded", "pad": "x" * (2 << 20)}),
                             {"Content-Type": "application/json"})
    assert status == 200, res
    admin.close()


# ---- path safety over HTTP

def test_traversal_encoded_separators_and_absolute_paths_are_refused(server, admin):
    exp, run, _ = create_run(admin)
    home = server.home
    before = tree(home)
    native = f"/api/v1/projects/default/runs/{run}/artifacts"
    bad_tails = ["../escape.txt", "a/../../escape.txt", "%2e%2e/escape.txt", "%2E%2E/%2e%2e/x",
                 "a%2F..%2F..%2Fescape.txt", "%2Fetc%2Fpasswd", "a%2Fb", "./x", "a/./b",
                 "a%5C..%5Cx", "a%00b", "a%0Ab", "%", "a%zz"]
    # Some never reach a handler ("%" is a malformed request, "a//b" no
    # route): 400 or 404 either way, and nothing written.
    for tail in bad_tails:
        for path in (proxy_path(exp, run, tail), f"{native}/{tail}"):
            for method in ("PUT", "GET", "DELETE"):
                status, _, _ = admin.call(method, path, b"evil" if method == "PUT" else None)
                assert status in (400, 404), (method, path, status)
    # Those a handler sees answer 400 naming the path, in each API's format.
    for tail in ("..", "../escape.txt", "%2e%2e/x", "..%2Fescape.txt", "a%2Fb", "%2Fetc%2Fpasswd",
                 "a/./b", "a%5Cb", "a%00b", "a%0Ab"):
        status, res = admin.json("PUT", f"{native}/{tail}", b"evil")
        assert status == 400, (tail, res)
        assert res["error"]["code"] == "INVALID_ARGUMENT" and res["error"]["field"] == "path", res
        assert "path" in res["error"]["message"], res
        status, res = admin.json("PUT", proxy_path(exp, run, tail), b"evil")
        assert status == 400 and res["error_code"] == "INVALID_PARAMETER_VALUE", (tail, res)
    # Absolute, or climbing out of the run, in the proxy's path argument.
    for path in (f"/{exp}/{run}/artifacts", f"{exp}/{run}/artifacts/../../{run}/artifacts",
                 f"{exp}/{run}/artifacts/..", f"{exp}/{run}", f"{exp}/{run}/other", ""):
        q = urllib.parse.urlencode({"path": path})
        assert_mlflow_error(admin.json("GET", f"{PROXY}?{q}"), 400, "INVALID_PARAMETER_VALUE")
    assert_mlflow_error(admin.json("GET", MLFLOW + f"/artifacts/list?run_id={run}&path=../x"), 400,
                        "INVALID_PARAMETER_VALUE")
    assert admin.json("GET", f"{native}?path=/etc")[0] == 400
    # A raw "/../" in the target, which no client normalised away.
    admin.conn.request("PUT", f"{native}/x/../../../../escape.txt", body=b"evil",
                       headers=admin.headers)
    res = admin.conn.getresponse()
    res.read()
    assert res.status in (400, 404)
    # Nothing was written anywhere.
    assert {p for p in tree(home) - before if "escape" in p or "evil" in p} == set()
    assert not os.path.exists(run_dir(server, exp, run)) or tree(run_dir(server, exp, run)) == set()


def test_a_symlink_planted_on_disk_is_never_followed(server, admin, tmp_path):
    exp, run, _ = create_run(admin)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    assert admin.json("PUT", proxy_path(exp, run, "keep.txt"), b"k") == (200, {})
    rd = run_dir(server, exp, run)
    os.symlink(outside, os.path.join(rd, "escape"))
    os.symlink(outside / "secret.txt", os.path.join(rd, "link.txt"))
    native = f"/api/v1/projects/default/runs/{run}/artifacts"

    # Writes through the directory link or onto the file link are refused.
    for rel in ("escape/planted.txt", "escape/new/planted.txt", "link.txt"):
        assert_mlflow_error(admin.json("PUT", proxy_path(exp, run, rel), b"x"), 400,
                            "INVALID_PARAMETER_VALUE")
        status, res = admin.json("PUT", f"{native}/{rel}", b"x")
        assert status == 409 and res["error"]["code"] == "FAILED_PRECONDITION", res
    # Reads through them are refused; listing does not show them.
    for rel in ("escape/secret.txt", "link.txt"):
        status, _, data = admin.call("GET", proxy_path(exp, run, rel))
        assert status == 400 and b"secret" not in data
        assert admin.call("GET", f"{native}/{rel}")[0] == 409
    q = urllib.parse.urlencode({"path": f"{exp}/{run}/artifacts"})
    assert admin.json("GET", f"{PROXY}?{q}")[1]["files"] == [
        {"path": "keep.txt", "is_dir": False, "file_size": 1}]
    assert admin.json("GET", f"{native}?path=escape")[0] == 409
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "secret"


# ---- tenancy

def test_viewer_reads_but_cannot_upload_or_delete(server, admin):
    root = server.admin_token
    assert server.request("POST", "/api/v1/users", root, {"name": "vera"})[0] == 201
    assert server.request("PUT", "/api/v1/projects/default/members/vera", root,
                          {"role": "viewer"})[0] == 200
    _, tok = server.request("POST", "/api/v1/tokens", root, {"name": "v", "user": "vera"})
    viewer = Wire(server, tok["token"])
    exp, run, _ = create_run(admin)
    assert admin.json("PUT", proxy_path(exp, run, "a.txt"), b"a") == (200, {})
    native = f"/api/v1/projects/default/runs/{run}/artifacts"

    assert viewer.call("GET", proxy_path(exp, run, "a.txt"))[2] == b"a"
    assert viewer.call("GET", f"{native}/a.txt")[2] == b"a"
    assert viewer.json("GET", MLFLOW + f"/artifacts/list?run_id={run}")[0] == 200
    assert_mlflow_error(viewer.json("PUT", proxy_path(exp, run, "b.txt"), b"b"), 403,
                        "PERMISSION_DENIED")
    assert_mlflow_error(viewer.json("DELETE", proxy_path(exp, run, "a.txt")), 403,
                        "PERMISSION_DENIED")
    assert viewer.json("PUT", f"{native}/b.txt", b"b")[0] == 403
    assert viewer.json("DELETE", f"{native}/a.txt")[0] == 403
    assert tree(run_dir(server, exp, run)) == {"a.txt"}
    # No token at all.
    assert server.request("PUT", proxy_path(exp, run, "c.txt"), raw=b"c")[0] == 401
    assert server.request("PUT", f"{native}/c.txt", raw=b"c")[0] == 401
    assert server.request("GET", f"{native}/a.txt")[0] == 401
    viewer.close()


def test_unknown_run_wrong_experiment_and_other_projects(server, admin):
    exp, run, _ = create_run(admin)
    missing = "0" * 32
    assert_mlflow_error(admin.json("PUT", proxy_path(exp, missing, "a.txt"), b"a"), 404,
                        "RESOURCE_DOES_NOT_EXIST")
    assert_mlflow_error(admin.json("GET", proxy_path(exp, missing, "a.txt")), 404,
                        "RESOURCE_DOES_NOT_EXIST")
    q = urllib.parse.urlencode({"path": f"{exp}/{missing}/artifacts"})
    assert_mlflow_error(admin.json("GET", f"{PROXY}?{q}"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_mlflow_error(admin.json("GET", MLFLOW + f"/artifacts/list?run_id={missing}"), 404,
                        "RESOURCE_DOES_NOT_EXIST")
    # The right run under another experiment id.
    assert_mlflow_error(admin.json("PUT", proxy_path(str(int(exp) + 1000), run, "a.txt"), b"a"),
                        404, "RESOURCE_DOES_NOT_EXIST")
    assert admin.json("PUT", f"/api/v1/projects/default/runs/{missing}/artifacts/a.txt", b"a")[0] == 404

    # A run of another project: not reachable from "default", by either API.
    root = server.admin_token
    assert server.request("POST", "/api/v1/projects", root, {"name": "other"})[0] == 201
    oexp, orun, _ = create_run(admin, project_header="other")
    other = {"X-Lathe-Project": "other"}
    assert admin.json("PUT", proxy_path(oexp, orun, "o.txt"), b"o", other) == (200, {})
    assert_mlflow_error(admin.json("GET", proxy_path(oexp, orun, "o.txt")), 404,
                        "RESOURCE_DOES_NOT_EXIST")
    assert_mlflow_error(admin.json("PUT", proxy_path(oexp, orun, "x.txt"), b"x"), 404,
                        "RESOURCE_DOES_NOT_EXIST")
    assert admin.json("GET", f"/api/v1/projects/default/runs/{orun}/artifacts/o.txt")[0] == 404
    assert admin.call("GET", f"/api/v1/projects/other/runs/{orun}/artifacts/o.txt")[2] == b"o"
    # A token scoped to "other" cannot reach default's run.
    _, tok = server.request("POST", "/api/v1/tokens", root, {"name": "o", "project": "other"})
    scoped = Wire(server, tok["token"])
    assert admin.json("PUT", proxy_path(exp, run, "mine.txt"), b"m") == (200, {})
    assert_mlflow_error(scoped.json("GET", proxy_path(exp, run, "mine.txt")), 404,
                        "RESOURCE_DOES_NOT_EXIST")
    assert scoped.json("GET", f"/api/v1/projects/default/runs/{run}/artifacts/mine.txt")[0] == 404
    assert scoped.call("GET", proxy_path(oexp, orun, "o.txt"))[2] == b"o"
    scoped.close()


def test_a_deleted_run_keeps_its_artifacts_readable_but_not_writable(admin):
    exp, run, _ = create_run(admin)
    assert admin.json("PUT", proxy_path(exp, run, "a.txt"), b"a") == (200, {})
    assert admin.json("POST", MLFLOW + "/runs/delete", rpc_body({"run_id": run}),
                      {"Content-Type": "application/json"}) == (200, {})
    assert admin.call("GET", proxy_path(exp, run, "a.txt"))[2] == b"a"
    assert_mlflow_error(admin.json("PUT", proxy_path(exp, run, "b.txt"), b"b"), 400,
                        "INVALID_PARAMETER_VALUE")
