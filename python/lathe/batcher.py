"""Metric points sent in batches from one background thread.

    log_metric ──add()──▶ queue (≤ max_queued points) ──sender thread──▶ send(run_id, points)
                                                         one batch at a time:
                                                         ≤ batch_size points of one run

The sender sends when `batch_size` points are queued, when the oldest
queued point has waited `interval` seconds, or when flush() asks. add()
never waits on the network unless the queue is full; then it blocks until
the sender has made room (bounded memory; no point is dropped for lack of
space). A batch that `send` fails to deliver (after its own retries) is
dropped and its error kept: flush() raises it.

Fork-safe: a child process starts with an empty queue and its own thread
(the parent still sends what it had queued).
"""
import collections
import os
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from lathe.errors import LatheError

Point = Dict[str, Any]


class MetricBatcher:
    """Thread-safe. `send(run_id, points)` is called on the sender thread
    only, in the order points were added; it raises to report a lost batch.
    """

    def __init__(self, send: Callable[[str, List[Point]], None], batch_size: int = 1000,
                 interval: float = 1.0, max_queued: int = 100000,
                 on_error: Optional[Callable[[Exception, int], None]] = None):
        if batch_size < 1 or max_queued < batch_size:
            raise ValueError("need 1 <= batch_size <= max_queued")
        self._send = send
        self.batch_size = batch_size
        self.interval = interval
        self.max_queued = max_queued
        self._on_error = on_error
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._cond = threading.Condition()
        # Guarded by _cond:
        self._queue = collections.deque()  # type: collections.deque
        self._added = 0          # points ever added
        self._done = 0           # points sent or dropped (a prefix of those added)
        self._flush_to = 0       # send eagerly until _done reaches this
        self._oldest = 0.0       # monotonic time the oldest queued point was added
        self._errors = []        # type: List[Tuple[Exception, int]]
        self._thread = None      # type: Optional[threading.Thread]

    def _check_fork(self) -> None:
        if os.getpid() != self._pid:
            self._reset()

    def _ensure_thread(self) -> None:
        # Called with _cond held.
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="lathe-metrics", daemon=True)
            self._thread.start()

    def add(self, run_id: str, points: List[Point]) -> None:
        """Queues points for `run_id`; blocks only while the queue is full."""
        if not points:
            return
        self._check_fork()
        with self._cond:
            self._ensure_thread()
            while self._queue and len(self._queue) + len(points) > self.max_queued:
                self._flush_to = max(self._flush_to, self._added)
                self._cond.notify_all()
                self._cond.wait()
            if not self._queue:
                self._oldest = time.monotonic()
            self._queue.extend((run_id, p) for p in points)
            self._added += len(points)
            if len(self._queue) >= self.batch_size:
                self._cond.notify_all()

    def pending(self) -> int:
        """Points added but not yet sent or dropped."""
        self._check_fork()
        with self._cond:
            return self._added - self._done

    def wait(self, timeout: Optional[float] = None) -> None:
        """Waits until every point added before the call is sent or dropped;
        LatheError DEADLINE_EXCEEDED when `timeout` seconds pass first.
        Delivery errors are kept for flush()."""
        self._check_fork()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._added
            if self._done < target:
                self._flush_to = max(self._flush_to, target)
                self._ensure_thread()
                self._cond.notify_all()
            while self._done < target:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise LatheError("DEADLINE_EXCEEDED",
                                     "{} metric points not sent after {:g} s".format(
                                         target - self._done, timeout))
                self._cond.wait(left)

    def flush(self, timeout: Optional[float] = None) -> None:
        """wait(timeout), then raises the first delivery error since the last
        flush as a LatheError (how many points were lost is in its message).
        Errors are reported once."""
        self.wait(timeout)
        with self._cond:
            errors, self._errors = self._errors, []
        if errors:
            first = errors[0][0]
            lost = sum(n for _, n in errors)
            if isinstance(first, LatheError):
                raise LatheError(first.code,
                                 "{} metric points were not stored: {}".format(lost, first.message),
                                 field=first.field, http_status=first.http_status,
                                 request_id=first.request_id)
            raise LatheError("INTERNAL", "{} metric points were not stored: {!r}".format(lost, first))

    # ---- the sender thread

    def _ready(self, now: float) -> bool:
        return (len(self._queue) >= self.batch_size or self._flush_to > self._done
                or now - self._oldest >= self.interval)

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._pid != os.getpid():
                        return
                    now = time.monotonic()
                    if self._queue and self._ready(now):
                        break
                    self._cond.wait(self._oldest + self.interval - now if self._queue else None)
                run_id = self._queue[0][0]
                batch = []
                while self._queue and len(batch) < self.batch_size and self._queue[0][0] == run_id:
                    batch.append(self._queue.popleft()[1])
                # What is left keeps its age: it was added no later than now.
                self._cond.notify_all()  # room for blocked add()s
            error = None
            try:
                self._send(run_id, batch)
            except Exception as e:  # a lost batch is reported by flush(), never swallowed
                error = e
            with self._cond:
                self._done += len(batch)
                if error is not None:
                    self._errors.append((error, len(batch)))
                self._cond.notify_all()
            if error is not None and self._on_error is not None:
                self._on_error(error, len(batch))
