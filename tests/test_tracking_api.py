"""The native tracking API (docs/tracking.md "Native API") through the real
binary: every route, bad input naming the field, pagination, downsampled
history, compare, and tenancy (a token scoped to another project sees no
runs; viewers cannot write). SQLite, and PostgreSQL when configured.
"""
import math
import re
import time
import urllib.parse

import pytest

P = "/api/v1/projects/ml"


@pytest.fixture
def t(server):
    assert server.request("POST", "/api/v1/projects", server.admin_token, {"name": "ml"})[0] == 201

    class Client:
        def __call__(self, method, path, body=None, token=None, raw=None, headers=None):
            return server.request(method, P + path, token=token or server.admin_token, body=body,
                                  raw=raw, headers=headers)
    return Client()


def run_of(t, **body):
    status, run = t("POST", "/runs", body)
    assert status == 201, run
    return run


def log(t, run_id, **body):
    status, res = t("POST", f"/runs/{run_id}/log", body)
    assert (status, res) == (200, {}), res


def test_experiments_create_get_list_and_page(t):
    status, e = t("POST", "/experiments", {"name": "exp-a", "tags": {"team": "ads"}})
    assert status == 201, e
    assert e["name"] == "exp-a" and e["project"] == "ml" and e["lifecycle"] == "active"
    assert e["tags"] == {"team": "ads"} and e["id"].isdigit() and e["artifact_location"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["created_at"])
    assert t("GET", f"/experiments/{e['id']}") == (200, e)
    assert t("GET", "/experiments/exp-a") == (200, e)
    status, err = t("POST", "/experiments", {"name": "exp-a"})
    assert status == 409 and err["error"]["code"] == "ALREADY_EXISTS"
    for i in range(3):
        assert t("POST", "/experiments", {"name": f"e{i}"})[0] == 201
    names, token = [], ""
    while True:
        status, page = t("GET", "/experiments?limit=2" + (f"&page_token={token}" if token else ""))
        assert status == 200, page
        assert len(page["items"]) <= 2
        names += [x["name"] for x in page["items"]]
        token = page["next_page_token"]
        if not token:
            break
    assert sorted(names) == ["Default", "e0", "e1", "e2", "exp-a"]  # Default: made when first needed
    assert t("GET", "/experiments/missing")[0] == 404
    assert t("GET", "/experiments?view=gone")[1]["error"]["field"] == "view"


def test_experiment_bad_input_names_the_field(t):
    status, err = t("POST", "/experiments", {"name": 3})
    assert status == 400 and err["error"]["field"] == "name"
    status, err = t("POST", "/experiments", {"name": "x", "colour": "red"})
    assert status == 400 and err["error"]["field"] == "colour"
    status, err = t("POST", "/experiments", raw=b"{nope")
    assert status == 400 and err["error"]["code"] == "INVALID_ARGUMENT"


def test_runs_create_get_patch(t):
    run = run_of(t, run_name="first", tags={"team": "ads"}, start_time="2026-11-23T01:07:22.123Z")
    assert re.fullmatch(r"[0-9a-f]{32}", run["run_id"])
    assert run["run_name"] == "first" and run["status"] == "RUNNING"
    assert run["start_time"] == "2026-11-23T01:07:22.123Z" and run["end_time"] is None
    assert run["lifecycle"] == "active" and run["job_id"] is None and run["user"] == "admin"
    assert run["tags"]["team"] == "ads" and run["params"] == {} and run["metrics"] == {}
    assert run["artifact_uri"].endswith(f"/{run['run_id']}/artifacts")
    # Without an experiment the run goes to the project's "Default".
    _, default = t("GET", f"/experiments/{run['experiment_id']}")
    assert default["name"] == "Default"
    got = t("GET", f"/runs/{run['run_id']}")
    assert got[0] == 200 and got[1]["run_id"] == run["run_id"]
    # A named experiment is created on first use; a generated name otherwise.
    other = run_of(t, experiment="fresh")
    _, fresh = t("GET", "/experiments/fresh")
    assert other["experiment_id"] == fresh["id"] and other["run_name"]
    assert run_of(t, experiment=fresh["id"])["experiment_id"] == fresh["id"]
    status, done = t("PATCH", f"/runs/{run['run_id']}", {"status": "FINISHED"})
    assert status == 200, done
    assert done["status"] == "FINISHED" and done["end_time"] is not None
    status, renamed = t("PATCH", f"/runs/{run['run_id']}", {"run_name": "renamed",
                                                           "end_time": 1795396042000})
    assert renamed["run_name"] == "renamed" and renamed["end_time"] == "2026-11-23T01:07:22.000Z"
    status, err = t("PATCH", f"/runs/{run['run_id']}", {"status": "DONE"})
    assert status == 400 and err["error"]["field"] == "status"
    status, err = t("POST", "/runs", {"start_time": "yesterday"})
    assert status == 400 and err["error"]["field"] == "start_time"
    assert t("GET", "/runs/" + "0" * 32)[0] == 404
    assert t("PATCH", "/runs/" + "0" * 32, {"status": "FAILED"})[0] == 404


