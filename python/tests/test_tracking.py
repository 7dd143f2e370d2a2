"""The SDK against an in-memory fake of the native tracking routes."""
import math
import threading
import time

import pytest

import lathe
from lathe import tracking
from lathe.batcher import MetricBatcher


def test_points_arrive_in_order_in_batches_of_at_most_1000(fake):
    with lathe.start_run(experiment="exp", run_name="r1", tags={"team": "ads"}) as run:
        lathe.log_params({"lr": 0.01, "layers": 3})
        lathe.set_tag("stage", "dev")
        for i in range(5000):
            lathe.log_metric("loss", 1.0 / (i + 1), step=i)
        lathe.log_metrics({"acc": 0.5, "f1": 0.25}, step=7)
    pts = fake.points(run.run_id, "loss")
    assert [p["step"] for p in pts] == list(range(5000))
    assert pts[10]["value"] == 1.0 / 11
    sizes = [len(b.get("metrics") or []) for b in fake.log_bodies if b.get("metrics")]
    assert max(sizes) <= 1000 and sum(sizes) == 5002
    assert len(sizes) <= 8, sizes  # batched, not one request per point
    r = fake.runs[run.run_id]
    assert r["status"] == "FINISHED" and r["end_time"].endswith("Z")
    assert r["params"] == {"lr": "0.01", "layers": "3"}
    assert r["tags"] == {"team": "ads", "stage": "dev"}
    assert fake.experiments["exp"]["id"] == r["experiment_id"]
    # The run was ended only after its last point was stored.
    last_log = max(i for i, q in enumerate(fake.requests) if q[1].endswith("/log"))
    patch = [i for i, q in enumerate(fake.requests) if q[0] == "PATCH"][-1]
    assert last_log < patch
    assert lathe.active_run() is None


def test_log_metric_returns_at_once_and_points_go_within_a_second(fake):
    fake.delay = 0.2
    run = lathe.start_run()
    started = time.monotonic()
    for i in range(3):
        lathe.log_metric("x", i, step=i)
    assert time.monotonic() - started < 0.1
    deadline = time.monotonic() + 3
    while len(fake.points(run.run_id, "x")) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(fake.points(run.run_id, "x")) == 3
    assert time.monotonic() - started < 2.0
    lathe.end_run()


def test_nan_and_infinity_travel_as_strings_and_come_back_as_floats(fake):
    run = lathe.start_run()
    lathe.log_metric("m", float("nan"), step=0)
    lathe.log_metric("m", float("inf"), step=1)
    lathe.log_metric("m", float("-inf"), step=2)
    lathe.log_metric("m", 2, step=3)
    lathe.flush()
    assert [p["value"] for p in fake.points(run.run_id, "m")] == ["NaN", "Infinity", "-Infinity", 2.0]
    hist = lathe.get_metric_history(run.run_id, "m")
    assert math.isnan(hist[0]["value"]) and hist[1]["value"] == math.inf
    assert hist[2]["value"] == -math.inf and hist[3]["value"] == 2.0
    got = lathe.get_run(run.run_id)
    assert got["metrics"]["m"]["value"] == 2.0
    lathe.end_run()


def test_transient_failures_are_retried_and_points_stored_once(fake):
    run = lathe.start_run()
    fake.fail = [(503, {}, {"error": {"code": "UNAVAILABLE", "message": "draining"}}),
                 (429, {"Retry-After": "0"}, {"error": {"code": "RESOURCE_EXHAUSTED", "message": "slow down"}}),
                 "drop",
                 (502, {}, None)]
    for i in range(10):
        lathe.log_metric("x", i, step=i)
    lathe.flush()
    assert [p["step"] for p in fake.points(run.run_id, "x")] == list(range(10))
    lathe.end_run()
    assert fake.runs[run.run_id]["status"] == "FINISHED"


def test_a_refused_batch_surfaces_as_lathe_error_from_flush(fake, capsys):
    run = lathe.start_run()
    lathe.log_metric("reject-me", 1.0)
    with pytest.raises(lathe.LatheError) as e:
        lathe.flush()
    assert e.value.code == "INVALID_ARGUMENT" and e.value.http_status == 400
    assert e.value.field == "metrics[0].key" and "1 metric points were not stored" in str(e.value)
    assert "not stored" in capsys.readouterr().err
    lathe.flush()  # reported once
    lathe.log_metric("ok", 1.0)
    lathe.end_run()
    assert len(fake.points(run.run_id, "ok")) == 1


