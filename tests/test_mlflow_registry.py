"""Model registry over the real binary: the MLflow REST 2.0 registry
(../shared/research/protocols.md §5.4) replayed as a Python client sends it
(§5.9: registered-models/create, model-versions/create with a run link,
registered-models/alias, transition-stage, get-latest-versions,
get-download-uri, search, rename, delete-tag, delete), checking every field
an MLflow client reads and MLflow's error codes; then the native routes
under /api/v1/projects/{project}/models (docs/registry.md). Runs on SQLite
and, with LATHE_TEST_POSTGRES_URL, PostgreSQL.
"""
import http.client
import json
import re
import time
import urllib.parse

import pytest

API = "/api/2.0/mlflow"
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


class MlflowWire:
    """What mlflow.utils.rest_utils sends: JSON bodies for POST, PATCH and
    DELETE, query strings (repeated keys) for GET, keep-alive."""

    def __init__(self, server, token, prefix=API):
        parsed = urllib.parse.urlparse(server.url)
        self.conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        self.prefix = prefix
        self.headers = {"X-MLflow-Client-Version": "3.6.0",
                        "User-Agent": "mlflow-python-client/3.6.0"}
        if token is not None:
            self.headers["Authorization"] = "Bearer " + token

    def call(self, method, rpc, body=None, **query):
        path = self.prefix + rpc
        if query:
            path += "?" + urllib.parse.urlencode(query, doseq=True)
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=data, headers=headers)
        res = self.conn.getresponse()
        text = res.read().decode()
        try:
            return res.status, json.loads(text) if text else None
        except ValueError:
            return res.status, text

    def post(self, rpc, body):
        return self.call("POST", rpc, body)

    def patch(self, rpc, body):
        return self.call("PATCH", rpc, body)

    def delete(self, rpc, body):
        return self.call("DELETE", rpc, body)

    def get(self, rpc, **query):
        return self.call("GET", rpc, **query)


def now_ms():
    return int(time.time() * 1000)


def ok(answer):
    status, body = answer
    assert status == 200, body
    return body


