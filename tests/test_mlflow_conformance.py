"""MLflow REST API 2.0 conformance: the request sequences an MLflow Python
client sends (../shared/research/protocols.md §5.9), replayed byte for byte
over one keep-alive connection, checking every response field the client
reads, MLflow's error codes and statuses, and its semantics (§5.8): params
immutable, tags last-write-wins, NaN/Infinity as strings, replayed batches
stored once. Runs on SQLite and, with LATHE_TEST_POSTGRES_URL, PostgreSQL.
"""
import base64
import http.client
import json
import math
import re
import time
import urllib.parse

import pytest

API = "/api/2.0/mlflow"
CLIENT_VERSION = "3.6.0"


class MlflowWire:
    """What mlflow.utils.rest_utils sends: JSON bodies for POST, query
    strings (repeated keys) for GET, keep-alive, X-MLflow-Client-Version."""

    def __init__(self, server, token=None, headers=None, prefix=API, auth=None):
        parsed = urllib.parse.urlparse(server.url)
        self.conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        self.prefix = prefix
        self.headers = {"X-MLflow-Client-Version": CLIENT_VERSION, "User-Agent": "mlflow-python-client/3.6.0"}
        if auth is not None:
            self.headers["Authorization"] = auth
        elif token is not None:
            self.headers["Authorization"] = "Bearer " + token
        self.headers.update(headers or {})

    def raw(self, method, path, body=None, headers=None):
        h = dict(self.headers)
        h.update(headers or {})
        if body is not None:
            h["Content-Type"] = "application/json"
        self.conn.request(method, path, body=body, headers=h)
        res = self.conn.getresponse()
        text = res.read().decode()
        try:
            return res.status, json.loads(text) if text else None
        except ValueError:
            return res.status, text

    def post(self, rpc, body):
        return self.raw("POST", self.prefix + rpc, json.dumps(body))

    def get(self, rpc, **query):
        q = urllib.parse.urlencode(query, doseq=True)
        return self.raw("GET", self.prefix + rpc + ("?" + q if q else ""))


def now_ms():
    return int(time.time() * 1000)


@pytest.fixture
def mlflow(server):
    """An MLflow client of the admin, acting in the project "default" (created at first start)."""
    assert server.request("GET", "/api/v1/projects/default", server.admin_token)[0] == 200
    wire = MlflowWire(server, server.admin_token)
    yield wire
    wire.conn.close()


def create_run(mlflow, experiment_id="0", **extra):
    body = {"experiment_id": experiment_id, "user_id": "u", "start_time": now_ms(),
            "tags": [{"key": "mlflow.user", "value": "u"},
                     {"key": "mlflow.source.name", "value": "train.py"},
                     {"key": "mlflow.source.type", "value": "LOCAL"}]}
    body.update(extra)
    status, res = mlflow.post("/runs/create", body)
    assert status == 200, res
    return res["run"]


def tags_of(entity):
    return {t["key"]: t["value"] for t in entity.get("data", entity).get("tags", [])}


