"""MLflow 3 logged models through the real binary (docs/mlflow.md "Logged
models"): an MLflow 3.6 client's `mlflow.<flavor>.log_model(...)` sequence
replayed on the wire (logged-models create → one PUT per file through the
mlflow-artifacts proxy to the model's artifact location → finalize READY →
runs/outputs → get), then search, `mlflow.register_model("models:/<id>")`
(model-versions/create with model_id), loading (list and download through
the proxy), tags, params, delete, and bad input with MLflow's error codes.
No MLflow client is installed here, so the requests are the ones
mlflow/store/tracking/rest_store.py sends (service.proto field names).
SQLite, and PostgreSQL when configured.
"""
import http.client
import json
import os
import time
import urllib.parse

import pytest

API = "/api/2.0/mlflow"
PROXY = "/api/2.0/mlflow-artifacts/artifacts"
CLIENT_VERSION = "3.6.0"


class Wire:
    """What mlflow.utils.rest_utils sends: JSON bodies for POST, PATCH and
    DELETE, query strings for GET, one keep-alive connection."""

    def __init__(self, server, token):
        parsed = urllib.parse.urlparse(server.url)
        self.conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        self.headers = {"Authorization": "Bearer " + token,
                        "X-MLflow-Client-Version": CLIENT_VERSION,
                        "User-Agent": "mlflow-python-client/" + CLIENT_VERSION}

    def raw(self, method, path, body=None, headers=None):
        h = dict(self.headers)
        h.update(headers or {})
        self.conn.request(method, path, body=body, headers=h)
        res = self.conn.getresponse()
        return res.status, res, res.read()

    def call(self, method, rpc, body=None, **query):
        path = API + rpc
        if query:
            path += "?" + urllib.parse.urlencode(query, doseq=True)
        data = json.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        status, _, text = self.raw(method, path, data, headers)
        return status, json.loads(text) if text else None

    def close(self):
        self.conn.close()


@pytest.fixture
def admin(server):
    w = Wire(server, server.admin_token)
    yield w
    w.close()


def assert_error(answer, http_status, code):
    status, body = answer
    assert status == http_status, body
    assert body["error_code"] == code, body
    return body["message"]


def create_experiment_and_run(wire, name="lm"):
    status, res = wire.call("POST", "/experiments/create", {"name": name})
    assert status == 200, res
    exp = res["experiment_id"]
    status, res = wire.call("POST", "/runs/create",
                            {"experiment_id": exp, "start_time": int(time.time() * 1000),
                             "tags": [{"key": "mlflow.user", "value": "u"}]})
    assert status == 200, res
    return exp, res["run"]["info"]["run_id"]


MODEL_FILES = {
    "MLmodel": b"artifact_path: null\nflavors:\n  python_function:\n    loader_module: mlflow.sklearn\n",
    "model.pkl": bytes(range(256)) * 16,
    "conda.yaml": b"name: mlflow-env\n",
    "python_env.yaml": b"python: 3.11\n",
    "requirements.txt": b"mlflow==3.6.0\nscikit-learn\n",
    "metadata/MLmodel": b"flavors: {}\n",
}


def proxy_rel(artifact_uri):
    """mlflow-artifacts:/<p> → <p>, as the client maps it."""
    assert artifact_uri.startswith("mlflow-artifacts:/"), artifact_uri
    return artifact_uri[len("mlflow-artifacts:/"):]


