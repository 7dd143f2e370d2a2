"""Crash safety, migrations, graceful shutdown and configuration precedence."""
import concurrent.futures
import http.client
import json
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time

import pytest

from conftest import LATHE, PG_URL, Server, fresh_postgres_db


def _create_projects(url, token, names, acked, stop):
    """Creates projects over one keep-alive connection; records acknowledged names."""
    host = url.replace("http://", "")
    conn = None
    for name in names:
        if stop.is_set():
            return
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, timeout=10)
            conn.request("POST", "/api/v1/projects", body=json.dumps({"name": name}),
                         headers={"Authorization": "Bearer " + token,
                                  "Content-Type": "application/json"})
            res = conn.getresponse()
            res.read()
            if res.status == 201:
                acked.append(name)
        except (OSError, http.client.HTTPException):
            conn = None  # server died: everything after this is unacknowledged
            return


@pytest.mark.parametrize("kind", ["sqlite"] + (["postgres"] if PG_URL else []))
def test_kill_9_during_1000_concurrent_creations_loses_no_acknowledged_write(tmp_path, kind):
    store = fresh_postgres_db() if kind == "postgres" else None
    s = Server(tmp_path / "home", store=store).start()
    token = s.admin_token
    names = [f"p{i:04d}" for i in range(1000)]
    acked = []
    stop = threading.Event()
    workers = 32
    chunks = [names[i::workers] for i in range(workers)]
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(_create_projects, s.url, token, c, acked, stop) for c in chunks]
        # Kill once a random share of the creations has been acknowledged.
        target = random.randint(200, 600)
        deadline = time.time() + 60
        while len(acked) < target and time.time() < deadline:
            time.sleep(0.001)
        s.proc.send_signal(signal.SIGKILL)
        s.proc.wait(timeout=10)
        stop.set()
        for f in futures:
            f.result(timeout=30)
    assert 0 < len(acked) < 1000, len(acked)

    s2 = Server(tmp_path / "home", store=store).start()
    try:
        present = set()
        page = ""
        while True:
            status, body = s2.request("GET", f"/api/v1/projects?limit=1000&page_token={page}", token)
            assert status == 200
            present.update(p["name"] for p in body["items"])
            page = body["next_page_token"]
            if not page:
                break
        missing = set(acked) - present
        assert not missing, f"{len(missing)} acknowledged creations lost: {sorted(missing)[:5]}"
        # No half-written rows: every project has its creator's membership.
        for name in present:
            status, members = s2.request("GET", f"/api/v1/projects/{name}/members", token)
            assert status == 200 and [m["user"] for m in members["items"]] == ["admin"], name
    finally:
        s2.stop()
    if kind == "sqlite":
        db = sqlite3.connect(os.path.join(s.home, "lathe.db"))
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        orphans = db.execute("SELECT COUNT(*) FROM projects p LEFT JOIN memberships m "
                             "ON m.project_id = p.id WHERE m.project_id IS NULL").fetchone()[0]
        assert orphans == 0


def test_refuses_a_schema_newer_than_it_knows(tmp_path):
    s = Server(tmp_path / "home").start()
    s.stop()
    db = sqlite3.connect(os.path.join(s.home, "lathe.db"))
    db.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)")
    db.commit()
    db.close()
    res = subprocess.run([LATHE, "server", "--home", s.home, "--listen", "127.0.0.1:0"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode != 0
    assert "999" in res.stderr and "upgrade" in res.stderr


def test_sigterm_finishes_in_flight_requests_then_exits(tmp_path):
    s = Server(tmp_path / "home").start()
    token = s.admin_token
    results = []
    stop = threading.Event()

    def hammer():
        host = s.url.replace("http://", "")
        while not stop.is_set():
            try:
                conn = http.client.HTTPConnection(host, timeout=10)
                conn.request("GET", "/api/v1/projects", headers={"Authorization": "Bearer " + token})
                res = conn.getresponse()
                body = res.read()
                results.append((res.status, len(body) == int(res.headers["Content-Length"])))
                conn.close()
            except ConnectionRefusedError:
                return
            except (OSError, http.client.HTTPException) as e:
                results.append(("error", repr(e)))
                return

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    start = time.time()
    code = s.stop(signal.SIGTERM)
    stop.set()
    for t in threads:
        t.join(timeout=15)
    assert code == 0
    assert time.time() - start < 10
    assert not os.path.exists(os.path.join(s.home, "server.url"))
    complete = [r for r in results if r[0] == 200 and r[1] is True]
    assert len(complete) > 0
    # Every answer that started was whole; a connection that raced shutdown
    # may be reset before any byte was answered, never mid-response.
    assert all(r[0] in (200, "error") for r in results)
    assert "stopped" in s.logs()


def test_config_precedence_flags_over_env_over_file(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.yaml").write_text("log_level: off\n")
    # File alone: no access log lines.
    s = Server(home).start()
    s.request("GET", "/healthz")
    s.stop()
    assert '"GET /healthz"' not in s.logs()
    # Environment beats the file.
    s = Server(home, env={"LATHE_LOG_LEVEL": "info"}).start()
    s.request("GET", "/healthz")
    s.stop()
    assert '"GET /healthz"' in s.logs()
    # A flag beats the environment.
    open(s.log_path, "w").close()
    s = Server(home, extra_args=["--log-level", "error"], env={"LATHE_LOG_LEVEL": "info"}).start()
    s.request("GET", "/healthz")
    s.stop()
    assert '"GET /healthz"' not in s.logs()


def test_bad_config_is_one_clear_error(tmp_path):
    res = subprocess.run([LATHE, "server", "--home", str(tmp_path), "--set", "http.threads=lots"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1
    assert res.stderr.strip() == 'error: --http.threads: "lots" is not an integer'
    (tmp_path / "bad.yaml").write_text("listen: 127.0.0.1:0\nhttp: {threadz: 2}\n")
    res = subprocess.run([LATHE, "server", "--config", str(tmp_path / "bad.yaml")],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1 and "http.threadz: unknown setting" in res.stderr
