"""HTTP transport to a Lathe server: JSON over http.client, one keep-alive
connection per thread, retries with backoff, API errors as LatheError.

Retries: connection failures, 429 and 5xx answers (except 501) are retried
with exponential backoff (0.1 s doubling to 5 s, with jitter; `Retry-After`
is honoured) until `retry_timeout` seconds have passed since the first try.
A kept-alive connection the server has closed is reopened at once without
counting as a failure. Every write the SDK sends is safe to replay (the
server stores a replayed metric batch once; params are immutable, tags and
run updates idempotent) except creating a run, which a lost answer can
duplicate.
"""
import http.client
import json
import math
import os
import random
import ssl
import threading
import time
import urllib.parse
from typing import Any, Dict, Optional, Tuple

from lathe._version import __version__
from lathe.errors import LatheError

RETRYABLE_STATUSES = frozenset([429, 500, 502, 503, 504])
_INITIAL_BACKOFF = 0.1
_MAX_BACKOFF = 5.0


def encode_value(value: float) -> Any:
    """A metric value for the wire: NaN and infinities as strings."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


_SPECIAL = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def decode_value(value: Any) -> Any:
    """A metric value from the wire: the strings back to floats."""
    if isinstance(value, str):
        return _SPECIAL.get(value, value)
    return value


def env_float(name: str, default: float) -> float:
    text = os.environ.get(name, "")
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        raise LatheError("INVALID_ARGUMENT",
                         "{}={!r} is not a number of seconds".format(name, text), field=name)


class Transport:
    """Sends JSON requests to one server. Thread-safe: each thread keeps its
    own keep-alive connection (http.client connections are not shareable).
    """

    def __init__(self, server: str, token: Optional[str], timeout: float = 30.0,
                 retry_timeout: float = 60.0):
        parsed = urllib.parse.urlsplit(server)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise LatheError("INVALID_ARGUMENT",
                             "server {!r} is not an http:// or https:// URL".format(server),
                             field="server")
        self.server = server
        self._https = parsed.scheme == "https"
        self._host = parsed.hostname
        self._port = parsed.port or (443 if self._https else 80)
        self._base = parsed.path.rstrip("/")
        self._headers = {"Accept": "application/json",
                         "User-Agent": "lathe-python/" + __version__}
        if token:
            self._headers["Authorization"] = "Bearer " + token
        self.timeout = timeout
        self.retry_timeout = retry_timeout
        self._local = threading.local()
        self._pid = os.getpid()

    # ---- connections

    def _connection(self) -> Tuple[http.client.HTTPConnection, bool]:
        """This thread's connection and whether it was used before."""
        if os.getpid() != self._pid:  # forked: the parent's sockets are not ours
            self._local = threading.local()
            self._pid = os.getpid()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn, True
        if self._https:
            conn = http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout,
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        self._local.conn = conn
        return conn, False

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Closes the calling thread's connection."""
        self._drop_connection()

    def _send_once(self, method: str, path: str, data: Optional[bytes]):
        """(status, headers, body bytes); raises OSError/HTTPException."""
        headers = dict(self._headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        while True:
            conn, reused = self._connection()
            try:
                # http.client sends headers and a bytes body in one write,
                # so Nagle's algorithm does not delay small requests.
                conn.request(method, self._base + path, body=data, headers=headers)
                res = conn.getresponse()
                body = res.read()
            except (OSError, http.client.HTTPException):
                self._drop_connection()
                if reused:
                    # The server may have closed an idle kept-alive connection:
                    # one immediate retry on a fresh one.
                    continue
                raise
            if res.will_close:
                self._drop_connection()
            return res.status, res.headers, body

    # ---- requests

    def request(self, method: str, path: str, body: Any = None,
                query: Optional[Dict[str, Any]] = None, retry: bool = True) -> Any:
        """Sends `body` (JSON-encoded; None = no body) to `path` under the
        server URL; returns the decoded JSON answer ({} for an empty one).
        Raises LatheError for an error answer, or once retries are spent.
        """
        if query:
            pairs = [(k, v) for k, v in query.items() if v is not None]
            if pairs:
                path += "?" + urllib.parse.urlencode(pairs)
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")
        deadline = time.monotonic() + self.retry_timeout
        backoff = _INITIAL_BACKOFF
        while True:
            wait = None
            try:
                status, headers, raw = self._send_once(method, path, data)
            except (OSError, http.client.HTTPException) as e:
                err = LatheError("UNAVAILABLE",
                                 "cannot reach {}: {}".format(self.server, e or type(e).__name__))
                retryable = True
            else:
                if 200 <= status < 300:
                    return _decode(raw, status) if raw else {}
                err = _error_from(status, raw)
                retryable = status in RETRYABLE_STATUSES
                wait = _retry_after(headers.get("Retry-After"))
            if wait is None:
                wait = backoff * (0.5 + random.random() / 2)
                backoff = min(backoff * 2, _MAX_BACKOFF)
            if not retry or not retryable or time.monotonic() + wait > deadline:
                raise err
            time.sleep(wait)


def _retry_after(value: Optional[str]) -> Optional[float]:
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), 60.0)
    except ValueError:
        return None  # an HTTP date: use our own backoff


def _decode(raw: bytes, status: int) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except ValueError as e:
        raise LatheError("INTERNAL", "the server sent a body that is not JSON: {}".format(e),
                         http_status=status)


def _error_from(status: int, raw: bytes) -> LatheError:
    """The common error body ({"error": {code, message, field, request_id}})
    as a LatheError; a body of another shape keeps its text as the message."""
    text = raw.decode("utf-8", "replace")
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    err = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(err, dict):
        return LatheError(str(err.get("code") or "UNKNOWN"), str(err.get("message") or ""),
                          field=err.get("field"), http_status=status,
                          request_id=err.get("request_id"))
    code = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
            404: "NOT_FOUND", 409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED",
            501: "UNIMPLEMENTED", 503: "UNAVAILABLE"}.get(status, "INTERNAL")
    return LatheError(code, text.strip()[:500] or "HTTP {}".format(status), http_status=status)