def log_model(wire, exp, run, name="model", params=None, tags=None):
    """mlflow.sklearn.log_model(model, name=name) inside a run (3.6)."""
    body = {"experiment_id": exp, "name": name, "source_run_id": run,
            "params": params or [], "tags": tags or [
                {"key": "mlflow.user", "value": "u"},
                {"key": "mlflow.source.name", "value": "train.py"},
                {"key": "mlflow.source.type", "value": "LOCAL"}]}
    status, res = wire.call("POST", "/logged-models", body)
    assert status == 200, res
    model = res["model"]
    model_id = model["info"]["model_id"]
    # One PUT per file to <artifact_uri>/<path>.
    base = PROXY + "/" + proxy_rel(model["info"]["artifact_uri"])
    for rel, data in MODEL_FILES.items():
        status, _, text = wire.raw("PUT", f"{base}/{rel}", data,
                                   {"Content-Type": "application/octet-stream"})
        assert (status, json.loads(text)) == (200, {}), text
    status, res = wire.call("PATCH", f"/logged-models/{model_id}",
                            {"model_id": model_id, "status": "LOGGED_MODEL_READY"})
    assert status == 200, res
    assert res["model"]["info"]["status"] == "LOGGED_MODEL_READY"
    status, res = wire.call("POST", "/runs/outputs",
                            {"run_id": run, "models": [{"model_id": model_id, "step": 0}]})
    assert (status, res) == (200, {}), res
    return model


