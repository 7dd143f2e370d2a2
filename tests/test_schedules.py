"""Schedules through the REST API and the `lathe` CLI, on the real binary.

The binary has no injected clock, so wall-clock ticks come from an interval
schedule of a few seconds (create, ls, show, runs with scheduled_time,
pause/resume, rm) and cron behaviour from backfills over past days (the
right ticks, scheduled_time and data-interval params, skip dates, reprocess).
Tick planning, DST and catchup after downtime are unit-tested with a
FakeClock (src/spec/schedule_spec_test.cc, src/control/schedules_test.cc).
Every wait is bounded.
"""
import datetime
import json
import time

import pytest

PROJECT = "ml"
SMALL = {"cpu": "100m", "memory": "64Mi"}
TIME_PARAMS = ("scheduled_time", "data_interval_start", "data_interval_end")


@pytest.fixture
def sc(server):
    server.cli("project", "create", PROJECT)
    return server


def cli(server, *args, **kw):
    env = dict(kw.pop("env", {}) or {})
    env.setdefault("LATHE_PROJECT", PROJECT)
    return server.cli(*args, env=env, **kw)


def api(server, method, path, body=None):
    return server.request(method, f"/api/v1/projects/{PROJECT}{path}",
                          token=server.admin_token, body=body)


def write(tmp_path, doc):
    path = tmp_path / f"{doc['name']}.yaml"
    path.write_text(json.dumps(doc))
    return str(path)


def create_pipeline(server, name, log):
    doc = {"name": name,
           "params": [{"name": p, "type": "string", "default": ""} for p in TIME_PARAMS]
           + [{"name": "label", "type": "string", "default": "none"}],
           "steps": [{"name": "record", "resources": SMALL,
                      "command": ["sh", "-c",
                                  f"echo {{{{params.label}}}} {{{{params.scheduled_time}}}} >> {log}"]}]}
    status, body = api(server, "POST", "/pipelines", {"spec": doc})
    assert status == 201, body


def schedule_runs(server, name):
    status, body = api(server, "GET", f"/pipeline-runs?schedule={name}&limit=1000")
    assert status == 200, body
    return body["items"]


def ticks(server, name):
    status, body = api(server, "GET", f"/schedules/{name}/ticks?limit=1000")
    assert status == 200, body
    return body["items"]


def wait_for(what, fn, timeout):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


