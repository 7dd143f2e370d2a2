"""`lathe model …` and `lathe run artifacts` against the real server.

Runs and artifact files are made through the native API (docs/tracking.md),
models with the CLI, then read back as tables, JSON and YAML.
"""
import json
import subprocess
import urllib.parse

import pytest

from conftest import LATHE

PROJECT = "ml"


@pytest.fixture
def tracked(server):
    server.cli("project", "create", PROJECT)
    return server


def cli(server, *args, **kw):
    env = dict(kw.pop("env", {}) or {})
    env.setdefault("LATHE_PROJECT", PROJECT)
    return server.cli(*args, env=env, **kw)


def api(server, method, path, body=None, expect=200, raw=None):
    headers = {"Content-Type": "application/octet-stream"} if raw is not None else None
    status, answer = server.request(method, f"/api/v1/projects/{PROJECT}{path}",
                                    token=server.admin_token, body=body, raw=raw, headers=headers)
    assert status == expect, (status, answer)
    return answer


def make_run(server, name, files=None):
    run = api(server, "POST", "/runs", {"experiment": "models", "run_name": name}, expect=201)
    for path, data in (files or {}).items():
        quoted = "/".join(urllib.parse.quote(p, safe="") for p in path.split("/"))
        api(server, "PUT", f"/runs/{run['run_id']}/artifacts/{quoted}", raw=data, expect=201)
    return run


def test_register_creates_the_model_and_resolves_runs_uris(tracked):
    run = make_run(tracked, "trainer", {"model/MLmodel": b"flavors: {}\n"})
    res = cli(tracked, "model", "register", "churn", "--source", f"runs:/{run['run_id']}/model",
              "--description", "first", "--tag", "framework=sklearn")
    assert 'model "churn" created' in res.stdout and 'model "churn" version 1 registered' in res.stdout
    assert run["artifact_uri"] + "/model" in res.stdout
    v2 = json.loads(cli(tracked, "model", "register", "churn", "--source", "s3://b/churn",
                        "--run", "trainer", "-o", "json").stdout)
    assert v2["version"] == 2 and v2["source"] == "s3://b/churn" and v2["run_id"] == run["run_id"]
    v3 = json.loads(cli(tracked, "model", "register", "churn", "--source", "s3://b/x",
                        "-o", "json").stdout)
    assert v3["version"] == 3 and v3["run_id"] is None
    v1 = api(tracked, "GET", "/models/churn/versions/1")
    assert v1["source"] == run["artifact_uri"] + "/model" and v1["run_id"] == run["run_id"]
    assert v1["tags"] == {"framework": "sklearn"} and v1["description"] == "first"
    # --run and a runs:/ source naming another run disagree.
    other = make_run(tracked, "other")
    res = cli(tracked, "model", "register", "churn", "--source", f"runs:/{run['run_id']}/m",
              "--run", other["run_id"], check=False)
    assert res.returncode == 1 and "--run" in res.stderr
    res = cli(tracked, "model", "register", "churn", "--source", "runs:/" + "0" * 32 + "/m",
              check=False)
    assert res.returncode == 1 and "not found" in res.stderr
    assert len(api(tracked, "GET", "/models/churn/versions")["items"]) == 3