def assert_error(answer, http_status, code):
    status, body = answer
    assert status == http_status, body
    assert body["error_code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    return body["message"]


@pytest.fixture
def mlflow(server):
    """An MLflow client of the admin, acting in the project "default"."""
    if server.request("GET", "/api/v1/projects/default", server.admin_token)[0] == 404:
        assert server.request("POST", "/api/v1/projects", server.admin_token,
                              {"name": "default"})[0] == 201
    wire = MlflowWire(server, server.admin_token)
    yield wire
    wire.conn.close()


def create_run(mlflow, **extra):
    body = {"experiment_id": "0", "user_id": "u", "start_time": now_ms(),
            "tags": [{"key": "mlflow.user", "value": "u"}]}
    body.update(extra)
    return ok(mlflow.post("/runs/create", body))["run"]


def check_version(v, name, version, **expect):
    """The fields an MLflow client reads from a ModelVersion."""
    assert v["name"] == name
    assert v["version"] == str(version)  # a string, as MLflow's proto says
    assert isinstance(v["creation_timestamp"], int)
    assert isinstance(v["last_updated_timestamp"], int)
    assert v["status"] == "READY"
    assert "source" in v
    for key, value in expect.items():
        if value is None:
            assert key not in v, v
        else:
            assert v[key] == value, (key, v)


# ---- §5.9 registry: the requests of mlflow.register_model and MlflowClient

def test_register_model_alias_stage_and_latest_versions(mlflow):
    run = create_run(mlflow)
    run_id = run["info"]["run_id"]
    artifact_uri = run["info"]["artifact_uri"]
    before = now_ms()

    # register_model: create the model (RESOURCE_ALREADY_EXISTS is fine for the client), then a version.
    res = ok(mlflow.post("/registered-models/create", {"name": "churn"}))
    model = res["registered_model"]
    assert model["name"] == "churn"
    assert before - 5000 <= model["creation_timestamp"] <= now_ms() + 5000
    assert model["last_updated_timestamp"] == model["creation_timestamp"]
    for empty in ("description", "latest_versions", "tags", "aliases"):
        assert empty not in model  # empty fields are left out
    msg = assert_error(mlflow.post("/registered-models/create", {"name": "churn"}), 400,
                       "RESOURCE_ALREADY_EXISTS")
    assert "churn" in msg

    source = f"{artifact_uri}/model"
    res = ok(mlflow.post("/model-versions/create", {
        "name": "churn", "source": source, "run_id": run_id,
        "run_link": f"http://ui/#/runs/{run_id}", "description": "first", "tags": [
            {"key": "framework", "value": "sklearn"}]}))
    v1 = res["model_version"]
    check_version(v1, "churn", 1, source=source, run_id=run_id, current_stage="None",
                  run_link=f"http://ui/#/runs/{run_id}", description="first", user_id="admin",
                  aliases=None)
    assert v1["tags"] == [{"key": "framework", "value": "sklearn"}]
    # The client polls until READY: it already is.
    res = ok(mlflow.get("/model-versions/get", name="churn", version="1"))
    assert res["model_version"]["status"] == "READY"
    assert res["model_version"] == v1

    # A second version without a run: run_id and description are left out.
    v2 = ok(mlflow.post("/model-versions/create", {"name": "churn",
                                                     "source": "s3://bucket/churn/2"}))["model_version"]
    check_version(v2, "churn", 2, run_id=None, description=None, tags=None)

    # registered-models/alias {"name","alias","version"}; version may be a string or a number.
    assert ok(mlflow.post("/registered-models/alias",
                          {"name": "churn", "alias": "champion", "version": "1"})) == {}
    assert ok(mlflow.post("/registered-models/alias",
                          {"name": "churn", "alias": "challenger", "version": 2})) == {}
    res = ok(mlflow.get("/registered-models/alias", name="churn", alias="champion"))
    check_version(res["model_version"], "churn", 1, aliases=["champion"])
    # Setting an existing alias moves it.
    assert ok(mlflow.post("/registered-models/alias",
                          {"name": "churn", "alias": "champion", "version": "2"})) == {}
    res = ok(mlflow.get("/registered-models/alias", name="churn", alias="champion"))
    check_version(res["model_version"], "churn", 2, aliases=["challenger", "champion"])
    model = ok(mlflow.get("/registered-models/get", name="churn"))["registered_model"]
    assert model["aliases"] == [{"alias": "challenger", "version": "2"},
                                {"alias": "champion", "version": "2"}]
    assert [v["version"] for v in model["latest_versions"]] == ["2"]
    assert model["last_updated_timestamp"] >= model["creation_timestamp"]

    # transition-stage (deprecated stages, still what 2.x clients send).
    res = ok(mlflow.post("/model-versions/transition-stage", {
        "name": "churn", "version": "1", "stage": "Production", "archive_existing_versions": False}))
    check_version(res["model_version"], "churn", 1, current_stage="Production")
    res = ok(mlflow.post("/model-versions/transition-stage", {
        "name": "churn", "version": "2", "stage": "production", "archive_existing_versions": True}))
    check_version(res["model_version"], "churn", 2, current_stage="Production")
    res = ok(mlflow.get("/model-versions/get", name="churn", version="1"))
    assert res["model_version"]["current_stage"] == "Archived"

    # get-latest-versions, POST (2.x client) and GET.
    res = ok(mlflow.post("/registered-models/get-latest-versions",
                         {"name": "churn", "stages": ["Production"]}))
    assert [(v["version"], v["current_stage"]) for v in res["model_versions"]] == [("2", "Production")]
    res = ok(mlflow.get("/registered-models/get-latest-versions", name="churn",
                        stages=["Production", "Archived"]))
    assert sorted(v["version"] for v in res["model_versions"]) == ["1", "2"]
    res = ok(mlflow.get("/registered-models/get-latest-versions", name="churn"))
    assert sorted(v["current_stage"] for v in res["model_versions"]) == ["Archived", "Production"]
    assert ok(mlflow.post("/registered-models/get-latest-versions",
                          {"name": "churn", "stages": ["Staging"]})) == {}
    assert_error(mlflow.post("/registered-models/get-latest-versions",
                             {"name": "churn", "stages": ["Live"]}), 400, "INVALID_PARAMETER_VALUE")

    # get-download-uri: the source (a runs:/ source resolves to the run's artifacts).
    res = ok(mlflow.get("/model-versions/get-download-uri", name="churn", version="1"))
    assert res == {"artifact_uri": source}
    res = ok(mlflow.get("/model-versions/get-download-uri", name="churn", version="2"))
    assert res == {"artifact_uri": "s3://bucket/churn/2"}
    v3 = ok(mlflow.post("/model-versions/create", {"name": "churn", "source": f"runs:/{run_id}/model",
                                                     "run_id": run_id}))["model_version"]
    assert v3["version"] == "3"
    res = ok(mlflow.get("/model-versions/get-download-uri", name="churn", version="3"))
    assert res == {"artifact_uri": f"{artifact_uri}/model"}


def test_search_rename_tags_update_and_delete(mlflow):
    run_id = create_run(mlflow)["info"]["run_id"]
    for name in ("alpha", "beta", "gamma"):
        ok(mlflow.post("/registered-models/create",
                       {"name": name, "description": f"the {name} model",
                        "tags": [{"key": "team", "value": "ads" if name != "beta" else "risk"}]}))
        ok(mlflow.post("/model-versions/create", {"name": name, "source": f"s3://b/{name}",
                                                  "run_id": run_id}))
    ok(mlflow.post("/model-versions/create", {"name": "alpha", "source": "s3://b/alpha2"}))

    # search registered models: filter, order_by, pages.
    res = ok(mlflow.get("/registered-models/search", filter="name LIKE '%a'", max_results=10))
    assert [m["name"] for m in res["registered_models"]] == ["alpha", "beta", "gamma"]
    assert "next_page_token" not in res
    res = ok(mlflow.get("/registered-models/search", filter="tags.team = 'ads'",
                        order_by=["name DESC"]))
    assert [m["name"] for m in res["registered_models"]] == ["gamma", "alpha"]
    model = res["registered_models"][1]
    assert model["description"] == "the alpha model"
    assert model["tags"] == [{"key": "team", "value": "ads"}]
    assert [v["version"] for v in model["latest_versions"]] == ["2"]
    names, token, pages = [], None, 0
    while True:
        query = {"max_results": 2}
        if token:
            query["page_token"] = token
        res = ok(mlflow.get("/registered-models/search", **query))
        names += [m["name"] for m in res.get("registered_models", [])]
        pages += 1
        token = res.get("next_page_token")
        if not token:
            break
    assert names == ["alpha", "beta", "gamma"] and pages == 2
    assert ok(mlflow.get("/registered-models/search", filter="name = 'nope'")) == {}
    assert_error(mlflow.get("/registered-models/search", max_results=1001), 400,
                 "INVALID_PARAMETER_VALUE")
    msg = assert_error(mlflow.get("/registered-models/search", filter="name = 'a' OR name = 'b'"),
                       400, "INVALID_PARAMETER_VALUE")
    assert "filter" in msg

    # search model versions (what `mlflow models` and the UI send).
    res = ok(mlflow.get("/model-versions/search", filter=f"run_id = '{run_id}'"))
    assert [(v["name"], v["version"]) for v in res["model_versions"]] == [
        ("alpha", "1"), ("beta", "1"), ("gamma", "1")]
    res = ok(mlflow.get("/model-versions/search", filter="name = 'alpha'", max_results=1))
    assert [v["version"] for v in res["model_versions"]] == ["2"]
    token = res["next_page_token"]
    res = ok(mlflow.get("/model-versions/search", filter="name = 'alpha'", max_results=1,
                        page_token=token))
    assert [v["version"] for v in res["model_versions"]] == ["1"]
    assert "next_page_token" not in res
    res = ok(mlflow.get("/model-versions/search", filter="name='alpha'",
                        order_by=["version_number ASC"]))
    assert [v["version"] for v in res["model_versions"]] == ["1", "2"]

    # rename: versions, aliases and tags follow.
    ok(mlflow.post("/registered-models/alias", {"name": "alpha", "alias": "prod", "version": "1"}))
    res = ok(mlflow.post("/registered-models/rename", {"name": "alpha", "new_name": "alpha2"}))
    model = res["registered_model"]
    assert model["name"] == "alpha2"
    assert model["aliases"] == [{"alias": "prod", "version": "1"}]
    assert model["tags"] == [{"key": "team", "value": "ads"}]
    assert [v["name"] for v in model["latest_versions"]] == ["alpha2"]
    assert_error(mlflow.get("/registered-models/get", name="alpha"), 404, "RESOURCE_DOES_NOT_EXIST")
    res = ok(mlflow.get("/model-versions/get", name="alpha2", version="2"))
    assert res["model_version"]["source"] == "s3://b/alpha2"
    assert_error(mlflow.post("/registered-models/rename", {"name": "alpha2", "new_name": "beta"}),
                 400, "RESOURCE_ALREADY_EXISTS")

    # tags: set, then delete with a JSON body on DELETE; deleting again is fine.
    assert ok(mlflow.post("/registered-models/set-tag",
                          {"name": "alpha2", "key": "owner", "value": "kim"})) == {}
    assert ok(mlflow.delete("/registered-models/delete-tag", {"name": "alpha2", "key": "team"})) == {}
    assert ok(mlflow.delete("/registered-models/delete-tag", {"name": "alpha2", "key": "team"})) == {}
    model = ok(mlflow.get("/registered-models/get", name="alpha2"))["registered_model"]
    assert model["tags"] == [{"key": "owner", "value": "kim"}]
    assert ok(mlflow.post("/model-versions/set-tag",
                          {"name": "alpha2", "version": "1", "key": "k", "value": "v"})) == {}
    v = ok(mlflow.get("/model-versions/get", name="alpha2", version="1"))["model_version"]
    assert v["tags"] == [{"key": "k", "value": "v"}]
    assert ok(mlflow.delete("/model-versions/delete-tag",
                            {"name": "alpha2", "version": "1", "key": "k"})) == {}
    v = ok(mlflow.get("/model-versions/get", name="alpha2", version="1"))["model_version"]
    assert "tags" not in v

    # update descriptions (PATCH).
    res = ok(mlflow.patch("/registered-models/update", {"name": "alpha2", "description": "new"}))
    assert res["registered_model"]["description"] == "new"
    res = ok(mlflow.patch("/model-versions/update",
                          {"name": "alpha2", "version": "1", "description": "v1 notes"}))
    assert res["model_version"]["description"] == "v1 notes"

    # delete the alias, a version, then the model (DELETE with JSON bodies).
    assert ok(mlflow.delete("/registered-models/alias", {"name": "alpha2", "alias": "prod"})) == {}
    assert_error(mlflow.get("/registered-models/alias", name="alpha2", alias="prod"), 404,
                 "RESOURCE_DOES_NOT_EXIST")
    assert ok(mlflow.delete("/model-versions/delete", {"name": "alpha2", "version": "2"})) == {}
    assert_error(mlflow.get("/model-versions/get", name="alpha2", version="2"), 404,
                 "RESOURCE_DOES_NOT_EXIST")
    v3 = ok(mlflow.post("/model-versions/create", {"name": "alpha2", "source": "s3://b/3"}))
    assert v3["model_version"]["version"] == "3"  # numbers are never reused
    assert ok(mlflow.delete("/registered-models/delete", {"name": "alpha2"})) == {}
    assert_error(mlflow.get("/registered-models/get", name="alpha2"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(mlflow.delete("/registered-models/delete", {"name": "alpha2"}), 404,
                 "RESOURCE_DOES_NOT_EXIST")


def test_errors_name_the_parameter(server, mlflow):
    ok(mlflow.post("/registered-models/create", {"name": "m"}))
    ok(mlflow.post("/model-versions/create", {"name": "m", "source": "s3://m/1"}))
    assert_error(mlflow.get("/registered-models/get", name="nope"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(mlflow.get("/model-versions/get", name="m", version="7"), 404,
                 "RESOURCE_DOES_NOT_EXIST")
    assert_error(mlflow.post("/model-versions/create", {"name": "nope", "source": "s"}), 404,
                 "RESOURCE_DOES_NOT_EXIST")
    assert_error(mlflow.get("/registered-models/alias", name="m", alias="nope"), 404,
                 "RESOURCE_DOES_NOT_EXIST")
    assert_error(mlflow.post("/registered-models/alias", {"name": "m", "alias": "a", "version": "9"}),
                 404, "RESOURCE_DOES_NOT_EXIST")
    cases = [
        (mlflow.post("/registered-models/create", {}), "name"),
        (mlflow.post("/registered-models/create", {"name": "a/b"}), "name"),
        (mlflow.get("/registered-models/get"), "name"),
        (mlflow.post("/model-versions/create", {"name": "m"}), "source"),
        (mlflow.get("/model-versions/get", name="m"), "version"),
        (mlflow.get("/model-versions/get", name="m", version="one"), "version"),
        (mlflow.post("/model-versions/create", {"name": "m", "source": "s", "run_id": "f" * 32}),
         "run_id"),
        (mlflow.post("/model-versions/transition-stage",
                     {"name": "m", "version": "1", "stage": "Live",
                      "archive_existing_versions": False}), "stage"),
        (mlflow.post("/model-versions/transition-stage",
                     {"name": "m", "version": "1", "stage": "Archived",
                      "archive_existing_versions": True}), "archive_existing_versions"),
        (mlflow.post("/registered-models/alias", {"name": "m", "alias": "latest", "version": "1"}),
         "alias"),
        (mlflow.post("/registered-models/alias", {"name": "m", "alias": "v3", "version": "1"}),
         "alias"),
        (mlflow.post("/registered-models/set-tag",
                     {"name": "m", "key": "k" * 251, "value": "v"}), "key"),
        (mlflow.post("/registered-models/set-tag",
                     {"name": "m", "key": "k", "value": "v" * 100_001}), "value"),
        (mlflow.get("/model-versions/search", filter="version_number = 'x'"), "filter"),
        (mlflow.get("/registered-models/search", order_by=["bogus"]), "order_by"),
    ]
    for answer, param in cases:
        msg = assert_error(answer, 400, "INVALID_PARAMETER_VALUE")
        assert param in msg, (param, msg)
    # Limits hold at their edge.
    ok(mlflow.post("/registered-models/set-tag", {"name": "m", "key": "k" * 250, "value": "v" * 100_000}))
    ok(mlflow.post("/registered-models/alias", {"name": "m", "alias": "a" * 255, "version": "1"}))

    # The web UI's prefix serves the same routes.
    ajax = MlflowWire(server, server.admin_token, prefix="/ajax-api/2.0/mlflow")
    assert ok(ajax.get("/registered-models/get", name="m"))["registered_model"]["name"] == "m"
    # Authentication and roles.
    anon = MlflowWire(server, None)
    assert_error(anon.get("/registered-models/get", name="m"), 401, "UNAUTHENTICATED")
    admin = server.admin_token
    assert server.request("POST", "/api/v1/users", admin, {"name": "vera"})[0] == 201
    assert server.request("PUT", "/api/v1/projects/default/members/vera", admin,
                          {"role": "viewer"})[0] == 200
    _, tok = server.request("POST", "/api/v1/tokens", admin, {"name": "v", "user": "vera"})
    viewer = MlflowWire(server, tok["token"])
    assert ok(viewer.get("/model-versions/get", name="m", version="1"))
    assert_error(viewer.post("/registered-models/create", {"name": "x"}), 403, "PERMISSION_DENIED")
    assert_error(viewer.post("/model-versions/create", {"name": "m", "source": "s"}), 403,
                 "PERMISSION_DENIED")
    assert_error(viewer.delete("/registered-models/delete", {"name": "m"}), 403, "PERMISSION_DENIED")


# ---- native routes

def native(server, method, path, body=None, project="default", token=None):
    return server.request(method, f"/api/v1/projects/{project}{path}", token or server.admin_token,
                          body)


def test_native_models_versions_aliases_and_lineage(server, mlflow):
    # A run of a job, as the controller tags it.
    status, run = native(server, "POST", "/runs", {
        "experiment": "mnist", "run_name": "train",
        "tags": {"lathe.job_id": "01JOBID", "lathe.job_name": "train-mnist",
                 "lathe.code_digest": "sha256:c0de", "lathe.pipeline_run_id": "pr-7",
                 "lathe.pipeline_step": "train"}})
    assert status == 201, run
    run_id = run["run_id"]

    status, m = native(server, "POST", "/models", {"name": "mnist", "description": "digits",
                                                   "tags": {"team": "vision"}})
    assert status == 201, m
    assert m["name"] == "mnist" and m["project"] == "default" and m["description"] == "digits"
    assert RFC3339.fullmatch(m["created_at"]) and RFC3339.fullmatch(m["updated_at"])
    assert m["tags"] == {"team": "vision"}
    assert m["aliases"] == {} and m["latest_versions"] == []
    status, err = native(server, "POST", "/models", {"name": "mnist"})
    assert status == 409 and err["error"]["code"] == "ALREADY_EXISTS", err
    status, err = native(server, "POST", "/models", {"name": "mnist2", "colour": "red"})
    assert status == 400 and err["error"]["field"] == "colour", err

    status, v1 = native(server, "POST", "/models/mnist/versions", {
        "source": f"runs:/{run_id}/model", "run_id": run_id, "description": "baseline",
        "tags": {"acc": "0.97"}})
    assert status == 201, v1
    assert v1["name"] == "mnist" and v1["version"] == 1
    assert v1["user"] == "admin" and v1["stage"] == "None" and v1["status"] == "READY"
    assert v1["run_id"] == run_id and v1["source"] == f"runs:/{run_id}/model"
    assert v1["tags"] == {"acc": "0.97"} and v1["aliases"] == []
    assert RFC3339.fullmatch(v1["created_at"])
    status, v2 = native(server, "POST", "/models/mnist/versions", {"source": "s3://b/mnist/2"})
    assert status == 201 and v2["version"] == 2 and v2["run_id"] is None, v2
    status, err = native(server, "POST", "/models/mnist/versions",
                         {"source": "s", "run_id": "0" * 32})
    assert status == 400 and err["error"]["field"] == "run_id", err
    status, err = native(server, "POST", "/models/nope/versions", {"source": "s"})
    assert status == 404, err

    # The version with its lineage.
    status, got = native(server, "GET", "/models/mnist/versions/1")
    assert status == 200, got
    assert got["version"] == 1 and got["description"] == "baseline"
    lineage = got["lineage"]
    assert lineage["run_id"] == run_id and lineage["run_name"] == "train"
    assert lineage["run_status"] == "RUNNING"
    assert lineage["experiment_id"] == run["experiment_id"] and lineage["experiment_name"] == "mnist"
    assert lineage["job_id"] == "01JOBID" and lineage["job_name"] == "train-mnist"
    assert lineage["pipeline_run_id"] == "pr-7" and lineage["pipeline_step"] == "train"
    assert lineage["code_digest"] == "sha256:c0de"
    status, got = native(server, "GET", "/models/mnist/versions/2")
    assert got["lineage"] == {k: None for k in (
        "run_id", "run_name", "run_status", "experiment_id", "experiment_name", "job_id",
        "job_name", "pipeline_run_id", "pipeline_step", "code_digest")}
    assert native(server, "GET", "/models/mnist/versions/9")[0] == 404
    status, err = native(server, "GET", "/models/mnist/versions/first")
    assert status == 400 and err["error"]["field"] == "version", err

    # Versions, newest first, in pages.
    for _ in range(3):
        assert native(server, "POST", "/models/mnist/versions", {"source": "s3://b/x"})[0] == 201
    seen, token = [], ""
    while True:
        status, page = native(server, "GET", f"/models/mnist/versions?limit=2&page_token={token}")
        assert status == 200, page
        seen += [v["version"] for v in page["items"]]
        token = page["next_page_token"]
        if not token:
            break
    assert seen == [5, 4, 3, 2, 1]

    # Stages through PATCH; archive_existing_versions moves the others out.
    status, v = native(server, "PATCH", "/models/mnist/versions/1", {"stage": "production"})
    assert status == 200 and v["stage"] == "Production", v
    status, v = native(server, "PATCH", "/models/mnist/versions/2",
                       {"stage": "Production", "archive_existing_versions": True,
                        "description": "promoted"})
    assert status == 200 and v["stage"] == "Production" and v["description"] == "promoted", v
    assert native(server, "GET", "/models/mnist/versions/1")[1]["stage"] == "Archived"
    status, err = native(server, "PATCH", "/models/mnist/versions/3", {"stage": "Live"})
    assert status == 400 and err["error"]["field"] == "stage", err

    # Aliases.
    status, v = native(server, "PUT", "/models/mnist/aliases/champion", {"version": 2})
    assert status == 200 and v["version"] == 2 and v["aliases"] == ["champion"], v
    status, v = native(server, "GET", "/models/mnist/aliases/champion")
    assert status == 200 and v["version"] == 2
    status, m = native(server, "GET", "/models/mnist")
    assert m["aliases"] == {"champion": 2}
    assert sorted((v["version"], v["stage"]) for v in m["latest_versions"]) == [
        (1, "Archived"), (2, "Production"), (5, "None")]
    status, err = native(server, "PUT", "/models/mnist/aliases/latest", {"version": 2})
    assert status == 400 and err["error"]["field"] == "alias", err
    assert native(server, "PUT", "/models/mnist/aliases/x", {"version": 99})[0] == 404
    assert native(server, "DELETE", "/models/mnist/aliases/champion")[0] == 204
    assert native(server, "GET", "/models/mnist/aliases/champion")[0] == 404

    # Tags.
    assert native(server, "PUT", "/models/mnist/tags/owner", {"value": "kim"})[0] == 204
    assert native(server, "DELETE", "/models/mnist/tags/team")[0] == 204
    assert native(server, "GET", "/models/mnist")[1]["tags"] == {"owner": "kim"}
    assert native(server, "PUT", "/models/mnist/versions/1/tags/k", {"value": "v"})[0] == 204
    assert native(server, "GET", "/models/mnist/versions/1")[1]["tags"] == {"acc": "0.97", "k": "v"}
    assert native(server, "DELETE", "/models/mnist/versions/1/tags/k")[0] == 204

    # The same models are MLflow's.
    res = ok(mlflow.get("/model-versions/get", name="mnist", version="2"))
    assert res["model_version"]["current_stage"] == "Production"

    # List, filter, rename, delete.
    assert native(server, "POST", "/models", {"name": "other"})[0] == 201
    status, page = native(server, "GET", "/models?limit=1")
    assert status == 200 and [m["name"] for m in page["items"]] == ["mnist"] and page["next_page_token"]
    status, page = native(server, "GET", "/models?" + urllib.parse.urlencode(
        {"filter": "tags.owner = 'kim'"}))
    assert [m["name"] for m in page["items"]] == ["mnist"] and page["next_page_token"] == ""
    status, page = native(server, "GET", "/models?order_by=name+DESC")
    assert [m["name"] for m in page["items"]] == ["other", "mnist"]
    status, err = native(server, "GET", "/models?filter=" + urllib.parse.quote("bogus = 1"))
    assert status == 400 and err["error"]["field"] == "filter", err
    status, m = native(server, "PATCH", "/models/mnist", {"name": "digits", "description": "renamed"})
    assert status == 200 and m["name"] == "digits" and m["description"] == "renamed", m
    assert [v["version"] for v in m["latest_versions"]] == [1, 2, 5]
    status, err = native(server, "PATCH", "/models/digits", {"name": "other"})
    assert status == 409, err
    assert native(server, "GET", "/models/mnist")[0] == 404
    assert native(server, "DELETE", "/models/digits/versions/5")[0] == 204
    assert native(server, "DELETE", "/models/digits/versions/5")[0] == 404
    assert native(server, "DELETE", "/models/digits")[0] == 204
    assert native(server, "GET", "/models/digits")[0] == 404


def test_native_roles_and_tenancy(server):
    admin = server.admin_token
    assert server.request("POST", "/api/v1/projects", admin, {"name": "ml"})[0] == 201
    assert server.request("POST", "/api/v1/users", admin, {"name": "vic"})[0] == 201
    assert server.request("PUT", "/api/v1/projects/ml/members/vic", admin, {"role": "viewer"})[0] == 200
    _, tok = server.request("POST", "/api/v1/tokens", admin, {"name": "v", "user": "vic"})
    viewer = tok["token"]
    assert native(server, "POST", "/models", {"name": "m"}, project="ml")[0] == 201
    assert native(server, "GET", "/models/m", project="ml", token=viewer)[0] == 200
    status, err = native(server, "POST", "/models", {"name": "x"}, project="ml", token=viewer)
    assert status == 403 and err["error"]["code"] == "PERMISSION_DENIED", err
    assert native(server, "DELETE", "/models/m", project="ml", token=viewer)[0] == 403
    # Another project's models are not visible; unknown projects are 404.
    assert native(server, "GET", "/models/m", project="default")[0] == 404
    assert native(server, "GET", "/models", project="nope")[0] == 404
    assert server.request("GET", "/api/v1/projects/ml/models")[0] == 401