def rfc3339(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def instant(text):
    """An RFC 3339 UTC time, with or without a fraction, as a naive UTC datetime."""
    assert text.endswith("Z"), text
    return datetime.datetime.fromisoformat(text[:-1])


def test_interval_schedule_ticks_pauses_and_resumes(sc, tmp_path):
    log = tmp_path / "log"
    create_pipeline(sc, "tick", log)
    start = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    doc = {"name": "every2s", "pipeline": "tick", "interval": "2s",
           "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "max_concurrency": 3,
           "params": {"label": "tick"}}
    out = cli(sc, "schedule", "create", "-f", write(tmp_path, doc)).stdout
    assert 'schedule "every2s" saved; next tick' in out, out
    lines = cli(sc, "schedule", "ls").stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "PIPELINE", "WHEN"], lines
    assert lines[1].split()[:4] == ["every2s", "tick", "every", "2s"], lines
    shown = json.loads(cli(sc, "schedule", "show", "every2s", "-o", "json").stdout)
    assert shown["pipeline"] == "tick" and shown["paused"] is False and shown["next_tick"], shown
    assert shown["spec"]["params"] == {"label": "tick"}

    # Two ticks get runs that succeed, each with its tick as scheduled_time.
    def two_succeeded():
        runs = [r for r in schedule_runs(sc, "every2s") if r["state"] == "succeeded"]
        return runs if len(runs) >= 2 else None
    runs = wait_for("two scheduled runs", two_succeeded, timeout=30)
    for r in runs:
        assert r["schedule_id"] == shown["id"] and r["params"]["label"] == "tick", r
        tick = instant(r["params"]["scheduled_time"])
        assert tick == instant(r["scheduled_time"]), r
        offset = (tick.replace(tzinfo=datetime.timezone.utc) - start).total_seconds()
        assert offset > 0 and offset % 2 == 0, (offset, r)
    logged = log.read_text().splitlines()
    for r in runs:
        assert f"tick {r['params']['scheduled_time']}" in logged, (r, logged)
    table = cli(sc, "schedule", "ticks", "every2s").stdout.splitlines()
    assert table[0].split()[:3] == ["TICK", "STATE", "REASON"] and len(table) >= 3, table
    listed = cli(sc, "pipeline-run", "ls", "--schedule", "every2s").stdout
    assert runs[0]["id"] in listed

    # Paused: ticks are recorded as skipped "Paused" and get no run.
    assert 'schedule "every2s" paused' in cli(sc, "schedule", "pause", "every2s").stdout
    paused_at = len([t for t in ticks(sc, "every2s") if t["state"] != "skipped"])
    wait_for("a tick skipped while paused",
             lambda: [t for t in ticks(sc, "every2s")
                      if t["state"] == "skipped" and t["reason"] == "Paused"], timeout=15)
    assert len([t for t in ticks(sc, "every2s") if t["state"] != "skipped"]) == paused_at
    assert json.loads(cli(sc, "schedule", "show", "every2s", "-o", "json").stdout)["paused"]

    # Resumed: new ticks get runs again.
    assert "resumed" in cli(sc, "schedule", "resume", "every2s").stdout
    wait_for("a run after resume",
             lambda: len([t for t in ticks(sc, "every2s") if t["state"] != "skipped"]) > paused_at,
             timeout=15)

    # Deleting the schedule keeps its runs.
    cli(sc, "schedule", "pause", "every2s")
    assert 'schedule "every2s" deleted' in cli(sc, "schedule", "rm", "every2s").stdout
    assert api(sc, "GET", "/schedules/every2s")[0] == 404
    status, run = api(sc, "GET", f"/pipeline-runs/{runs[0]['id']}")
    assert status == 200 and run["state"] == "succeeded", run


def test_backfill_creates_one_run_per_tick_with_its_interval(sc, tmp_path):
    log = tmp_path / "log"
    create_pipeline(sc, "daily-report", log)
    doc = {"name": "daily", "pipeline": "daily-report", "cron": "0 2 * * *", "timezone": "UTC",
           "params": {"label": "bf"}}
    cli(sc, "schedule", "create", "-f", write(tmp_path, doc))
    today = datetime.datetime.now(datetime.timezone.utc).date()
    day = [today - datetime.timedelta(days=n) for n in range(8)]  # day[n] = n days ago

    # Skip one date: its tick gets no run, from regular ticks or backfills.
    out = cli(sc, "schedule", "skip", "daily", day[4].isoformat()).stdout
    assert day[4].isoformat() in out, out

    out = cli(sc, "schedule", "backfill", "daily", "--from", day[5].isoformat(),
              "--to", day[2].isoformat(), "--max-concurrency", "2").stdout
    assert "backfill " in out and "2 ticks" in out, out
    [bf] = json.loads(cli(sc, "schedule", "backfills", "daily", "-o", "json").stdout)["items"]
    assert bf["total"] == 2 and bf["max_concurrency"] == 2 and bf["reprocess"] == "failed", bf
    assert bf["from"] == rfc3339(datetime.datetime.combine(day[5], datetime.time()))

    def done():
        [b] = json.loads(cli(sc, "schedule", "backfills", "daily", "-o", "json").stdout)["items"]
        return b if b["state"] != "running" else None
    bf = wait_for("the backfill to end", done, timeout=60)
    assert bf["state"] == "succeeded" and bf["succeeded"] == 2 and bf["failed"] == 0, bf

    runs = sorted(schedule_runs(sc, "daily"), key=lambda r: instant(r["params"]["scheduled_time"]))
    want = [datetime.datetime.combine(d, datetime.time(2)) for d in (day[5], day[3])]
    assert [instant(r["params"]["scheduled_time"]) for r in runs] == want, runs
    for r, t in zip(runs, want):
        assert r["state"] == "succeeded" and r["params"]["label"] == "bf", r
        assert instant(r["params"]["data_interval_end"]) == t, r
        assert instant(r["params"]["data_interval_start"]) == t - datetime.timedelta(days=1), r
        assert instant(r["scheduled_time"]) == t, r
    assert sorted(log.read_text().splitlines()) == \
        [f"bf {r['params']['scheduled_time']}" for r in runs]
    backfilled = [t for t in ticks(sc, "daily") if t["backfill_id"] == bf["id"]]
    assert sorted(instant(t["tick"]) for t in backfilled) == want, backfilled
    assert all(t["state"] == "created" and t["run_id"] for t in backfilled), backfilled

    # The same range again: reprocess none leaves ticks that have runs; all makes new ones.
    out = cli(sc, "schedule", "backfill", "daily", "--from", day[5].isoformat(),
              "--to", day[2].isoformat(), "--reprocess", "none").stdout
    assert "0 ticks" in out, out
    cli(sc, "schedule", "backfill", "daily", "--from", day[3].isoformat(),
        "--to", day[3].isoformat() + "T23:59:59Z", "--reprocess", "all")
    wait_for("a new run for the reprocessed tick",
             lambda: len([r for r in schedule_runs(sc, "daily") if r["state"] == "succeeded"]) == 3,
             timeout=60)

    # Removing the skip date makes its tick backfillable.
    out = cli(sc, "schedule", "skip", "daily", day[4].isoformat(), "--remove").stdout
    assert "no dates" in out, out
    out = cli(sc, "schedule", "backfill", "daily", "--from", day[4].isoformat(),
              "--to", day[4].isoformat() + "T12:00:00Z").stdout
    assert "1 ticks" in out, out

    # Bad ranges name the flag.
    res = cli(sc, "schedule", "backfill", "daily", "--from", "last week", "--to",
              day[1].isoformat(), check=False)
    assert res.returncode == 1 and "--from" in res.stderr, res
    res = cli(sc, "schedule", "backfill", "daily", "--from", day[1].isoformat(), "--to",
              day[3].isoformat(), check=False)
    assert res.returncode == 1 and "--to" in res.stderr, res