def test_bad_input_raises_at_once(fake):
    lathe.start_run()
    with pytest.raises(lathe.LatheError) as e:
        lathe.log_metric("bad key!", 1.0)
    assert e.value.field == "key"
    with pytest.raises(lathe.LatheError) as e:
        lathe.log_metric("x", "high")
    assert e.value.field == "value"
    with pytest.raises(lathe.LatheError) as e:
        lathe.log_metric("x", 1.0, step=1.5)
    assert e.value.field == "step"
    lathe.log_param("lr", 0.1)
    with pytest.raises(lathe.LatheError) as e:
        lathe.log_param("lr", 0.2)
    assert e.value.code == "INVALID_ARGUMENT" and e.value.field == "params.lr"
    with pytest.raises(lathe.LatheError) as e:
        lathe.start_run()
    assert e.value.code == "FAILED_PRECONDITION"
    with pytest.raises(lathe.LatheError):
        lathe.end_run("DONE")
    lathe.end_run()
    with pytest.raises(lathe.LatheError) as e:
        lathe.get_run("nope")
    assert e.value.code == "NOT_FOUND" and e.value.http_status == 404 and e.value.request_id == "rid-1"


def test_missing_configuration_and_unreachable_server_are_clear(fake, monkeypatch):
    monkeypatch.delenv("LATHE_PROJECT")
    with pytest.raises(lathe.LatheError) as e:
        lathe.start_run()
    assert e.value.field == "LATHE_PROJECT"
    monkeypatch.setenv("LATHE_PROJECT", "ml")
    monkeypatch.setenv("LATHE_TOKEN", "wrong")
    monkeypatch.setattr(tracking, "_state", tracking._State())
    with pytest.raises(lathe.LatheError) as e:
        lathe.start_run()
    assert e.value.code == "UNAUTHENTICATED" and e.value.http_status == 401
    monkeypatch.setenv("LATHE_SERVER", "http://127.0.0.1:1")
    monkeypatch.setenv("LATHE_RETRY_TIMEOUT", "0.5")
    monkeypatch.setattr(tracking, "_state", tracking._State())
    started = time.monotonic()
    with pytest.raises(lathe.LatheError) as e:
        lathe.start_run()
    assert e.value.code == "UNAVAILABLE" and e.value.http_status is None
    assert "127.0.0.1:1" in e.value.message and time.monotonic() - started < 3


def test_exception_in_with_block_ends_the_run_failed(fake):
    with pytest.raises(ZeroDivisionError):
        with lathe.start_run() as run:
            lathe.log_metric("x", 1)
            1 / 0
    assert fake.runs[run.run_id]["status"] == "FAILED"
    assert len(fake.points(run.run_id, "x")) == 1


def test_logging_without_a_run_starts_one(fake):
    lathe.set_experiment("auto")
    lathe.log_metric("x", 1)
    run = lathe.active_run()
    assert run is not None
    assert fake.runs[run.run_id]["experiment_id"] == fake.experiments["auto"]["id"]
    lathe.end_run()


def test_attach_to_a_jobs_run_through_lathe_run_id(fake, monkeypatch):
    job_run = lathe.start_run(run_name="job-run")
    lathe.end_run()
    fake.runs[job_run.run_id]["status"] = "RUNNING"  # as the controller leaves it
    monkeypatch.setenv("LATHE_RUN_ID", job_run.run_id)
    before = len([q for q in fake.requests if q[1].endswith("/runs") and q[0] == "POST"])
    with lathe.start_run(experiment="ignored", tags={"phase": "train"}) as run:
        assert run.run_id == job_run.run_id and not run.owned
        lathe.log_metric("x", 3)
    after = len([q for q in fake.requests if q[1].endswith("/runs") and q[0] == "POST"])
    assert before == after  # no run created
    assert fake.runs[job_run.run_id]["status"] == "RUNNING"  # the job owns its status
    assert fake.runs[job_run.run_id]["tags"]["phase"] == "train"
    assert len(fake.points(job_run.run_id, "x")) == 1
    # An explicit run_id resumes a run and owns it.
    with lathe.start_run(run_id=job_run.run_id) as run:
        assert run.owned
    assert fake.runs[job_run.run_id]["status"] == "FINISHED"