def assert_error(answer, http_status, code):
    status, body = answer
    assert status == http_status, body
    assert body["error_code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    return body["message"]


# ---- §5.9: start_run(); log_metric("x", 1); end_run() with no experiment set

def test_start_run_log_metric_end_run_with_no_experiment(mlflow):
    start = now_ms()
    status, res = mlflow.post("/runs/create", {
        "experiment_id": "0", "user_id": "u", "start_time": start,
        "tags": [{"key": "mlflow.user", "value": "u"},
                 {"key": "mlflow.source.name", "value": "train.py"},
                 {"key": "mlflow.source.type", "value": "LOCAL"}]})
    assert status == 200, res
    run = res["run"]
    info = run["info"]
    run_id = info["run_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", run_id)
    assert info["run_uuid"] == run_id
    assert isinstance(info["experiment_id"], str) and info["experiment_id"]
    assert info["status"] == "RUNNING"
    assert info["start_time"] == start
    assert "end_time" not in info
    assert info["lifecycle_stage"] == "active"
    assert info["artifact_uri"].endswith(f"/{run_id}/artifacts")
    # No run_name sent: the server generates one and tags it.
    assert info["run_name"]
    tags = tags_of(run)
    assert tags["mlflow.runName"] == info["run_name"]
    assert tags["mlflow.source.name"] == "train.py"

    ts = now_ms()
    status, res = mlflow.post("/runs/log-metric", {"run_uuid": run_id, "key": "x", "value": 1.0,
                                                   "timestamp": ts, "step": 0, "run_id": run_id})
    assert (status, res) == (200, {})

    status, res = mlflow.get("/runs/get", run_uuid=run_id, run_id=run_id)
    assert status == 200, res
    assert res["run"]["info"]["run_id"] == run_id
    assert res["run"]["data"]["metrics"] == [{"key": "x", "value": 1, "timestamp": ts, "step": 0}]

    end = now_ms()
    status, res = mlflow.post("/runs/update", {"run_uuid": run_id, "status": "FINISHED",
                                               "end_time": end, "run_id": run_id})
    assert status == 200, res
    assert res["run_info"]["status"] == "FINISHED"
    assert res["run_info"]["end_time"] == end
    assert res["run_info"]["run_id"] == run_id
    status, res = mlflow.get("/runs/get", run_id=run_id)
    assert res["run"]["info"]["status"] == "FINISHED"
    # The default experiment is "Default" and is what "0" resolves to.
    status, res = mlflow.get("/experiments/get", experiment_id=info["experiment_id"])
    assert status == 200, res
    assert res["experiment"]["name"] == "Default"


def test_run_name_given_is_tagged_and_tag_name_is_used(mlflow):
    run = create_run(mlflow, run_name="my-run")
    assert run["info"]["run_name"] == "my-run"
    assert tags_of(run)["mlflow.runName"] == "my-run"
    run = create_run(mlflow, tags=[{"key": "mlflow.runName", "value": "from-tag"}])
    assert run["info"]["run_name"] == "from-tag"


# ---- set_experiment("demo")

def test_set_experiment_get_by_name_404_then_create_then_get(mlflow):
    message = assert_error(mlflow.get("/experiments/get-by-name", experiment_name="demo"),
                           404, "RESOURCE_DOES_NOT_EXIST")
    assert "demo" in message
    status, res = mlflow.post("/experiments/create", {"name": "demo"})
    assert status == 200, res
    exp_id = res["experiment_id"]
    assert isinstance(exp_id, str) and exp_id.isdigit()
    status, res = mlflow.get("/experiments/get", experiment_id=exp_id)
    assert status == 200, res
    exp = res["experiment"]
    assert exp["experiment_id"] == exp_id
    assert exp["name"] == "demo"
    assert exp["lifecycle_stage"] == "active"
    assert exp["artifact_location"]
    assert isinstance(exp["creation_time"], int) and isinstance(exp["last_update_time"], int)
    status, res = mlflow.get("/experiments/get-by-name", experiment_name="demo")
    assert status == 200 and res["experiment"]["experiment_id"] == exp_id
    assert_error(mlflow.post("/experiments/create", {"name": "demo"}), 400,
                 "RESOURCE_ALREADY_EXISTS")
    # A run in it: artifact_uri = <artifact_location>/<run_id>/artifacts.
    run = create_run(mlflow, experiment_id=exp_id)
    assert run["info"]["experiment_id"] == exp_id
    assert run["info"]["artifact_uri"] == f"{exp['artifact_location']}/{run['info']['run_id']}/artifacts"


# ---- log_param, log_params, log_metrics

def test_log_param_is_immutable_and_a_retry_with_the_same_value_succeeds(mlflow):
    run_id = create_run(mlflow)["info"]["run_id"]
    body = {"run_uuid": run_id, "key": "lr", "value": "0.01", "run_id": run_id}
    assert mlflow.post("/runs/log-parameter", body) == (200, {})
    assert mlflow.post("/runs/log-parameter", body) == (200, {})  # a retried request
    body["value"] = "0.02"
    message = assert_error(mlflow.post("/runs/log-parameter", body), 400, "INVALID_PARAMETER_VALUE")
    assert "lr" in message
    status, res = mlflow.get("/runs/get", run_id=run_id)
    assert res["run"]["data"]["params"] == [{"key": "lr", "value": "0.01"}]


def test_log_batch_3x_entries_and_a_replayed_batch_stores_points_once(mlflow):
    run_id = create_run(mlflow)["info"]["run_id"]
    ts = now_ms()
    batch = {"run_id": run_id,
             "metrics": [{"key": "loss", "value": 0.9, "timestamp": ts, "step": 0, "run_id": run_id},
                         {"key": "loss", "value": 0.5, "timestamp": ts + 1, "step": 1, "run_id": run_id},
                         {"key": "acc", "value": 0.7, "timestamp": ts, "step": 1, "run_id": run_id}],
             "params": [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}],
             "tags": [{"key": "team", "value": "ads"}]}
    assert mlflow.post("/runs/log-batch", batch) == (200, {})
    assert mlflow.post("/runs/log-batch", batch) == (200, {})  # replayed by a retrying client
    status, res = mlflow.get("/metrics/get-history", run_id=run_id, run_uuid=run_id,
                             metric_key="loss", max_results=25000)
    assert status == 200, res
    assert [(m["step"], m["value"]) for m in res["metrics"]] == [(0, 0.9), (1, 0.5)]
    assert all(m["key"] == "loss" and "timestamp" in m for m in res["metrics"])
    assert "next_page_token" not in res
    status, res = mlflow.get("/runs/get", run_id=run_id)
    data = res["run"]["data"]
    latest = {m["key"]: m["value"] for m in data["metrics"]}
    assert latest == {"loss": 0.5, "acc": 0.7}
    assert sorted((p["key"], p["value"]) for p in data["params"]) == [("a", "1"), ("b", "2")]
    assert tags_of(res["run"])["team"] == "ads"
    # Tags: last write wins.
    assert mlflow.post("/runs/set-tag", {"run_id": run_id, "key": "team", "value": "search"}) == (200, {})
    status, res = mlflow.get("/runs/get", run_id=run_id)
    assert tags_of(res["run"])["team"] == "search"