def test_log_model_register_and_load(server, admin):
    exp, run = create_experiment_and_run(admin)
    created = log_model(admin, exp, run, params=[{"key": "alpha", "value": "0.5"}])
    info = created["info"]
    model_id = info["model_id"]
    # What LoggedModel.from_proto reads.
    assert model_id.startswith("m-") and len(model_id) == 34
    assert all(c in "0123456789abcdef" for c in model_id[2:])
    assert info["experiment_id"] == exp
    assert info["name"] == "model"
    assert info["artifact_uri"] == f"mlflow-artifacts:/{exp}/models/{model_id}/artifacts"
    assert info["status"] == "LOGGED_MODEL_PENDING"
    assert info["source_run_id"] == run
    assert isinstance(info["creation_timestamp_ms"], int)
    assert info["last_updated_timestamp_ms"] >= info["creation_timestamp_ms"]
    assert {t["key"] for t in info["tags"]} == {"mlflow.user", "mlflow.source.name",
                                                 "mlflow.source.type"}
    assert created["data"]["params"] == [{"key": "alpha", "value": "0.5"}]

    # get_logged_model after logging (ModelInfo).
    status, res = admin.call("GET", f"/logged-models/{model_id}")
    assert status == 200, res
    got = res["model"]
    assert got["info"]["status"] == "LOGGED_MODEL_READY"
    assert got["info"]["artifact_uri"] == info["artifact_uri"]
    assert got["data"]["params"] == [{"key": "alpha", "value": "0.5"}]
    # Files live beside the experiment's runs.
    on_disk = os.path.join(server.home, "artifacts", exp, "models", model_id, "artifacts", "model.pkl")
    with open(on_disk, "rb") as f:
        assert f.read() == MODEL_FILES["model.pkl"]

    # The run lists the model as its output (runs/get and runs/search).
    status, res = admin.call("GET", "/runs/get", run_id=run, run_uuid=run)
    assert status == 200
    assert res["run"]["outputs"] == {"model_outputs": [{"model_id": model_id, "step": 0}]}
    status, res = admin.call("POST", "/runs/search", {"experiment_ids": [exp]})
    assert res["runs"][0]["outputs"]["model_outputs"][0]["model_id"] == model_id
    # A replayed runs/outputs stores it once.
    assert admin.call("POST", "/runs/outputs",
                      {"run_id": run, "models": [{"model_id": model_id, "step": 0}]})[0] == 200
    status, res = admin.call("GET", "/runs/get", run_id=run)
    assert len(res["run"]["outputs"]["model_outputs"]) == 1

    # search_logged_models(experiment_ids=[exp], filter_string=…, order_by=[…]).
    status, res = admin.call("POST", "/logged-models/search",
                             {"experiment_ids": [exp], "filter": "name = 'model'",
                              "order_by": [{"field_name": "creation_timestamp", "ascending": False}],
                              "max_results": 50})
    assert status == 200, res
    assert [m["info"]["model_id"] for m in res["models"]] == [model_id]
    assert "next_page_token" not in res

    # mlflow.register_model("models:/<model_id>", "clf").
    assert admin.call("POST", "/registered-models/create", {"name": "clf"})[0] == 200
    status, res = admin.call("POST", "/model-versions/create",
                             {"name": "clf", "source": f"models:/{model_id}", "run_id": run,
                              "model_id": model_id})
    assert status == 200, res
    mv = res["model_version"]
    assert mv["version"] == "1" and mv["status"] == "READY"
    assert mv["run_id"] == run
    assert mv["source"] == info["artifact_uri"]
    status, res = admin.call("GET", "/model-versions/get-download-uri", name="clf", version="1")
    assert status == 200 and res["artifact_uri"] == info["artifact_uri"]
    # Without run_id the version is linked to the model's source run.
    status, res = admin.call("POST", "/model-versions/create",
                             {"name": "clf", "source": f"models:/{model_id}"})
    assert status == 200, res
    assert res["model_version"]["run_id"] == run
    # The model lists the versions made from it.
    status, res = admin.call("GET", f"/logged-models/{model_id}")
    tags = {t["key"]: t["value"] for t in res["model"]["info"]["tags"]}
    assert json.loads(tags["mlflow.modelVersions"]) == [{"name": "clf", "version": "1"},
                                                        {"name": "clf", "version": "2"}]

    # Loading models:/<model_id> (or models:/clf/1): list, then download.
    root = proxy_rel(info["artifact_uri"])
    status, _, text = admin.raw("GET", PROXY + "?" + urllib.parse.urlencode({"path": root}))
    assert status == 200, text
    listed = json.loads(text)["files"]
    assert {f["path"] for f in listed} == {"MLmodel", "model.pkl", "conda.yaml",
                                           "python_env.yaml", "requirements.txt", "metadata"}
    assert {f["path"]: f["is_dir"] for f in listed}["metadata"] is True
    assert {f["path"]: f.get("file_size") for f in listed}["model.pkl"] == 4096
    for rel, data in MODEL_FILES.items():
        status, _, body = admin.raw("GET", f"{PROXY}/{root}/{rel}")
        assert (status, body) == (200, data), rel
    # The logged-model artifact listing RPC.
    status, res = admin.call("GET", f"/logged-models/{model_id}/artifacts/directories",
                             artifact_directory_path="metadata")
    assert status == 200, res
    assert res["root_uri"] == info["artifact_uri"]
    assert res["files"] == [{"path": "metadata/MLmodel", "is_dir": False, "file_size": 12}]
    # The ajax prefix serves the same.
    status, _, _ = admin.raw("GET", f"/ajax-api/2.0/mlflow/logged-models/{model_id}")
    assert status == 200

    # Delete a file, then the model (soft): gone for reads, files and search.
    status, _, _ = admin.raw("DELETE", f"{PROXY}/{root}/conda.yaml")
    assert status == 200
    assert admin.raw("GET", f"{PROXY}/{root}/conda.yaml")[0] == 404
    assert admin.call("DELETE", f"/logged-models/{model_id}") == (200, {})
    assert admin.call("DELETE", f"/logged-models/{model_id}") == (200, {})  # a retry
    assert_error(admin.call("GET", f"/logged-models/{model_id}"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert admin.raw("GET", f"{PROXY}/{root}/model.pkl")[0] == 404
    status, res = admin.call("POST", "/logged-models/search", {"experiment_ids": [exp]})
    assert (status, res) == (200, {})


def test_tags_params_search_and_paging(server, admin):
    exp, run = create_experiment_and_run(admin, "lm-search")
    ids = []
    for i in range(4):
        status, res = admin.call("POST", "/logged-models",
                                 {"experiment_id": exp, "name": f"m{i}", "model_type": "Agent",
                                  "params": [{"key": "k", "value": str(i % 2)}]})
        assert status == 200, res
        ids.append(res["model"]["info"]["model_id"])
        assert res["model"]["info"]["model_type"] == "Agent"
        time.sleep(0.005)
    # set_logged_model_tags: last write wins; delete_logged_model_tag.
    mid = ids[0]
    for value in ("a", "b"):
        status, res = admin.call("PATCH", f"/logged-models/{mid}/tags",
                                 {"model_id": mid, "tags": [{"key": "team/x", "value": value}]})
        assert status == 200, res
    status, res = admin.call("GET", f"/logged-models/{mid}")
    assert res["model"]["info"]["tags"] == [{"key": "team/x", "value": "b"}]
    assert admin.call("DELETE", f"/logged-models/{mid}/tags/team/x") == (200, {})
    assert_error(admin.call("DELETE", f"/logged-models/{mid}/tags/team/x"), 404,
                 "RESOURCE_DOES_NOT_EXIST")
    # log_model_params: the same value again is fine, another is refused.
    assert admin.call("POST", f"/logged-models/{mid}/params",
                      {"model_id": mid, "params": [{"key": "k", "value": "0"}]}) == (200, {})
    assert_error(admin.call("POST", f"/logged-models/{mid}/params",
                            {"model_id": mid, "params": [{"key": "k", "value": "9"}]}),
                 400, "INVALID_PARAMETER_VALUE")
    # Finalize one as failed.
    status, res = admin.call("PATCH", f"/logged-models/{ids[3]}",
                             {"model_id": ids[3], "status": "LOGGED_MODEL_UPLOAD_FAILED"})
    assert res["model"]["info"]["status"] == "LOGGED_MODEL_UPLOAD_FAILED"

    def search(**body):
        body.setdefault("experiment_ids", [exp])
        status, res = admin.call("POST", "/logged-models/search", body)
        assert status == 200, res
        return [m["info"]["name"] for m in res.get("models", [])], res.get("next_page_token")

    assert search() == (["m3", "m2", "m1", "m0"], None)
    assert search(filter="params.k = '1'",
                  order_by=[{"field_name": "name", "ascending": True}]) == (["m1", "m3"], None)
    assert search(filter="status = 'LOGGED_MODEL_UPLOAD_FAILED'") == (["m3"], None)
    assert search(filter="name LIKE 'm%' AND model_type = 'Agent'",
                  order_by=[{"field_name": "name"}])[0] == ["m0", "m1", "m2", "m3"]
    first, token = search(max_results=3)
    assert first == ["m3", "m2", "m1"] and token
    assert search(max_results=3, page_token=token) == (["m0"], None)
    assert_error(admin.call("POST", "/logged-models/search",
                            {"experiment_ids": [exp], "filter": "colour = 'red'"}),
                 400, "INVALID_PARAMETER_VALUE")
    assert_error(admin.call("POST", "/logged-models/search",
                            {"experiment_ids": [exp], "max_results": 0}),
                 400, "INVALID_PARAMETER_VALUE")


def test_bad_input_and_access(server, admin):
    exp, run = create_experiment_and_run(admin, "lm-bad")
    unknown = "m-" + "0" * 32
    for method, rpc, body in [
            ("GET", f"/logged-models/{unknown}", None),
            ("PATCH", f"/logged-models/{unknown}", {"status": "LOGGED_MODEL_READY"}),
            ("DELETE", f"/logged-models/{unknown}", None),
            ("PATCH", f"/logged-models/{unknown}/tags", {"tags": [{"key": "a", "value": "b"}]}),
            ("POST", f"/logged-models/{unknown}/params", {"params": [{"key": "a", "value": "b"}]}),
            ("POST", "/runs/outputs", {"run_id": run, "models": [{"model_id": unknown, "step": 0}]})]:
        msg = assert_error(admin.call(method, rpc, body), 404, "RESOURCE_DOES_NOT_EXIST")
        assert unknown in msg
    # An unknown model's files.
    assert_error(admin.call("GET", "/logged-models/" + unknown + "/artifacts/directories"), 404,
                 "RESOURCE_DOES_NOT_EXIST")
    status, _, text = admin.raw("PUT", f"{PROXY}/{exp}/models/{unknown}/artifacts/x", b"x")
    assert status == 404 and json.loads(text)["error_code"] == "RESOURCE_DOES_NOT_EXIST"

    status, res = admin.call("POST", "/logged-models", {"experiment_id": exp, "name": "m"})
    mid = res["model"]["info"]["model_id"]
    # Bad status values.
    for bad in ("LOGGED_MODEL_PENDING", "DONE", ""):
        assert_error(admin.call("PATCH", f"/logged-models/{mid}", {"status": bad}), 400,
                     "INVALID_PARAMETER_VALUE")
    # Missing experiment, unknown experiment, bad names, limits.
    assert_error(admin.call("POST", "/logged-models", {"name": "x"}), 400,
                 "INVALID_PARAMETER_VALUE")
    assert_error(admin.call("POST", "/logged-models", {"experiment_id": "987654"}), 404,
                 "RESOURCE_DOES_NOT_EXIST")
    assert_error(admin.call("POST", "/logged-models", {"experiment_id": exp, "name": "a/b"}), 400,
                 "INVALID_PARAMETER_VALUE")
    assert_error(admin.call("POST", "/logged-models",
                            {"experiment_id": exp, "source_run_id": "f" * 32}),
                 400, "INVALID_PARAMETER_VALUE")
    assert_error(admin.call("PATCH", f"/logged-models/{mid}/tags",
                            {"tags": [{"key": "k", "value": "v" * 8001}]}),
                 400, "INVALID_PARAMETER_VALUE")
    assert_error(admin.call("PATCH", f"/logged-models/{mid}/tags",
                            {"tags": [{"key": "k" * 251, "value": "v"}]}),
                 400, "INVALID_PARAMETER_VALUE")
    assert_error(admin.call("POST", f"/logged-models/{mid}/params",
                            {"params": [{"key": f"p{i}", "value": "v"} for i in range(101)]}),
                 400, "INVALID_PARAMETER_VALUE")
    assert_error(admin.call("POST", f"/logged-models/{mid}/params",
                            {"params": [{"key": "p", "value": "v" * 6001}]}),
                 400, "INVALID_PARAMETER_VALUE")
    # A model's file path that escapes is refused as any other.
    status, _, text = admin.raw("PUT", f"{PROXY}/{exp}/models/{mid}/artifacts/%2e%2e/x", b"x")
    assert status == 400, text
    # The model must sit in the experiment its path names.
    status, _, _ = admin.raw("PUT", f"{PROXY}/0/models/{mid}/artifacts/x", b"x")
    assert status == 404

    # Viewers read but do not write; other projects do not see the model.
    status, res = server.request("POST", "/api/v1/users", server.admin_token,
                                 {"name": "vera"})
    assert status in (200, 201), res
    status, res = server.request("PUT", "/api/v1/projects/default/members/vera",
                                 server.admin_token, {"role": "viewer"})
    assert status in (200, 201, 204), res
    status, res = server.request("POST", "/api/v1/tokens", server.admin_token,
                                 {"name": "t", "user": "vera"})
    assert status in (200, 201), res
    viewer = Wire(server, res["token"])
    try:
        assert viewer.call("GET", f"/logged-models/{mid}")[0] == 200
        assert_error(viewer.call("PATCH", f"/logged-models/{mid}/tags",
                                 {"tags": [{"key": "a", "value": "b"}]}),
                     403, "PERMISSION_DENIED")
        assert_error(viewer.call("POST", "/logged-models", {"experiment_id": exp}), 403,
                     "PERMISSION_DENIED")
        status, _, _ = viewer.raw("PUT", f"{PROXY}/{exp}/models/{mid}/artifacts/x", b"x")
        assert status == 403
    finally:
        viewer.close()
    status, res = server.request("POST", "/api/v1/projects", server.admin_token, {"name": "other"})
    assert status in (200, 201), res
    other = Wire(server, server.admin_token)
    other.headers["X-Lathe-Project"] = "other"
    try:
        assert_error(other.call("GET", f"/logged-models/{mid}"), 404, "RESOURCE_DOES_NOT_EXIST")
    finally:
        other.close()
