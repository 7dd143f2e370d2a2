"""The module-level tracking API (`lathe.start_run`, `lathe.log_metric`, …).

One process logs to at most one active run at a time. Params and tags are
sent at once (their errors raise where they are logged); metric points go
through a MetricBatcher and its background thread (batcher.py). The server
contract is docs/tracking.md "Native API".
"""
import atexit
import math
import os
import re
import sys
import threading
import time
import urllib.parse
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from lathe.batcher import MetricBatcher
from lathe.client import Transport, decode_value, encode_value, env_float
from lathe.errors import LatheError

BATCH_SIZE = 1000        # metric points per request (the server's log-batch limit)
FLUSH_INTERVAL = 1.0     # seconds a point may wait in the queue
MAX_QUEUED = 100000      # points held in memory before log_metric blocks
_PARAMS_PER_REQUEST = 100
_SEARCH_PAGE = 1000
_HISTORY_PAGE = 25000  # the server's largest history page
_MAX_KEY = 250
# MLflow's rule for metric, param and tag keys.
_KEY_RE = re.compile(r"^[\w./: -]+$")
_TERMINAL = ("FINISHED", "FAILED", "KILLED")


class Run:
    """A run this process logs to: returned by start_run(), a context manager.

    `info` is the run as the server returned it when the run was started or
    attached. Leaving a `with` block ends the run: FINISHED, or FAILED when
    an exception escaped (KILLED for KeyboardInterrupt).
    """

    def __init__(self, info: Dict[str, Any], owned: bool):
        self.info = info
        # False for a job's run attached through LATHE_RUN_ID: its status
        # belongs to the job, so end_run() only flushes.
        self.owned = owned

    @property
    def run_id(self) -> str:
        return self.info["run_id"]

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            end_run("FINISHED")
            return False
        status = "KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED"
        try:
            end_run(status)
        except LatheError as e:  # the body's exception is the one to see
            sys.stderr.write("lathe: could not end run {} as {}: {}\n".format(self.run_id, status, e))
        return False

    def __repr__(self) -> str:
        return "<lathe.Run {} ({})>".format(self.run_id, self.info.get("run_name"))


class _State:
    """Process-wide SDK state; `lock` guards every field."""

    def __init__(self):
        self.lock = threading.RLock()
        self.server = None      # type: Optional[str]
        self.token = None       # type: Optional[str]
        self.project = None     # type: Optional[str]
        self.experiment = None  # type: Optional[str]
        self.transport = None   # type: Optional[Transport]
        self.batcher = None     # type: Optional[MetricBatcher]
        self.active = None      # type: Optional[Run]


_state = _State()


# ---- configuration

def configure(server: Optional[str] = None, token: Optional[str] = None,
              project: Optional[str] = None) -> None:
    """Overrides LATHE_SERVER, LATHE_TOKEN and LATHE_PROJECT for this process
    (arguments left None keep their current source). Pending points are
    sent to the old server first.
    """
    flush()
    with _state.lock:
        if server is not None:
            _state.server = server
        if token is not None:
            _state.token = token
        if project is not None:
            _state.project = project
        _state.transport = None
        _state.batcher = None


def _login_file() -> Dict[str, str]:
    """server and token from the file `lathe login` writes (same lookup as the CLI)."""
    path = os.environ.get("LATHE_CLI_CONFIG")
    if not path:
        base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(
            os.environ.get("HOME") or ".", ".config")
        path = os.path.join(base, "lathe", "config.yaml")
    found = {}  # type: Dict[str, str]
    try:
        with open(path) as f:
            for line in f:
                key, sep, value = line.partition(":")
                value = value.strip()
                if sep and key.strip() in ("server", "token") and value:
                    if value[0] in "\"'" and value[-1] == value[0]:
                        value = value[1:-1]
                    found[key.strip()] = value
    except OSError:
        pass
    return found