def test_log_metrics_params_tags(t):
    run_id = run_of(t)["run_id"]
    log(t, run_id, metrics=[{"key": "loss", "value": 0.5, "step": 1, "timestamp": 1000},
                            {"key": "loss", "value": 0.25, "step": 2},
                            {"key": "odd", "value": "NaN"}, {"key": "big", "value": "Infinity"}],
        params={"lr": "0.1"}, tags={"team": "ads"})
    log(t, run_id, params={"lr": "0.1"}, tags={"team": "search"})  # same param: no-op
    _, run = t("GET", f"/runs/{run_id}")
    assert run["params"] == {"lr": "0.1"}
    assert run["tags"]["team"] == "search"
    assert run["metrics"]["loss"]["value"] == 0.25 and run["metrics"]["loss"]["step"] == 2
    assert run["metrics"]["odd"]["value"] == "NaN" and run["metrics"]["big"]["value"] == "Infinity"
    assert isinstance(run["metrics"]["loss"]["timestamp"], int)
    status, err = t("POST", f"/runs/{run_id}/log", {"params": {"lr": "0.2"}})
    assert status == 400 and err["error"]["code"] == "INVALID_ARGUMENT"
    status, err = t("POST", f"/runs/{run_id}/log", {"metrics": [{"key": "x", "value": "high"}]})
    assert status == 400 and err["error"]["field"] == "metrics[0].value"
    status, err = t("POST", f"/runs/{run_id}/log", {"metrics": [{"value": 1}]})
    assert status == 400 and err["error"]["field"] == "metrics[0].key"
    status, err = t("POST", f"/runs/{run_id}/log", {"metrix": []})
    assert status == 400 and err["error"]["field"] == "metrix"
    status, err = t("POST", f"/runs/{run_id}/log",
                    {"metrics": [{"key": "m", "value": 1, "step": i} for i in range(1001)]})
    assert status == 400 and "1000" in err["error"]["message"]
    status, err = t("POST", "/runs/" + "0" * 32 + "/log", {"metrics": [{"key": "m", "value": 1}]})
    assert status == 404
    # Nothing of the rejected batches was stored.
    _, history = t("GET", f"/runs/{run_id}/metrics/m")
    assert history["points"] == [] and history["total_points"] == 0


def test_search_filter_order_and_pages(t):
    ids = {}
    for name, auc, team in [("a", 0.3, "ads"), ("b", 0.6, "ads"), ("c", 0.9, "search")]:
        run = run_of(t, experiment="search", run_name=name)
        ids[name] = run["run_id"]
        log(t, run["run_id"], metrics=[{"key": "auc", "value": auc}], params={"lr": str(auc)},
            tags={"team": team})
    run_of(t, experiment="elsewhere", run_name="z")
    status, res = t("POST", "/runs:search", {"experiments": ["search"], "filter": "metrics.auc > 0.5",
                                             "order_by": ["metrics.auc DESC"]})
    assert status == 200, res
    assert [r["run_name"] for r in res["runs"]] == ["c", "b"] and res["next_page_token"] == ""
    _, res = t("POST", "/runs:search", {"experiments": ["search"],
                                        "filter": "tags.team = 'ads' and params.lr = '0.3'"})
    assert [r["run_name"] for r in res["runs"]] == ["a"]
    # No experiments: every experiment of the project.
    _, res = t("POST", "/runs:search", {})
    assert sorted(r["run_name"] for r in res["runs"]) == ["a", "b", "c", "z"]
    seen, token = [], ""
    while True:
        body = {"experiments": ["search"], "limit": 2, "order_by": ["attributes.start_time"]}
        if token:
            body["page_token"] = token
        status, res = t("POST", "/runs:search", body)
        assert status == 200 and len(res["runs"]) <= 2
        seen += [r["run_id"] for r in res["runs"]]
        token = res["next_page_token"]
        if not token:
            break
    assert sorted(seen) == sorted(ids.values())
    status, err = t("POST", "/runs:search", {"experiments": ["search"], "filter": "metrics.auc >> 1"})
    assert status == 400 and err["error"]["code"] == "INVALID_ARGUMENT"
    status, err = t("POST", "/runs:search", {"experiments": ["nope"]})
    assert status == 404
    status, err = t("POST", "/runs:search", {"limit": 0})
    assert status == 400 and err["error"]["field"] == "limit"