def test_get_metric_history_pages(mlflow):
    run_id = create_run(mlflow)["info"]["run_id"]
    ts = now_ms()
    metrics = [{"key": "m", "value": float(i), "timestamp": ts + i, "step": i} for i in range(5)]
    assert mlflow.post("/runs/log-batch", {"run_id": run_id, "metrics": metrics}) == (200, {})
    got, token, pages = [], None, 0
    while True:
        query = {"run_id": run_id, "metric_key": "m", "max_results": 2}
        if token:
            query["page_token"] = token
        status, res = mlflow.get("/metrics/get-history", **query)
        assert status == 200, res
        got += res.get("metrics", [])
        pages += 1
        token = res.get("next_page_token")
        if not token:
            break
    assert [m["step"] for m in got] == [0, 1, 2, 3, 4]
    assert pages == 3
    # Without max_results: every point at once.
    status, res = mlflow.get("/metrics/get-history", run_id=run_id, metric_key="m")
    assert len(res["metrics"]) == 5 and "next_page_token" not in res
    assert_error(mlflow.get("/metrics/get-history", run_id=run_id, metric_key="m",
                            max_results=25001), 400, "INVALID_PARAMETER_VALUE")
    # An unknown key has an empty history.
    assert mlflow.get("/metrics/get-history", run_id=run_id, metric_key="nope") == (200, {})