def test_schedule_specs_are_validated_and_replaced(sc, tmp_path):
    create_pipeline(sc, "p", tmp_path / "log")

    def put(doc, status_want=422):
        status, body = api(sc, "PUT", f"/schedules/{doc['name']}", doc)
        assert status == status_want, (doc, status, body)
        return body

    base = {"name": "s", "pipeline": "p", "cron": "0 2 * * *"}
    err = put(dict(base, cron="61 * * * *"))["error"]
    assert err["field"] == "cron" and "61" in err["message"], err
    err = put(dict(base, cron="0 2 * *"))["error"]
    assert err["field"] == "cron", err
    err = put(dict(base, timezone="Mars/Base"))["error"]
    assert err["field"] == "timezone" and "Mars/Base" in err["message"], err
    err = put(dict(base, cron=None, interval="10s"))["error"]
    assert err["field"] == "start", err
    err = put(dict(base, overlap="Sometimes"))["error"]
    assert err["field"] == "overlap", err
    err = put(dict(base, skip_dates=["2026-02-30"]))["error"]
    assert err["field"] == "skip_dates[0]", err
    status, body = api(sc, "PUT", "/schedules/other", base)
    assert status in (400, 422) and body["error"]["field"] == "name", body
    assert api(sc, "GET", "/schedules/s")[0] == 404  # nothing was written

    # create: 201, again 409; apply (PUT) replaces: 200.
    path = write(tmp_path, base)
    cli(sc, "schedule", "create", "-f", path)
    res = cli(sc, "schedule", "create", "-f", path, check=False)
    assert res.returncode == 1 and "s" in res.stderr, res
    base["catchup"] = True
    out = cli(sc, "schedule", "apply", "-f", write(tmp_path, base), "-o", "json").stdout
    assert json.loads(out)["spec"]["catchup"] is True
    status, body = api(sc, "PUT", "/schedules/s", base)
    assert status == 200 and body["name"] == "s", body
    status, body = api(sc, "POST", "/schedules/s/skip", {"dates": ["not-a-date"]})
    assert status in (400, 422), body
    status, body = api(sc, "POST", "/schedules/s/backfills", {"from": "2026-01-01"})
    assert status == 400 and body["error"]["field"] == "to", body