def test_history_pages_and_downsamples_keeping_spikes(t):
    run_id = run_of(t)["run_id"]
    for chunk in range(5):
        metrics = [{"key": "loss", "value": 1.0 / (1 + s), "step": s, "timestamp": 1000 + s}
                   for s in range(chunk * 1000, chunk * 1000 + 1000)]
        if chunk == 2:
            metrics[500]["value"] = 99.0  # a spike at step 2500
        log(t, run_id, metrics=metrics)
    # Every point, paged.
    got, token = [], ""
    while True:
        q = "?limit=2000" + (f"&page_token={urllib.parse.quote(token)}" if token else "")
        status, h = t("GET", f"/runs/{run_id}/metrics/loss{q}")
        assert status == 200, h
        got += h["points"]
        token = h["next_page_token"]
        assert h["total_points"] == 5000 and h["downsampled"] is False
        if not token:
            break
    assert [p["step"] for p in got] == list(range(5000))
    # Downsampled: at most 100 points; the spike survives.
    status, h = t("GET", f"/runs/{run_id}/metrics/loss?max_points=100")
    assert status == 200 and h["downsampled"] is True and 0 < len(h["points"]) <= 100
    assert max(p["value"] for p in h["points"]) == 99.0
    steps = [p["step"] for p in h["points"]]
    assert steps == sorted(steps)
    status, h = t("GET", f"/runs/{run_id}/metrics/loss?start_step=10&end_step=19")
    assert [p["step"] for p in h["points"]] == list(range(10, 20)) and h["total_points"] == 10
    assert t("GET", f"/runs/{run_id}/metrics/loss?max_points=10001")[1]["error"]["field"] == "max_points"
    assert t("GET", f"/runs/{run_id}/metrics/loss?limit=0")[0] == 400
    # Keys with a slash travel percent-encoded.
    log(t, run_id, metrics=[{"key": "train/loss", "value": 1, "step": 0}])
    status, h = t("GET", f"/runs/{run_id}/metrics/train%2Floss")
    assert status == 200 and h["key"] == "train/loss" and len(h["points"]) == 1


def test_compare_runs(t):
    a = run_of(t, run_name="a", tags={})
    b = run_of(t, run_name="b")
    log(t, a["run_id"], params={"lr": "0.1"},
        metrics=[{"key": "loss", "value": 1.0 - s / 10, "step": s} for s in range(10)])
    log(t, b["run_id"], params={"lr": "0.2"},
        metrics=[{"key": "loss", "value": 2.0, "step": 0}, {"key": "acc", "value": 0.5, "step": 0}])
    status, res = t("POST", "/runs:compare", {"run_ids": [a["run_id"], b["run_id"]]})
    assert status == 200, res
    ra, rb = res["runs"]
    assert ra["run_id"] == a["run_id"] and ra["run_name"] == "a" and ra["params"] == {"lr": "0.1"}
    assert [p["step"] for p in ra["metrics"]["loss"]] == list(range(10))
    assert set(rb["metrics"]) == {"loss", "acc"}
    _, res = t("POST", "/runs:compare", {"run_ids": [a["run_id"], b["run_id"]], "keys": ["acc"],
                                         "max_points": 5})
    assert res["runs"][0]["metrics"] == {"acc": []}
    assert res["runs"][1]["metrics"]["acc"][0]["value"] == 0.5
    status, err = t("POST", "/runs:compare", {"run_ids": []})
    assert status == 400 and err["error"]["field"] == "run_ids"
    status, err = t("POST", "/runs:compare", {"run_ids": ["x"] * 101})
    assert status == 400 and err["error"]["field"] == "run_ids"
    status, err = t("POST", "/runs:compare", {"run_ids": [a["run_id"], "0" * 32]})
    assert status == 404 and err["error"]["field"] == "run_ids[1]"


def test_a_token_scoped_to_another_project_sees_no_runs(server, t):
    admin = server.admin_token
    run_id = run_of(t)["run_id"]
    assert server.request("POST", "/api/v1/projects", admin, {"name": "other"})[0] == 201
    _, tok = server.request("POST", "/api/v1/tokens", admin, {"name": "o", "project": "other"})
    other = tok["token"]
    assert t("GET", f"/runs/{run_id}", token=other)[0] == 404
    assert t("GET", "/experiments", token=other)[0] == 404
    assert t("POST", f"/runs/{run_id}/log", {"params": {"x": "1"}}, token=other)[0] == 404
    assert t("POST", "/runs:search", {}, token=other)[0] == 404
    # The run is not reachable through the other project's path either.
    status, _ = server.request("GET", f"/api/v1/projects/other/runs/{run_id}", token=other)
    assert status == 404


def test_viewers_read_but_cannot_write(server, t):
    admin = server.admin_token
    assert server.request("POST", "/api/v1/users", admin, {"name": "vera"})[0] == 201
    assert server.request("PUT", "/api/v1/projects/ml/members/vera", admin, {"role": "viewer"})[0] == 200
    _, tok = server.request("POST", "/api/v1/tokens", admin, {"name": "v", "user": "vera"})
    viewer = tok["token"]
    run_id = run_of(t)["run_id"]
    assert t("GET", f"/runs/{run_id}", token=viewer)[0] == 200
    assert t("POST", f"/runs/{run_id}/log", {"params": {"x": "1"}}, token=viewer)[0] == 403
    assert t("POST", "/runs", {}, token=viewer)[0] == 403
    assert t("POST", "/experiments", {"name": "nope"}, token=viewer)[0] == 403
    assert server.request("GET", P + "/experiments")[0] == 401