def test_search_runs_pages_and_filters(fake):
    ids = []
    for i in range(5):
        with lathe.start_run(run_name="r{}".format(i)) as run:
            lathe.log_param("lr", "0.1" if i % 2 else "0.2")
            lathe.log_metric("acc", i / 10)
            ids.append(run.run_id)
    tracking._SEARCH_PAGE, saved = 2, tracking._SEARCH_PAGE
    try:
        runs = lathe.search_runs(output="list")
        assert [r["run_id"] for r in runs] == ids
        assert len(lathe.search_runs(max_results=3, output="list")) == 3
        sel = lathe.search_runs(filter="params.lr = '0.1'", output="list")
        assert [r["run_name"] for r in sel] == ["r1", "r3"]
        assert sel[1]["metrics"]["acc"]["value"] == 0.3
    finally:
        tracking._SEARCH_PAGE = saved


def test_search_runs_as_a_dataframe(fake):
    pandas = pytest.importorskip("pandas")
    with lathe.start_run(run_name="one"):
        lathe.log_param("lr", "0.1")
        lathe.log_metric("acc", 0.5)
    df = lathe.search_runs()
    assert isinstance(df, pandas.DataFrame)
    assert df.loc[0, "params.lr"] == "0.1" and df.loc[0, "metrics.acc"] == 0.5
    assert str(df["start_time"].dtype).startswith("datetime64")


def test_search_runs_output_without_pandas(fake, monkeypatch):
    import builtins
    real = builtins.__import__

    def no_pandas(name, *a, **kw):
        if name == "pandas":
            raise ImportError("no pandas")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    with lathe.start_run():
        pass
    assert isinstance(lathe.search_runs(), list)  # "auto" falls back to dicts
    with pytest.raises(lathe.LatheError) as e:
        lathe.search_runs(output="pandas")
    assert e.value.field == "output"


def test_history_pages_and_downsamples(fake):
    run = lathe.start_run()
    for i in range(2500):
        lathe.log_metric("x", i, step=i)
    assert len(lathe.get_metric_history(run.run_id, "x")) == 2500  # flushed first, then 3 pages
    assert len(lathe.get_metric_history(run.run_id, "x", max_points=10)) == 10
    with pytest.raises(lathe.LatheError):
        lathe.get_metric_history(run.run_id, "x", max_points=0)
    lathe.end_run()


def test_one_keep_alive_connection_per_thread(fake):
    lathe.start_run()
    for i in range(20):
        lathe.set_tag("t", i)
    lathe.end_run()
    # main thread + the sender thread (which sent nothing) -> 1 connection
    assert fake.connections == 1
    fake.close_after_each = True
    lathe.start_run()
    lathe.set_tag("t", 1)
    lathe.end_run()
    assert fake.connections == 3  # the old one closed after start_run, then one per request


def test_memory_is_bounded_when_the_server_is_slow(fake):
    sent = []
    gate = threading.Event()

    def send(run_id, points):
        gate.wait(5)
        sent.extend(points)

    b = MetricBatcher(send, batch_size=10, interval=0.05, max_queued=50)
    done = threading.Event()

    def produce():
        for i in range(200):
            b.add("r", [{"i": i}])
        done.set()

    t = threading.Thread(target=produce)
    t.start()
    time.sleep(0.3)
    assert not done.is_set()  # blocked: 50 queued + 10 in flight
    assert b.pending() <= 60
    gate.set()
    t.join(5)
    b.flush(5)
    assert [p["i"] for p in sent] == list(range(200))


def test_batcher_flushes_on_size_and_interval():
    batches = []
    b = MetricBatcher(lambda run_id, pts: batches.append((run_id, len(pts))),
                      batch_size=100, interval=0.3, max_queued=1000)
    b.add("a", [{}] * 250)
    time.sleep(0.1)
    assert batches[:2] == [("a", 100), ("a", 100)]  # full batches go at once
    time.sleep(0.4)
    assert batches == [("a", 100), ("a", 100), ("a", 50)]  # the rest after the interval
    b.add("a", [{}] * 3)
    b.add("b", [{}] * 2)
    b.flush(2)
    assert batches[3:] == [("a", 3), ("b", 2)]  # a batch holds one run's points
    with pytest.raises(lathe.LatheError) as e:
        slow = MetricBatcher(lambda r, p: time.sleep(1), batch_size=1, max_queued=10)
        slow.add("a", [{}])
        slow.flush(0.1)
    assert e.value.code == "DEADLINE_EXCEEDED"