def _transport() -> Transport:
    with _state.lock:
        if _state.transport is None:
            server = _state.server or os.environ.get("LATHE_SERVER")
            token = _state.token or os.environ.get("LATHE_TOKEN")
            if not server or not token:
                saved = _login_file()
                if not server:
                    server = saved.get("server")
                if not token and saved.get("server") == server:
                    token = saved.get("token")
            if not server:
                raise LatheError("INVALID_ARGUMENT",
                                 "no Lathe server: set LATHE_SERVER (or call "
                                 "lathe.configure(server=...), or run `lathe login`)",
                                 field="LATHE_SERVER")
            _state.transport = Transport(server, token,
                                         timeout=env_float("LATHE_HTTP_TIMEOUT", 30.0),
                                         retry_timeout=env_float("LATHE_RETRY_TIMEOUT", 60.0))
        return _state.transport


def _project_path() -> str:
    project = _state.project or os.environ.get("LATHE_PROJECT")
    if not project:
        raise LatheError("INVALID_ARGUMENT",
                         "no project: set LATHE_PROJECT (or call lathe.configure(project=...))",
                         field="LATHE_PROJECT")
    return "/api/v1/projects/" + _seg(project)


def _seg(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def _call(method: str, path: str, body: Any = None, query: Optional[Dict[str, Any]] = None) -> Any:
    return _transport().request(method, _project_path() + path, body=body, query=query)


def _batcher() -> MetricBatcher:
    with _state.lock:
        if _state.batcher is None:
            transport, prefix = _transport(), _project_path()

            def send(run_id: str, points: List[Dict[str, Any]]) -> None:
                transport.request("POST", prefix + "/runs/" + _seg(run_id) + "/log",
                                  body={"metrics": points})

            def report(error: Exception, count: int) -> None:
                sys.stderr.write("lathe: {} metric points were not stored: {}\n".format(count, error))

            _state.batcher = MetricBatcher(send, batch_size=BATCH_SIZE, interval=FLUSH_INTERVAL,
                                           max_queued=MAX_QUEUED, on_error=report)
        return _state.batcher


# ---- experiments and runs

def set_experiment(name: str) -> Dict[str, Any]:
    """Makes `name` the experiment of runs started from now on (creating it
    if it does not exist); returns the experiment."""
    if not isinstance(name, str) or not name:
        raise LatheError("INVALID_ARGUMENT", "experiment name must be a non-empty string",
                         field="name")
    try:
        experiment = _call("GET", "/experiments/" + _seg(name))
    except LatheError as e:
        if e.code != "NOT_FOUND":
            raise
        try:
            experiment = _call("POST", "/experiments", {"name": name})
        except LatheError as e2:  # created meanwhile by another process
            if e2.code != "ALREADY_EXISTS":
                raise
            experiment = _call("GET", "/experiments/" + _seg(name))
    with _state.lock:
        _state.experiment = name
    return experiment


def start_run(experiment: Optional[str] = None, run_name: Optional[str] = None,
              tags: Optional[Mapping[str, Any]] = None, run_id: Optional[str] = None) -> Run:
    """Starts a run and makes it the active one; returns it (also usable as
    a context manager).

    experiment: an experiment id or name (default: set_experiment's, else
    the project's "Default"; the server creates a missing one). run_id:
    resume an existing run (its status goes back to RUNNING). Inside a Lathe
    job with LATHE_RUN_ID set, and no run_id given, attaches to the job's
    run instead (`experiment` is ignored; `run_name` and `tags` are applied).
    Raises LatheError (FAILED_PRECONDITION) when a run is already active.
    """
    with _state.lock:
        if _state.active is not None:
            raise LatheError("FAILED_PRECONDITION",
                             "run {} is already active; call lathe.end_run() first".format(
                                 _state.active.run_id))
        tag_map = {str(k): str(v) for k, v in (tags or {}).items()}
        job_run = os.environ.get("LATHE_RUN_ID") if run_id is None else None
        if run_id or job_run:
            rid = run_id or job_run
            update = {}  # type: Dict[str, Any]
            if run_name:
                update["run_name"] = run_name
            if run_id:
                update["status"] = "RUNNING"
            info = (_call("PATCH", "/runs/" + _seg(rid), update) if update
                    else _call("GET", "/runs/" + _seg(rid)))
            if tag_map:
                _log_dicts(rid, "tags", tag_map)
            run = Run(_decode_run(info), owned=not job_run)
        else:
            body = {}  # type: Dict[str, Any]
            exp = experiment or _state.experiment
            if exp:
                body["experiment"] = exp
            if run_name:
                body["run_name"] = run_name
            if tag_map:
                body["tags"] = tag_map
            run = Run(_decode_run(_call("POST", "/runs", body)), owned=True)
        _state.active = run
        return run


def active_run() -> Optional[Run]:
    """The active run, or None."""
    with _state.lock:
        return _state.active


def _active_or_start() -> Run:
    # Logging with no active run starts one, as MLflow does (ended at exit).
    with _state.lock:
        return _state.active if _state.active is not None else start_run()


def end_run(status: str = "FINISHED") -> None:
    """Sends the active run's pending points, then ends it with `status`
    (FINISHED, FAILED or KILLED). A job's run attached through LATHE_RUN_ID
    is only flushed: the job owns its status. No-op without an active run.
    Raises LatheError when points were lost (the run is ended anyway).
    """
    _end_run(status, None)


def _end_run(status: str, flush_timeout: Optional[float]) -> None:
    if status not in _TERMINAL:
        raise LatheError("INVALID_ARGUMENT",
                         "status {!r} is not one of {}".format(status, ", ".join(_TERMINAL)),
                         field="status")
    with _state.lock:
        run = _state.active
        if run is None:
            return
        _state.active = None
        batcher = _state.batcher
    lost = None
    if batcher is not None:
        try:
            batcher.flush(flush_timeout)
        except LatheError as e:
            lost = e
    if run.owned:
        _call("PATCH", "/runs/" + _seg(run.run_id), {"status": status, "end_time": _rfc3339(time.time())})
    if lost is not None:
        raise lost


def flush(timeout: Optional[float] = None) -> None:
    """Waits until every metric point logged so far is stored (or `timeout`
    seconds pass: LatheError DEADLINE_EXCEEDED). Raises LatheError for
    points the server refused or that could not be delivered since the last
    flush."""
    with _state.lock:
        batcher = _state.batcher
    if batcher is not None:
        batcher.flush(timeout)


def _wait_for_points() -> None:
    # Reads see this process's own points; delivery errors stay for flush().
    with _state.lock:
        batcher = _state.batcher
    if batcher is not None:
        batcher.wait(_transport().retry_timeout)


# ---- logging

def log_param(key: str, value: Any) -> None:
    """Logs one param on the active run (started if none); sent at once.
    Params are immutable: a different value for a logged key raises."""
    log_params({key: value})


def log_params(params: Mapping[str, Any]) -> None:
    """Logs params (values as str()) on the active run; sent at once."""
    run = _active_or_start()
    _log_dicts(run.run_id, "params", {str(k): _text(v) for k, v in params.items()})


def set_tag(key: str, value: Any) -> None:
    """Sets one tag on the active run (started if none); last write wins."""
    set_tags({key: value})


def set_tags(tags: Mapping[str, Any]) -> None:
    """Sets tags (values as str()) on the active run; sent at once."""
    run = _active_or_start()
    _log_dicts(run.run_id, "tags", {str(k): _text(v) for k, v in tags.items()})


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _log_dicts(run_id: str, kind: str, items: Dict[str, str]) -> None:
    keys = list(items)
    for i in range(0, len(keys), _PARAMS_PER_REQUEST):
        chunk = {k: items[k] for k in keys[i:i + _PARAMS_PER_REQUEST]}
        _call("POST", "/runs/" + _seg(run_id) + "/log", {kind: chunk})


def log_metric(key: str, value: float, step: Optional[int] = None,
               timestamp: Optional[int] = None) -> None:
    """Queues one metric point for the active run (started if none) and
    returns at once; the background thread sends it. `step` defaults to 0,
    `timestamp` (ms since the epoch) to now. Raises LatheError at once for
    an invalid key or value; delivery errors surface from flush()/end_run().
    """
    run = _active_or_start()
    _batcher().add(run.run_id, [_point(key, value, step, _now_ms() if timestamp is None else timestamp)])


def log_metrics(metrics: Mapping[str, float], step: Optional[int] = None,
                timestamp: Optional[int] = None) -> None:
    """Queues one point per key, all with the same step and timestamp."""
    run = _active_or_start()
    ts = _now_ms() if timestamp is None else timestamp
    points = [_point(k, v, step, ts) for k, v in metrics.items()]
    _batcher().add(run.run_id, points)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _point(key: Any, value: Any, step: Any, timestamp: Any) -> Dict[str, Any]:
    if not isinstance(key, str) or not key or len(key) > _MAX_KEY or not _KEY_RE.match(key):
        raise LatheError("INVALID_ARGUMENT",
                         "metric key {!r}: expected 1-{} letters, digits, '_', '-', '.', ' ', ':' "
                         "or '/'".format(key, _MAX_KEY), field="key")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise LatheError("INVALID_ARGUMENT",
                         "metric {!r}: value {!r} is not a number".format(key, value), field="value")
    try:
        s = 0 if step is None else _integer(step)
        ts = _integer(timestamp)
    except (TypeError, ValueError):
        raise LatheError("INVALID_ARGUMENT",
                         "metric {!r}: step and timestamp must be integers".format(key),
                         field="step" if step is not None else "timestamp")
    return {"key": key, "value": encode_value(v), "step": s, "timestamp": ts}


def _integer(x: Any) -> int:
    if isinstance(x, bool):
        raise TypeError("bool")
    if isinstance(x, float) and not x.is_integer():
        raise ValueError("fraction")
    return int(x)


# ---- reading

def get_run(run_id: str) -> Dict[str, Any]:
    """The run as the API returns it (docs/tracking.md), metric values as floats."""
    _wait_for_points()
    return _decode_run(_call("GET", "/runs/" + _seg(run_id)))


def search_runs(filter: Optional[str] = None,
                experiments: Optional[Union[str, Sequence[str]]] = None,
                order_by: Optional[Union[str, Sequence[str]]] = None,
                max_results: int = 1000, output: str = "auto") -> Any:
    """Runs matching `filter` (MLflow's grammar: "metrics.auc > 0.9 and
    params.lr = '0.01'") in `experiments` (ids or names; default: every
    experiment of the project), ordered by `order_by` ("metrics.loss DESC"),
    at most `max_results`.

    output: "list" gives the runs as dicts (the API's run objects); "pandas"
    a DataFrame with one row per run and columns run_id, run_name,
    experiment_id, user, status, start_time, end_time, artifact_uri,
    lifecycle, job_id, then metrics.<key> (latest value), params.<key>,
    tags.<key>; "auto" (the default, as MLflow) is "pandas" when pandas can
    be imported, else "list".
    """
    if output not in ("auto", "list", "pandas"):
        raise LatheError("INVALID_ARGUMENT", "output must be 'auto', 'list' or 'pandas'",
                         field="output")
    if not isinstance(max_results, int) or max_results < 1:
        raise LatheError("INVALID_ARGUMENT", "max_results must be a positive integer",
                         field="max_results")
    if isinstance(experiments, str):
        experiments = [experiments]
    if isinstance(order_by, str):
        order_by = [order_by]
    _wait_for_points()
    runs = []  # type: List[Dict[str, Any]]
    token = ""
    while len(runs) < max_results:
        body = {"limit": min(_SEARCH_PAGE, max_results - len(runs))}  # type: Dict[str, Any]
        if filter:
            body["filter"] = filter
        if experiments:
            body["experiments"] = list(experiments)
        if order_by:
            body["order_by"] = list(order_by)
        if token:
            body["page_token"] = token
        page = _call("POST", "/runs:search", body)
        runs.extend(_decode_run(r) for r in page.get("runs") or [])
        token = page.get("next_page_token") or ""
        if not token:
            break
    runs = runs[:max_results]
    if output == "list":
        return runs
    try:
        import pandas
    except ImportError:
        if output == "pandas":
            raise LatheError("FAILED_PRECONDITION",
                             "output='pandas' needs pandas, which cannot be imported",
                             field="output")
        return runs
    return _runs_frame(pandas, runs)


_FRAME_COLUMNS = ["run_id", "run_name", "experiment_id", "user", "status", "start_time",
                  "end_time", "artifact_uri", "lifecycle", "job_id"]


def _runs_frame(pandas: Any, runs: List[Dict[str, Any]]) -> Any:
    rows = []
    extra = {"metrics": set(), "params": set(), "tags": set()}  # type: Dict[str, set]
    for r in runs:
        row = {c: r.get(c) for c in _FRAME_COLUMNS}
        for k, m in (r.get("metrics") or {}).items():
            row["metrics." + k] = m.get("value") if isinstance(m, dict) else m
            extra["metrics"].add(k)
        for kind in ("params", "tags"):
            for k, v in (r.get(kind) or {}).items():
                row[kind + "." + k] = v
                extra[kind].add(k)
        rows.append(row)
    columns = list(_FRAME_COLUMNS)
    for kind in ("metrics", "params", "tags"):
        columns += [kind + "." + k for k in sorted(extra[kind])]
    frame = pandas.DataFrame(rows, columns=columns)
    for c in ("start_time", "end_time"):
        frame[c] = pandas.to_datetime(frame[c], utc=True)
    return frame


def get_metric_history(run_id: str, key: str,
                       max_points: Optional[int] = None) -> List[Dict[str, Any]]:
    """The points of metric `key` of a run, ordered by step then timestamp,
    as dicts {step, value, timestamp}. With max_points (1-10,000) the server
    downsamples to at most that many, keeping each step bucket's min, max
    and last values; without it every point comes back (paged)."""
    if max_points is not None and (not isinstance(max_points, int) or not 1 <= max_points <= 10000):
        raise LatheError("INVALID_ARGUMENT", "max_points must be an integer from 1 to 10000",
                         field="max_points")
    _wait_for_points()
    path = "/runs/" + _seg(run_id) + "/metrics/" + _seg(key)
    points = []  # type: List[Dict[str, Any]]
    if max_points is not None:
        page = _call("GET", path, query={"max_points": max_points})
        points.extend(page.get("points") or [])
    else:
        token = ""
        while True:
            page = _call("GET", path, query={"limit": _HISTORY_PAGE, "page_token": token or None})
            points.extend(page.get("points") or [])
            token = page.get("next_page_token") or ""
            if not token:
                break
    for p in points:
        p["value"] = decode_value(p.get("value"))
    return points


def _decode_run(run: Dict[str, Any]) -> Dict[str, Any]:
    for m in (run.get("metrics") or {}).values():
        if isinstance(m, dict) and "value" in m:
            m["value"] = decode_value(m["value"])
    return run


def _rfc3339(t: float) -> str:
    ms = int(round(t * 1000))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".{:03d}Z".format(ms % 1000)


# ---- at exit

def _at_exit() -> None:
    """Ends the active run (FAILED/KILLED when the script died of an uncaught
    exception) and sends what is queued, waiting at most LATHE_RETRY_TIMEOUT
    (+5 s)."""
    with _state.lock:
        run, batcher, transport = _state.active, _state.batcher, _state.transport
    if run is None and batcher is None:
        return
    timeout = (transport.retry_timeout if transport is not None else 60.0) + 5.0
    status = "FINISHED"
    died = getattr(sys, "last_type", None)
    if died is not None:
        status = "KILLED" if issubclass(died, KeyboardInterrupt) else "FAILED"
    try:
        if run is not None:
            _end_run(status, timeout)
        elif batcher is not None:
            batcher.flush(timeout)
    except LatheError as e:
        sys.stderr.write("lathe: at exit: {}\n".format(e))


atexit.register(_at_exit)


def _after_fork_in_child() -> None:
    # The child may log to the parent's run but must not end it at its exit;
    # the parent's lock may have been held by another thread at the fork.
    _state.lock = threading.RLock()
    if _state.active is not None:
        _state.active = Run(_state.active.info, owned=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
