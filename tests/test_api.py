"""The REST API through the real binary: auth, tenancy, errors, metrics."""
import json
import socket

import pytest


def test_api_requires_a_token_but_health_and_metrics_do_not(server):
    assert server.request("GET", "/api/v1/projects")[0] == 401
    assert server.request("GET", "/api/v1/projects", token="lathe_bogus")[0] == 401
    status, body = server.request("GET", "/api/v1/projects", token=server.admin_token)
    assert status == 200
    # Only the project created at first start for MLflow clients.
    assert [p["name"] for p in body["items"]] == ["default"] and body["next_page_token"] == ""
    assert server.request("GET", "/healthz")[0] == 200
    assert server.request("GET", "/readyz")[0] == 200
    status, text = server.request("GET", "/metrics")
    assert status == 200
    assert "lathe_build_info{" in text
    assert 'lathe_http_requests_total{method="GET",route="/api/v1/projects",code="401"}' in text
    assert "lathe_http_request_duration_seconds_bucket" in text
    assert "lathe_store_transaction_duration_seconds_bucket" in text


def test_admin_token_file_is_private_and_logged(server):
    import os
    import stat
    mode = stat.S_IMODE(os.stat(os.path.join(server.home, "admin.token")).st_mode)
    assert mode == 0o600
    assert "admin.token" in server.logs()


def test_project_scoped_token_cannot_read_or_change_another_project(server):
    admin = server.admin_token
    assert server.request("POST", "/api/v1/projects", admin, {"name": "team-a"})[0] == 201
    assert server.request("POST", "/api/v1/projects", admin, {"name": "team-b"})[0] == 201
    status, tok = server.request("POST", "/api/v1/tokens", admin, {"name": "a", "project": "team-a"})
    assert status == 201
    a_token = tok["token"]
    assert server.request("GET", "/api/v1/projects/team-a", a_token)[0] == 200
    assert server.request("GET", "/api/v1/projects/team-b", a_token)[0] == 404
    assert server.request("DELETE", "/api/v1/projects/team-b", a_token)[0] == 404
    assert server.request("PUT", "/api/v1/projects/team-b/members/admin", a_token,
                          {"role": "viewer"})[0] == 404
    assert server.request("GET", "/api/v1/projects/team-b/members", a_token)[0] == 404
    assert server.request("POST", "/api/v1/tokens", a_token,
                          {"name": "widen", "project": "team-b"})[0] == 404
    status, listing = server.request("GET", "/api/v1/projects", a_token)
    assert [p["name"] for p in listing["items"]] == ["team-a"]
    # team-b is intact.
    assert server.request("GET", "/api/v1/projects/team-b", admin)[0] == 200


def test_roles_for_members(server):
    admin = server.admin_token
    assert server.request("POST", "/api/v1/users", admin, {"name": "alice"})[0] == 201
    _, t = server.request("POST", "/api/v1/tokens", admin, {"name": "a", "user": "alice"})
    alice = t["token"]
    assert server.request("POST", "/api/v1/projects", admin, {"name": "ads"})[0] == 201
    assert server.request("GET", "/api/v1/projects/ads", alice)[0] == 404
    assert server.request("PUT", "/api/v1/projects/ads/members/alice", admin, {"role": "viewer"})[0] == 200
    status, p = server.request("GET", "/api/v1/projects/ads", alice)
    assert status == 200 and p["role"] == "viewer"
    status, err = server.request("DELETE", "/api/v1/projects/ads", alice)
    assert status == 403 and err["error"]["code"] == "PERMISSION_DENIED"
    assert server.request("GET", "/api/v1/users", alice)[0] == 403


@pytest.mark.parametrize("raw,field", [
    (b'{"name": "x",', None),             # malformed JSON
    (b'{"name": 3}', "name"),              # wrong type
    (b'{"name": "ok", "colour": 1}', "colour"),  # unknown field
    (b'{}', "name"),                       # missing field
    (b'[1,2]', ""),                        # not an object
    (b'{"name": "Bad Name"}', "name"),     # invalid value
])
def test_bad_input_is_rejected_naming_the_field_and_writes_nothing(server, raw, field):
    status, body = server.request("POST", "/api/v1/projects", server.admin_token, raw=raw)
    assert status == 400, body
    assert body["error"]["code"] == "INVALID_ARGUMENT"
    if field:
        assert body["error"]["field"] == field
    if raw.endswith(b","):
        assert "byte" in body["error"]["message"]
    _, listing = server.request("GET", "/api/v1/projects", server.admin_token)
    assert [p["name"] for p in listing["items"]] == ["default"]


def test_oversized_body_is_413(tmp_path, store_url):
    from conftest import Server
    s = Server(tmp_path / "home", store=store_url,
               extra_args=["--set", "http.max_body_bytes=1024"]).start()
    try:
        status, body = s.request("POST", "/api/v1/projects", s.admin_token,
                                 raw=json.dumps({"name": "x", "description": "d" * 5000}).encode())
        assert status == 413
        assert body["error"]["field"] == "body"
        _, listing = s.request("GET", "/api/v1/projects", s.admin_token)
        assert [p["name"] for p in listing["items"]] == ["default"]
    finally:
        s.stop()


def test_request_id_is_echoed_and_logged(server):
    import urllib.request
    req = urllib.request.Request(server.url + "/healthz", headers={"X-Request-Id": "abc-123"})
    with urllib.request.urlopen(req, timeout=10) as res:
        assert res.headers["X-Request-Id"] == "abc-123"
    server.stop()
    assert "rid=abc-123" in server.logs()


def test_keep_alive_and_one_segment_responses(server):
    """Many requests over one connection, each answered promptly (no Nagle stall)."""
    import http.client
    import time
    conn = http.client.HTTPConnection(server.url.replace("http://", ""), timeout=10)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    start = time.time()
    for _ in range(200):
        conn.request("GET", "/api/v1/projects", headers={"Authorization": "Bearer " + server.admin_token})
        res = conn.getresponse()
        assert res.status == 200
        res.read()
    elapsed = time.time() - start
    # With split header/body writes each call would wait ~40 ms for a delayed ACK.
    assert elapsed < 4.0, elapsed
    conn.close()