def test_search_runs_with_a_filter(mlflow):
    status, res = mlflow.post("/experiments/create", {"name": "search"})
    exp_id = res["experiment_id"]
    ids = {}
    for name, auc in [("low", 0.3), ("mid", 0.6), ("high", 0.95)]:
        run_id = create_run(mlflow, experiment_id=exp_id, run_name=name)["info"]["run_id"]
        ids[name] = run_id
        assert mlflow.post("/runs/log-metric", {"run_id": run_id, "key": "auc", "value": auc,
                                                "timestamp": now_ms(), "step": 0})[0] == 200
        assert mlflow.post("/runs/log-parameter", {"run_id": run_id, "key": "size",
                                                   "value": name})[0] == 200
    status, res = mlflow.post("/runs/search", {"experiment_ids": [exp_id],
                                               "run_view_type": "ACTIVE_ONLY",
                                               "filter": "metrics.auc > 0.5", "max_results": 10,
                                               "order_by": ["metrics.auc DESC"]})
    assert status == 200, res
    assert [r["info"]["run_name"] for r in res["runs"]] == ["high", "mid"]
    assert res["runs"][0]["data"]["metrics"][0]["value"] == 0.95
    assert "next_page_token" not in res
    status, res = mlflow.post("/runs/search", {"experiment_ids": [exp_id],
                                               "filter": "params.size = 'low'"})
    assert [r["info"]["run_id"] for r in res["runs"]] == [ids["low"]]
    # Paging: max_results=1 walks every run once.
    seen, token = [], None
    while True:
        body = {"experiment_ids": [exp_id], "max_results": 1}
        if token:
            body["page_token"] = token
        status, res = mlflow.post("/runs/search", body)
        assert status == 200, res
        seen += [r["info"]["run_id"] for r in res.get("runs", [])]
        token = res.get("next_page_token")
        if not token:
            break
    assert sorted(seen) == sorted(ids.values())
    # Deleted runs leave ACTIVE_ONLY and show under DELETED_ONLY.
    assert mlflow.post("/runs/delete", {"run_id": ids["low"]}) == (200, {})
    status, res = mlflow.post("/runs/search", {"experiment_ids": [exp_id], "run_view_type": "DELETED_ONLY"})
    assert [r["info"]["run_id"] for r in res["runs"]] == [ids["low"]]
    assert res["runs"][0]["info"]["lifecycle_stage"] == "deleted"
    assert mlflow.post("/runs/restore", {"run_id": ids["low"]}) == (200, {})
    status, res = mlflow.post("/runs/search", {"experiment_ids": [exp_id]})
    assert len(res["runs"]) == 3
    assert_error(mlflow.post("/runs/search", {"experiment_ids": [exp_id], "filter": "metrics.auc >> 1"}),
                 400, "INVALID_PARAMETER_VALUE")
    assert_error(mlflow.post("/runs/search", {"experiment_ids": [exp_id], "max_results": 50001}),
                 400, "INVALID_PARAMETER_VALUE")


# ---- encoding

def test_nan_and_infinity_round_trip_as_strings(mlflow):
    run_id = create_run(mlflow)["info"]["run_id"]
    ts = now_ms()
    assert mlflow.post("/runs/log-metric", {"run_id": run_id, "key": "nan", "value": "NaN",
                                            "timestamp": ts, "step": 0})[0] == 200
    assert mlflow.post("/runs/log-batch", {"run_id": run_id, "metrics": [
        {"key": "inf", "value": "Infinity", "timestamp": ts, "step": 0},
        {"key": "ninf", "value": "-Infinity", "timestamp": ts, "step": 0}]})[0] == 200
    status, res = mlflow.get("/runs/get", run_id=run_id)
    latest = {m["key"]: m["value"] for m in res["run"]["data"]["metrics"]}
    assert latest == {"nan": "NaN", "inf": "Infinity", "ninf": "-Infinity"}
    status, res = mlflow.get("/metrics/get-history", run_id=run_id, metric_key="nan")
    assert res["metrics"][0]["value"] == "NaN"
    assert math.isnan(float(res["metrics"][0]["value"]))


def test_a_body_that_is_a_json_string_holding_json_is_accepted(mlflow):
    run_id = create_run(mlflow)["info"]["run_id"]
    inner = json.dumps({"run_id": run_id, "key": "k", "value": "v"})
    assert mlflow.raw("POST", API + "/runs/set-tag", json.dumps(inner)) == (200, {})
    inner = json.dumps({"run_id": run_id, "key": "m", "value": 2, "timestamp": 1, "step": 0})
    assert mlflow.raw("POST", API + "/runs/log-metric", json.dumps(inner)) == (200, {})
    status, res = mlflow.get("/runs/get", run_id=run_id)
    assert tags_of(res["run"])["k"] == "v"
    assert res["run"]["data"]["metrics"][0]["value"] == 2


def test_ajax_api_prefix_serves_the_same_routes(server, mlflow):
    run_id = create_run(mlflow)["info"]["run_id"]
    ajax = MlflowWire(server, server.admin_token, prefix="/ajax-api/2.0/mlflow")
    status, res = ajax.get("/runs/get", run_id=run_id)
    assert status == 200 and res["run"]["info"]["run_id"] == run_id


def test_health_version_and_unknown_endpoints(server, mlflow):
    assert mlflow.raw("GET", "/health") == (200, "OK")
    status, version = mlflow.raw("GET", "/version")
    assert status == 200 and re.fullmatch(r"\d+\.\d+\.\d+", str(version))
    assert_error(mlflow.get("/no-such-rpc"), 404, "ENDPOINT_NOT_FOUND")
    # The registry is served (tests/test_mlflow_registry.py): an unknown model is a resource error.
    assert_error(mlflow.get("/registered-models/get", name="m"), 404, "RESOURCE_DOES_NOT_EXIST")


