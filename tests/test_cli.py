"""The `lathe` CLI against a real server."""
import json
import os

import pytest

from conftest import LATHE


def test_login_saves_config_and_later_commands_use_it(server, tmp_path):
    cfg = tmp_path / "cli" / "config.yaml"
    env = {"LATHE_CLI_CONFIG": str(cfg), "LATHE_SERVER": "", "LATHE_TOKEN": ""}
    token_file = os.path.join(server.home, "admin.token")
    res = server.cli("--server", server.url, "login", "--token-file", token_file, env=env)
    assert "as admin" in res.stdout
    assert oct(os.stat(cfg).st_mode & 0o777) == "0o600"
    res = server.cli("whoami", "-o", "json", env=env)
    assert json.loads(res.stdout)["user"] == "admin"


def test_project_lifecycle_with_tables_json_and_yaml(server):
    server.cli("project", "create", "fraud", "--description", "card fraud models")
    server.cli("project", "create", "ranking")
    table = server.cli("project", "ls").stdout
    lines = table.strip().splitlines()
    assert lines[0].split()[:3] == ["NAME", "ROLE", "CREATED"]
    assert [l.split()[0] for l in lines[1:]] == ["default", "fraud", "ranking"]
    items = json.loads(server.cli("project", "ls", "-o", "json").stdout)["items"]
    assert {p["name"] for p in items} == {"default", "fraud", "ranking"}
    yaml_out = server.cli("project", "ls", "-o", "yaml").stdout
    assert "- id:" in yaml_out and "name: fraud" in yaml_out
    page = server.cli("project", "ls", "--limit", "1", "-o", "json")
    assert len(json.loads(page.stdout)["items"]) == 1
    assert "--page-token" in page.stderr
    server.cli("project", "rm", "fraud")
    items = json.loads(server.cli("project", "ls", "-o", "json").stdout)["items"]
    assert [p["name"] for p in items] == ["default", "ranking"]


def test_tokens_and_users(server):
    out = server.cli("user", "create", "bob").stdout
    assert "bob" in out
    users = json.loads(server.cli("user", "ls", "-o", "json").stdout)["items"]
    assert {u["name"] for u in users} == {"admin", "bob"}
    server.cli("project", "create", "ads")
    created = json.loads(server.cli("token", "create", "--name", "ci", "--project", "ads",
                                    "--role", "viewer", "--ttl", "1d", "-o", "json").stdout)
    assert created["token"].startswith("lathe_")
    assert created["expires_at"] is not None
    scoped = created["token"]
    # The scoped viewer token sees ads but cannot delete it.
    assert server.cli("project", "get", "ads", token=scoped).returncode == 0
    res = server.cli("project", "rm", "ads", token=scoped, check=False)
    assert res.returncode != 0
    assert res.stderr.startswith("error: ") and len(res.stderr.strip().splitlines()) == 1
    listed = server.cli("token", "ls").stdout
    assert "ci" in listed and created["id"] in listed
    server.cli("token", "revoke", created["id"])
    res = server.cli("project", "get", "ads", token=scoped, check=False)
    assert res.returncode == 1 and "revoked" in res.stderr
    # Human output of a new token warns that it is shown once.
    assert "shown only now" in server.cli("token", "create", "--name", "x").stdout


def test_errors_are_one_line_and_nonzero(server):
    res = server.cli("project", "get", "missing", check=False)
    assert res.returncode == 1
    assert res.stderr == 'error: project "missing" not found\n'
    res = server.cli("project", "create", "Bad_Name", check=False)
    assert res.returncode == 1 and "name" in res.stderr
    res = server.cli("project", "ls", token="lathe_wrong", check=False)
    assert res.returncode == 1 and "invalid token" in res.stderr


def test_unreachable_server_is_a_clear_error(tmp_path):
    import subprocess
    env = dict(os.environ, LATHE_CLI_CONFIG=str(tmp_path / "none.yaml"))
    res = subprocess.run([LATHE, "--server", "http://127.0.0.1:9", "--token", "x", "project", "ls"],
                         capture_output=True, text=True, env=env, timeout=30)
    assert res.returncode == 1
    assert res.stderr.startswith("error: cannot reach http://127.0.0.1:9")
    res = subprocess.run([LATHE, "project", "ls"], capture_output=True, text=True,
                         env=dict(env, LATHE_SERVER="", LATHE_TOKEN=""), timeout=30)
    assert res.returncode == 1 and "lathe login" in res.stderr


@pytest.mark.parametrize("args", [[], ["server"], ["project"], ["project", "create"], ["token", "create"],
                                  ["token", "ls"], ["user"], ["login"], ["project", "member", "set"]])
def test_help_everywhere(args):
    import subprocess
    res = subprocess.run([LATHE, *args, "--help"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert "Usage" in res.stdout or "usage" in res.stdout.lower()


def test_version():
    import subprocess
    res = subprocess.run([LATHE, "version"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0 and res.stdout.startswith("lathe ")
