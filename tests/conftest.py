"""Fixtures that run the real `lathe` binary against real stores on loopback.

LATHE_BIN points at the binary (default: build/lathe). When
LATHE_TEST_POSTGRES_URL is set (scripts/test.sh starts a private PostgreSQL
and sets it), every test using the `server` fixture runs twice: on SQLite and
on PostgreSQL, each time on a fresh database.
"""
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LATHE = os.environ.get("LATHE_BIN", os.path.join(ROOT, "build", "lathe"))
PG_URL = os.environ.get("LATHE_TEST_POSTGRES_URL", "")


def fresh_postgres_db():
    """Creates an empty database on the test PostgreSQL server; returns its URL."""
    name = "it_" + uuid.uuid4().hex[:12]
    subprocess.run(["psql", PG_URL, "-q", "-c", f"CREATE DATABASE {name}"], check=True,
                   capture_output=True)
    parsed = urllib.parse.urlparse(PG_URL)
    return parsed._replace(path="/" + name).geturl()


class Server:
    """A running `lathe server` on a free port."""

    def __init__(self, home, store=None, extra_args=(), env=None):
        self.home = str(home)
        self.store = store
        self.extra_args = list(extra_args)
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.proc = None
        self.url = None
        self.log_path = os.path.join(self.home, "server.log")

    def start(self, timeout=10):
        os.makedirs(self.home, exist_ok=True)
        url_file = os.path.join(self.home, "server.url")
        if os.path.exists(url_file):
            os.remove(url_file)
        args = [LATHE, "server", "--home", self.home, "--listen", "127.0.0.1:0"]
        if self.store:
            args += ["--store", self.store]
        args += self.extra_args
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.logs()}")
            if os.path.exists(url_file):
                with open(url_file) as f:
                    self.url = f.read().strip()
                return self
            time.sleep(0.01)
        raise RuntimeError("server did not start in time:\n" + self.logs())

    def logs(self):
        with open(self.log_path) as f:
            return f.read()

    @property
    def admin_token(self):
        with open(os.path.join(self.home, "admin.token")) as f:
            return f.read().strip()

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=timeout)
        if self.proc:
            self.log.close()
        return self.proc.returncode if self.proc else None

    def request(self, method, path, token=None, body=None, headers=None, raw=None):
        """Returns (status, parsed JSON or text)."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if token:
            req.add_header("Authorization", "Bearer " + token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as res:
                status, text = res.status, res.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text

    def cli(self, *args, token=None, check=True, env=None, input=None):
        """Runs the CLI against this server; returns CompletedProcess."""
        full_env = dict(os.environ)
        full_env["LATHE_SERVER"] = self.url
        full_env["LATHE_TOKEN"] = token or self.admin_token
        full_env.update(env or {})
        res = subprocess.run([LATHE, *args], capture_output=True, text=True, env=full_env,
                             timeout=60, input=input)
        if check and res.returncode != 0:
            raise AssertionError(f"lathe {' '.join(args)} failed ({res.returncode}):\n"
                                 f"{res.stdout}\n{res.stderr}")
        return res


STORES = ["sqlite"] + (["postgres"] if PG_URL else [])


@pytest.fixture(params=STORES)
def store_url(request, tmp_path):
    if request.param == "postgres":
        return fresh_postgres_db()
    return "sqlite://" + str(tmp_path / "home" / "lathe.db")


@pytest.fixture
def server(tmp_path, store_url):
    s = Server(tmp_path / "home", store=store_url).start()
    yield s
    s.stop()