# ---- errors and limits

def test_unknown_run_and_experiment_are_resource_does_not_exist(mlflow):
    missing = "0" * 32
    assert_error(mlflow.get("/runs/get", run_id=missing), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(mlflow.post("/runs/log-metric", {"run_id": missing, "key": "x", "value": 1,
                                                  "timestamp": 1}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(mlflow.post("/runs/log-batch", {"run_id": missing, "metrics": []}), 404,
                 "RESOURCE_DOES_NOT_EXIST")
    assert_error(mlflow.post("/runs/update", {"run_id": missing, "status": "FINISHED"}), 404,
                 "RESOURCE_DOES_NOT_EXIST")
    assert_error(mlflow.get("/experiments/get", experiment_id="987654"), 404,
                 "RESOURCE_DOES_NOT_EXIST")
    assert_error(mlflow.get("/artifacts/list", run_id=missing), 404, "RESOURCE_DOES_NOT_EXIST")


def test_missing_and_bad_arguments_are_invalid_parameter_value(mlflow):
    run_id = create_run(mlflow)["info"]["run_id"]
    assert "run_id" in assert_error(mlflow.post("/runs/log-metric", {"key": "x", "value": 1}),
                                    400, "INVALID_PARAMETER_VALUE")
    assert_error(mlflow.post("/runs/log-metric", {"run_id": run_id, "key": "x", "value": "abc",
                                                  "timestamp": 1}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(mlflow.post("/experiments/create", {}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(mlflow.get("/experiments/get-by-name"), 400, "INVALID_PARAMETER_VALUE")
    assert_error(mlflow.raw("POST", API + "/runs/log-batch", "{not json"), 400,
                 "INVALID_PARAMETER_VALUE")
    assert_error(mlflow.post("/runs/update", {"run_id": run_id, "status": "DONE"}), 400,
                 "INVALID_PARAMETER_VALUE")


def test_over_limit_batches_name_the_limit_and_write_nothing(mlflow):
    run_id = create_run(mlflow)["info"]["run_id"]
    metrics = [{"key": "m", "value": 1, "timestamp": 1, "step": i} for i in range(1001)]
    assert "1000" in assert_error(mlflow.post("/runs/log-batch", {"run_id": run_id, "metrics": metrics}),
                                  400, "INVALID_PARAMETER_VALUE")
    params = [{"key": f"p{i}", "value": "v"} for i in range(101)]
    assert "100" in assert_error(mlflow.post("/runs/log-batch", {"run_id": run_id, "params": params}),
                                 400, "INVALID_PARAMETER_VALUE")
    tags = [{"key": f"t{i}", "value": "v"} for i in range(101)]
    assert "100" in assert_error(mlflow.post("/runs/log-batch", {"run_id": run_id, "tags": tags}),
                                 400, "INVALID_PARAMETER_VALUE")
    big = [{"key": "k" * 200, "value": 1, "timestamp": 1, "step": i} for i in range(1000)]
    body = json.dumps({"run_id": run_id, "metrics": big, "params": [{"key": "pad", "value": "x" * 900000}]})
    assert len(body) > 1_000_000
    assert "1000000" in assert_error(mlflow.raw("POST", API + "/runs/log-batch", body), 400,
                                     "INVALID_PARAMETER_VALUE")
    # A batch with one bad entry stores nothing.
    batch = {"run_id": run_id, "metrics": [{"key": "ok", "value": 1, "timestamp": 1, "step": 0}],
             "params": [{"key": "v", "value": "x" * 6001}]}
    assert_error(mlflow.post("/runs/log-batch", batch), 400, "INVALID_PARAMETER_VALUE")
    status, res = mlflow.get("/runs/get", run_id=run_id)
    assert "metrics" not in res["run"]["data"] and "params" not in res["run"]["data"]


# ---- the remaining tracking endpoints

def test_experiment_lifecycle_tags_rename_and_search(mlflow):
    _, res = mlflow.post("/experiments/create", {"name": "exp-a", "artifact_location": "ignored",
                                                 "tags": [{"key": "team", "value": "ads"}]})
    exp_id = res["experiment_id"]
    _, res = mlflow.get("/experiments/get", experiment_id=exp_id)
    assert tags_of(res["experiment"]) == {"team": "ads"}
    assert mlflow.post("/experiments/set-experiment-tag",
                       {"experiment_id": exp_id, "key": "team", "value": "search"}) == (200, {})
    _, res = mlflow.get("/experiments/get", experiment_id=exp_id)
    assert tags_of(res["experiment"])["team"] == "search"
    assert mlflow.post("/experiments/delete-experiment-tag",
                       {"experiment_id": exp_id, "key": "team"}) == (200, {})
    _, res = mlflow.get("/experiments/get", experiment_id=exp_id)
    assert "team" not in tags_of(res["experiment"])
    assert_error(mlflow.post("/experiments/delete-experiment-tag",
                             {"experiment_id": exp_id, "key": "team"}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert mlflow.post("/experiments/update", {"experiment_id": exp_id, "new_name": "exp-b"}) == (200, {})
    _, res = mlflow.get("/experiments/get-by-name", experiment_name="exp-b")
    assert res["experiment"]["experiment_id"] == exp_id
    for method in ("GET", "POST"):
        if method == "GET":
            status, res = mlflow.get("/experiments/search", max_results=1000)
        else:
            status, res = mlflow.post("/experiments/search", {"max_results": 1000, "view_type": "ACTIVE_ONLY"})
        assert status == 200, res
        assert "exp-b" in [e["name"] for e in res["experiments"]]
    status, res = mlflow.post("/experiments/search", {"filter": "name = 'exp-b'"})
    assert [e["name"] for e in res["experiments"]] == ["exp-b"]
    status, res = mlflow.get("/experiments/search", filter="name LIKE 'exp-%'")
    assert [e["name"] for e in res["experiments"]] == ["exp-b"]
    assert mlflow.post("/experiments/delete", {"experiment_id": exp_id}) == (200, {})
    _, res = mlflow.get("/experiments/get", experiment_id=exp_id)
    assert res["experiment"]["lifecycle_stage"] == "deleted"
    _, res = mlflow.post("/experiments/search", {"view_type": "DELETED_ONLY"})
    assert [e["experiment_id"] for e in res["experiments"]] == [exp_id]
    _, res = mlflow.post("/experiments/search", {})
    assert exp_id not in [e["experiment_id"] for e in res.get("experiments", [])]
    assert mlflow.post("/experiments/restore", {"experiment_id": exp_id}) == (200, {})
    _, res = mlflow.get("/experiments/get", experiment_id=exp_id)
    assert res["experiment"]["lifecycle_stage"] == "active"
    # Paging.
    for i in range(3):
        assert mlflow.post("/experiments/create", {"name": f"page-{i}"})[0] == 200
    names, token = [], None
    while True:
        body = {"max_results": 2}
        if token:
            body["page_token"] = token
        _, res = mlflow.post("/experiments/search", body)
        names += [e["name"] for e in res.get("experiments", [])]
        token = res.get("next_page_token")
        if not token:
            break
    assert {"page-0", "page-1", "page-2", "exp-b"} <= set(names)
    assert len(names) == len(set(names))


def test_delete_tag_log_model_log_inputs_and_artifacts_list(mlflow):
    run = create_run(mlflow)
    run_id = run["info"]["run_id"]
    assert mlflow.post("/runs/set-tag", {"run_id": run_id, "key": "gone", "value": "1"}) == (200, {})
    assert mlflow.post("/runs/delete-tag", {"run_id": run_id, "key": "gone"}) == (200, {})
    _, res = mlflow.get("/runs/get", run_id=run_id)
    assert "gone" not in tags_of(res["run"])
    model = {"artifact_path": "model", "flavors": {"python_function": {"loader_module": "x"}},
             "run_id": run_id, "utc_time_created": "2026-11-23 01:07:22.123456"}
    assert mlflow.post("/runs/log-model", {"run_id": run_id, "model_json": json.dumps(model)}) == (200, {})
    assert mlflow.post("/runs/log-model", {"run_id": run_id, "model_json": json.dumps(model)}) == (200, {})
    _, res = mlflow.get("/runs/get", run_id=run_id)
    history = json.loads(tags_of(res["run"])["mlflow.log-model.history"])
    assert history == [model, model]
    assert_error(mlflow.post("/runs/log-model", {"run_id": run_id, "model_json": "nope"}), 400,
                 "INVALID_PARAMETER_VALUE")
    datasets = [{"tags": [{"key": "mlflow.data.context", "value": "train"}],
                 "dataset": {"name": "d", "digest": "abc", "source_type": "local", "source": "{}"}}]
    assert mlflow.post("/runs/log-inputs", {"run_id": run_id, "datasets": datasets}) == (200, {})
    # A retried call, and the same data set again, store it once; a second one is appended.
    second = {"dataset": {"name": "e", "digest": "def", "source_type": "code", "source": "{}",
                          "schema": '{"mlflow_colspec": []}'}}
    assert mlflow.post("/runs/log-inputs", {"run_id": run_id, "datasets": datasets + [second]}) == (200, {})
    _, res = mlflow.get("/runs/get", run_id=run_id)
    inputs = res["run"]["inputs"]["dataset_inputs"]
    assert inputs == [datasets[0], second], inputs
    _, found = mlflow.post("/runs/search", {"experiment_ids": [run["info"]["experiment_id"]],
                                            "filter": f"attributes.run_id = '{run_id}'"})
    assert found["runs"][0]["inputs"]["dataset_inputs"] == inputs
    message = assert_error(mlflow.post("/runs/log-inputs", {"run_id": run_id, "datasets": [
        {"dataset": {"name": "x", "digest": "d" * 37, "source_type": "local", "source": "{}"}}]}),
        400, "INVALID_PARAMETER_VALUE")
    assert "datasets[0].dataset.digest" in message
    assert_error(mlflow.post("/runs/log-inputs", {"run_id": run_id, "datasets": [
        {"dataset": {"name": "x", "digest": "d", "source_type": "local"}}]}),
        400, "INVALID_PARAMETER_VALUE")
    status, res = mlflow.get("/artifacts/list", run_id=run_id, path="model")
    assert status == 200
    assert res["root_uri"] == run["info"]["artifact_uri"]
    assert res.get("files", []) == []


def test_get_history_bulk_interval_takes_repeated_run_ids(mlflow):
    a = create_run(mlflow)["info"]["run_id"]
    b = create_run(mlflow)["info"]["run_id"]
    for run_id, scale in ((a, 1), (b, 10)):
        metrics = [{"key": "loss", "value": scale * i, "timestamp": 1000 + i, "step": i} for i in range(10)]
        assert mlflow.post("/runs/log-batch", {"run_id": run_id, "metrics": metrics})[0] == 200
    # urlencode(doseq) sends run_ids=a&run_ids=b.
    status, res = mlflow.get("/metrics/get-history-bulk-interval", run_ids=[a, b], metric_key="loss",
                             start_step=2, end_step=5, max_results=320)
    assert status == 200, res
    got = [(m["run_id"], m["step"], m["value"]) for m in res["metrics"]]
    assert got == [(a, s, s) for s in range(2, 6)] + [(b, s, 10 * s) for s in range(2, 6)]
    assert_error(mlflow.get("/metrics/get-history-bulk-interval", run_ids=[a], metric_key="loss",
                            start_step=2), 400, "INVALID_PARAMETER_VALUE")
    assert_error(mlflow.get("/metrics/get-history-bulk-interval", run_ids=[a] * 101,
                            metric_key="loss"), 400, "INVALID_PARAMETER_VALUE")
    assert_error(mlflow.get("/metrics/get-history-bulk-interval", run_ids=[a], metric_key="loss",
                            max_results=2501), 400, "INVALID_PARAMETER_VALUE")


# ---- authentication and the project MLflow calls act in

def test_authentication_bearer_basic_and_missing(server, mlflow):
    run_id = create_run(mlflow)["info"]["run_id"]
    anonymous = MlflowWire(server)
    assert_error(anonymous.get("/runs/get", run_id=run_id), 401, "UNAUTHENTICATED")
    bogus = MlflowWire(server, "lathe_bogus")
    assert_error(bogus.get("/runs/get", run_id=run_id), 401, "UNAUTHENTICATED")
    basic = "Basic " + base64.b64encode(f"anyone:{server.admin_token}".encode()).decode()
    status, res = MlflowWire(server, auth=basic).get("/runs/get", run_id=run_id)
    assert status == 200 and res["run"]["info"]["run_id"] == run_id
    bad_basic = "Basic " + base64.b64encode(b"anyone:lathe_bogus").decode()
    assert_error(MlflowWire(server, auth=bad_basic).get("/runs/get", run_id=run_id), 401,
                 "UNAUTHENTICATED")


def test_project_comes_from_the_token_scope_then_the_header_then_default(server, mlflow):
    admin = server.admin_token
    for name in ("ml", "other"):
        assert server.request("POST", "/api/v1/projects", admin, {"name": name})[0] == 201
    _, tok = server.request("POST", "/api/v1/tokens", admin, {"name": "ml-job", "project": "ml"})
    scoped = MlflowWire(server, tok["token"])
    # The scoped token's project wins over any header.
    scoped.headers["X-Lathe-Project"] = "other"
    run_id = create_run(scoped)["info"]["run_id"]
    assert server.request("GET", f"/api/v1/projects/ml/runs/{run_id}", admin)[0] == 200
    assert server.request("GET", f"/api/v1/projects/default/runs/{run_id}", admin)[0] == 404
    # The scoped token cannot see runs of the project "default".
    default_run = create_run(mlflow)["info"]["run_id"]
    assert_error(scoped.get("/runs/get", run_id=default_run), 404, "RESOURCE_DOES_NOT_EXIST")
    # An unscoped token picks a project with X-Lathe-Project.
    other = MlflowWire(server, admin, headers={"X-Lathe-Project": "other"})
    other_run = create_run(other)["info"]["run_id"]
    assert server.request("GET", f"/api/v1/projects/other/runs/{other_run}", admin)[0] == 200
    assert_error(mlflow.get("/runs/get", run_id=other_run), 404, "RESOURCE_DOES_NOT_EXIST")


def test_first_start_creates_the_default_project_for_unchanged_mlflow_code(server):
    wire = MlflowWire(server, server.admin_token)
    run = create_run(wire)["info"]
    status, _ = server.request("GET", f"/api/v1/projects/default/runs/{run['run_id']}",
                               server.admin_token)
    assert status == 200


def test_without_a_default_project_the_error_says_how_to_choose_one(server):
    assert server.request("DELETE", "/api/v1/projects/default", server.admin_token)[0] == 204
    wire = MlflowWire(server, server.admin_token)
    message = assert_error(wire.post("/runs/create", {"experiment_id": "0"}), 404,
                           "RESOURCE_DOES_NOT_EXIST")
    assert "X-Lathe-Project" in message and "default" in message
    message = assert_error(wire.get("/experiments/get-by-name", experiment_name="demo"), 404,
                           "RESOURCE_DOES_NOT_EXIST")
    assert "X-Lathe-Project" in message
    wire = MlflowWire(server, server.admin_token, headers={"X-Lathe-Project": "nope"})
    assert "nope" in assert_error(wire.post("/experiments/create", {"name": "x"}), 404,
                                  "RESOURCE_DOES_NOT_EXIST")


def test_a_viewer_cannot_write(server, mlflow):
    admin = server.admin_token
    assert server.request("POST", "/api/v1/users", admin, {"name": "vera"})[0] == 201
    assert server.request("PUT", "/api/v1/projects/default/members/vera", admin,
                          {"role": "viewer"})[0] == 200
    _, tok = server.request("POST", "/api/v1/tokens", admin, {"name": "v", "user": "vera"})
    viewer = MlflowWire(server, tok["token"])
    run_id = create_run(mlflow)["info"]["run_id"]
    assert viewer.get("/runs/get", run_id=run_id)[0] == 200
    assert_error(viewer.post("/runs/log-metric", {"run_id": run_id, "key": "x", "value": 1,
                                                  "timestamp": 1}), 403, "PERMISSION_DENIED")


def test_renaming_a_run_keeps_run_name_and_its_tag_together(mlflow):
    run_id = create_run(mlflow)["info"]["run_id"]
    status, res = mlflow.post("/runs/update", {"run_id": run_id, "run_name": "renamed"})
    assert status == 200 and res["run_info"]["run_name"] == "renamed"
    _, res = mlflow.get("/runs/get", run_id=run_id)
    assert tags_of(res["run"])["mlflow.runName"] == "renamed"
    assert mlflow.post("/runs/set-tag", {"run_id": run_id, "key": "mlflow.runName",
                                         "value": "by-tag"}) == (200, {})
    _, res = mlflow.get("/runs/get", run_id=run_id)
    assert res["run"]["info"]["run_name"] == "by-tag"