def test_ls_show_versions_and_version_with_lineage(tracked):
    run = make_run(tracked, "trainer")
    cli(tracked, "model", "create", "churn", "--description", "who leaves", "--tag", "team=ads")
    cli(tracked, "model", "create", "fraud")
    for _ in range(2):
        cli(tracked, "model", "register", "churn", "--source", f"runs:/{run['run_id']}/model")
    cli(tracked, "model", "alias", "churn", "champion", "2")

    lines = cli(tracked, "model", "ls").stdout.strip().splitlines()
    assert lines[0].split() == ["NAME", "LATEST", "ALIASES", "UPDATED", "DESCRIPTION"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["churn"][1:3] == ["2", "champion=2"] and rows["fraud"][1:3] == ["-", "-"]
    items = json.loads(cli(tracked, "model", "ls", "--filter", "name LIKE 'ch%'",
                           "-o", "json").stdout)["items"]
    assert [m["name"] for m in items] == ["churn"]
    res = cli(tracked, "model", "ls", "--limit", "1")
    assert len(res.stdout.strip().splitlines()) == 2 and "--page-token" in res.stderr

    show = cli(tracked, "model", "show", "churn").stdout
    for text in ("NAME:", "who leaves", "Tags:", "team", "Aliases:", "champion",
                 "Latest versions:"):
        assert text in show, show
    assert "name: churn" in cli(tracked, "model", "show", "churn", "-o", "yaml").stdout

    lines = cli(tracked, "model", "versions", "churn").stdout.strip().splitlines()
    assert lines[0].split() == ["VERSION", "STAGE", "ALIASES", "STATUS", "RUN", "SOURCE",
                                "CREATED"]
    assert [line.split()[:5] for line in lines[1:]] == [
        ["2", "None", "champion", "READY", run["run_id"]],
        ["1", "None", "-", "READY", run["run_id"]]]
    assert "has no versions" in cli(tracked, "model", "versions", "fraud").stdout

    text = cli(tracked, "model", "version", "churn", "1").stdout
    assert "Lineage:" in text and "trainer" in text and "experiment_name" in text
    full = json.loads(cli(tracked, "model", "version", "churn", "1", "-o", "json").stdout)
    assert full["lineage"]["run_id"] == run["run_id"]
    assert full["lineage"]["experiment_name"] == "models"


def test_alias_stage_and_rm(tracked):
    for _ in range(3):
        cli(tracked, "model", "register", "churn", "--source", "s3://b/m")
    res = cli(tracked, "model", "alias", "churn", "champion", "1")
    assert "now points at version 1" in res.stdout
    moved = json.loads(cli(tracked, "model", "alias", "churn", "champion", "3", "-o", "json").stdout)
    assert moved["version"] == 3 and moved["aliases"] == ["champion"]
    assert "VERSION:" in cli(tracked, "model", "alias", "churn", "champion").stdout
    shown = json.loads(cli(tracked, "model", "alias", "churn", "champion", "-o", "json").stdout)
    assert shown["version"] == 3
    assert "deleted" in cli(tracked, "model", "alias", "churn", "champion", "--delete").stdout
    res = cli(tracked, "model", "alias", "churn", "champion", check=False)
    assert res.returncode == 1 and res.stderr.startswith("error:")
    res = cli(tracked, "model", "alias", "churn", "champion", "2", "--delete", check=False)
    assert res.returncode == 1 and "--delete" in res.stderr

    assert "stage Production" in cli(tracked, "model", "stage", "churn", "1", "production").stdout
    res = cli(tracked, "model", "stage", "churn", "2", "Production", "--archive-existing")
    assert "archived" in res.stdout
    assert api(tracked, "GET", "/models/churn/versions/1")["stage"] == "Archived"
    assert api(tracked, "GET", "/models/churn/versions/2")["stage"] == "Production"
    res = cli(tracked, "model", "stage", "churn", "2", "Shipped", check=False)
    assert res.returncode == 1 and "stage" in res.stderr

    assert "version 3 deleted" in cli(tracked, "model", "rm", "churn", "3").stdout
    versions = api(tracked, "GET", "/models/churn/versions")["items"]
    assert [v["version"] for v in versions] == [2, 1]
    assert "deleted" in cli(tracked, "model", "rm", "churn").stdout
    res = cli(tracked, "model", "show", "churn", check=False)
    assert res.returncode == 1 and "not found" in res.stderr
    res = cli(tracked, "model", "version", "churn", "x", check=False)
    assert res.returncode == 1 and "version" in res.stderr


def test_run_artifacts_lists_directories(tracked):
    run = make_run(tracked, "with-files", {"model/MLmodel": b"m" * 10,
                                           "model/data/weights.bin": b"w" * 3000,
                                           "notes.txt": b"hello"})
    lines = cli(tracked, "run", "artifacts", "with-files").stdout.strip().splitlines()
    assert lines[0].split() == ["PATH", "TYPE", "SIZE"]
    assert [line.split()[:2] for line in lines[1:]] == [["model", "dir"], ["notes.txt", "file"]]
    assert lines[2].split()[2:] == ["5", "B"]
    rec = cli(tracked, "run", "artifacts", run["run_id"], "model", "-r").stdout
    paths = [line.split()[0] for line in rec.strip().splitlines()[1:]]
    assert paths == ["model/MLmodel", "model/data", "model/data/weights.bin"]
    assert "2.9 KiB" in rec
    listing = json.loads(cli(tracked, "run", "artifacts", "with-files", "-o", "json").stdout)
    assert listing["root_uri"] == run["artifact_uri"]
    assert {f["path"] for f in listing["files"]} == {"model", "notes.txt"}
    empty = make_run(tracked, "empty")
    assert "no artifacts" in cli(tracked, "run", "artifacts", empty["run_id"]).stdout


def test_project_is_required_and_errors_are_one_line(tracked):
    res = tracked.cli("model", "ls", check=False, env={"LATHE_PROJECT": ""})
    assert res.returncode == 1 and "--project" in res.stderr
    assert tracked.cli("model", "ls", "--project", PROJECT,
                       env={"LATHE_PROJECT": ""}).returncode == 0
    res = cli(tracked, "model", "create", "bad/name", check=False)
    assert res.returncode == 1 and res.stderr.startswith("error:")
    assert len(res.stderr.strip().splitlines()) == 1
    cli(tracked, "model", "create", "dup")
    res = cli(tracked, "model", "create", "dup", check=False)
    assert res.returncode == 1 and "error:" in res.stderr


def test_every_model_command_has_help():
    for args in (["model"], ["model", "ls"], ["model", "create"], ["model", "show"],
                 ["model", "versions"], ["model", "version"], ["model", "alias"],
                 ["model", "register"], ["model", "stage"], ["model", "rm"],
                 ["run", "artifacts"]):
        res = subprocess.run([LATHE, *args, "--help"], capture_output=True, text=True, timeout=10)
        assert res.returncode == 0 and "--help" in res.stdout, (args, res.stderr)
    out = subprocess.run([LATHE, "--help"], capture_output=True, text=True, check=True).stdout
    assert "model" in out
