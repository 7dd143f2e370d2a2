"""HTTP transport to a Lathe server: JSON over http.client, one keep-alive
connection per thread, retries with backoff, API errors as LatheError.

Retries: connection failures, 429 and 5xx answers (except 501) are retried
with exponential backoff (0.1 s doubling to 5 s, with jitter; `Retry-After`
is honoured) until `retry_timeout` seconds have passed since the first try.
A kept-alive connection the server has closed is reopened at once without
counting as a failure. Every write the SDK sends is safe to replay (the
server stores a replayed metric batch once; params are immutable, tags and
run updates idempotent; an artifact PUT replaces the file with the same
bytes) except creating a run or a model version, which a lost answer can
duplicate.

Files travel streamed: upload() sends a file object with its
Content-Length (http.client reads and sends it in blocks) and download()
writes the answer to a file as it arrives, so neither holds a whole file in
memory.
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
from typing import Any, BinaryIO, Callable, Dict, Optional, Tuple

from lathe._version import __version__
from lathe.errors import LatheError

RETRYABLE_STATUSES = frozenset([429, 500, 502, 503, 504])
_INITIAL_BACKOFF = 0.1
_MAX_BACKOFF = 5.0
_BLOCK = 1 << 16  # bytes per read and write of a streamed file


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

    def _send_file_once(self, method: str, path: str, f: BinaryIO, size: int):
        """(status, headers, body bytes) of one upload of the open file `f`
        (`size` bytes), sent from its start on every attempt."""
        headers = dict(self._headers)
        headers["Content-Type"] = "application/octet-stream"
        headers["Content-Length"] = str(size)
        while True:
            conn, reused = self._connection()
            f.seek(0)
            conn.blocksize = _BLOCK
            try:
                conn.request(method, self._base + path, body=f, headers=headers)
            except (OSError, http.client.HTTPException):
                # The server may have answered (413, 401) and closed before
                # taking the whole body: that answer says more than a broken
                # pipe.
                answer = self._early_answer(conn)
                if answer is not None:
                    return answer
                self._drop_connection()
                if reused:
                    continue
                raise
            try:
                res = conn.getresponse()
                body = res.read()
            except (OSError, http.client.HTTPException):
                self._drop_connection()
                if reused:
                    continue
                raise
            if res.will_close:
                self._drop_connection()
            return res.status, res.headers, body

    def _early_answer(self, conn: http.client.HTTPConnection):
        if conn.sock is None:  # never connected
            return None
        try:
            res = conn.getresponse()
            body = res.read()
        except (OSError, http.client.HTTPException):
            return None
        self._drop_connection()
        return res.status, res.headers, body

    def _download_once(self, path: str, dst: BinaryIO):
        """(status, headers, body bytes of an error answer). A 2xx answer's
        body goes to `dst` (truncated first) in blocks."""
        while True:
            conn, reused = self._connection()
            try:
                conn.request("GET", self._base + path, headers=dict(self._headers))
                res = conn.getresponse()
                if not 200 <= res.status < 300:
                    body = res.read()
                else:
                    dst.seek(0)
                    dst.truncate()
                    while True:
                        block = res.read(_BLOCK)
                        if not block:
                            break
                        try:
                            dst.write(block)
                        except OSError as e:  # the local disk, not the network: no retry
                            raise _LocalFileError(e)
                    body = b""
            except (OSError, http.client.HTTPException):
                self._drop_connection()
                if reused and dst.tell() == 0:
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
        path = _with_query(path, query)
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")
        status, raw = self._retrying(lambda: self._send_once(method, path, data), retry)
        return _decode(raw, status) if raw else {}

    def upload(self, method: str, path: str, file_path: str,
               query: Optional[Dict[str, Any]] = None) -> Any:
        """Sends the file at `file_path` as the raw body of `method path`
        (streamed, with its Content-Length) and returns the decoded JSON
        answer. Retried as request() is, sending the file again from its
        start: only for idempotent writes (a PUT of a path). A file that
        cannot be opened raises OSError at once.
        """
        path = _with_query(path, query)
        with open(file_path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            status, raw = self._retrying(lambda: self._send_file_once(method, path, f, size), True)
        return _decode(raw, status) if raw else {}

    def download(self, path: str, dst: BinaryIO, query: Optional[Dict[str, Any]] = None) -> None:
        """GETs `path` and writes the answer's body to `dst` (a binary file
        open for writing and seekable: a retry starts it over). Raises
        LatheError for an error answer, or once retries are spent; OSError
        when `dst` cannot be written."""
        path = _with_query(path, query)
        try:
            self._retrying(lambda: self._download_once(path, dst), True)
        except _LocalFileError as e:
            raise e.error from None

    def _retrying(self, once: Callable[[], Tuple[int, Any, bytes]], retry: bool) -> Tuple[int, bytes]:
        """Calls once() until it gives a 2xx answer; returns (status, body).
        Connection failures, 429 and 5xx (but 501) are retried with backoff
        until retry_timeout; other answers raise at once."""
        deadline = time.monotonic() + self.retry_timeout
        backoff = _INITIAL_BACKOFF
        while True:
            wait = None
            try:
                status, headers, raw = once()
            except (OSError, http.client.HTTPException) as e:
                err = LatheError("UNAVAILABLE",
                                 "cannot reach {}: {}".format(self.server, e or type(e).__name__))
                retryable = True
            else:
                if 200 <= status < 300:
                    return status, raw
                err = _error_from(status, raw)
                retryable = status in RETRYABLE_STATUSES
                wait = _retry_after(headers.get("Retry-After"))
            if wait is None:
                wait = backoff * (0.5 + random.random() / 2)
                backoff = min(backoff * 2, _MAX_BACKOFF)
            if not retry or not retryable or time.monotonic() + wait > deadline:
                raise err
            time.sleep(wait)


class _LocalFileError(Exception):
    """A local file failed mid-transfer; carries the OSError so that retry
    logic does not take it for a network failure."""

    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


def _with_query(path: str, query: Optional[Dict[str, Any]]) -> str:
    if query:
        pairs = [(k, v) for k, v in query.items() if v is not None]
        if pairs:
            path += "?" + urllib.parse.urlencode(pairs)
    return path


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
