// The HTTP/1.1 server (Boost.Beast underneath, hidden in server.cc).
//
// * N I/O threads, each with its own acceptor on the same port
//   (SO_REUSEPORT), TCP_NODELAY on every socket, keep-alive.
// * Each response is serialized into one buffer and sent with one write
//   (a file response: one write for the headers and its first chunk).
// * Request bodies go to a string, or, where spool_body says so, are
//   streamed to a file; responses can stream a file (Response::body_file).
// * Limits: header and body size (413 with a JSON error when the body is too
//   big), read timeout for a request in progress, idle timeout between
//   keep-alive requests.
// * Handlers run on the I/O thread that read the request; they may block
//   briefly (a store transaction) but must not wait on other requests. A
//   handler whose answer comes later (a dynamic batcher) returns a promise
//   instead, Response::deferred (http/deferred.h), and the I/O thread goes
//   on with other connections.
// * Shutdown(): stop accepting, let in-flight requests finish (up to the
//   grace period), close idle connections, then return.
//
// Wire behaviour (see README.md):
// * The handler gets method, target, decoded path, raw query, lower-cased
//   headers, body (or body_file, see spool_body) and "ip:port" of the peer.
//   Content-Type, Content-Length and Connection are written by the server
//   (http/wire.h: SerializeResponse).
// * Errors the server answers itself, each with a JSON body
//   {"error":{"code":..,"message":..,"field":..}} and Connection: close:
//   400 malformed request (or a bad %-escape in the path), 413 body over
//   max_body_bytes (or over the spool_body limit), 431 headers over
//   max_header_bytes, 500 when a handler or spool_body throws (it should
//   not; the exception is logged) or a spool file cannot be created or
//   written, 507 when its file system is full.
// * Timeouts close the connection without an answer: idle_timeout_ms while
//   waiting for the first byte of a request, read_timeout_ms from that byte
//   until the request is complete, read_timeout_ms again for writing a
//   response (a client that does not read).
// * Spooled bodies (spool_body > 0) instead get read_timeout_ms per chunk
//   of progress: the timeout restarts whenever bytes arrive, so a
//   multi-gigabyte upload that keeps moving is never cut off, while one that
//   stalls for read_timeout_ms is closed and its partial file removed. A
//   file response (Response::body_file) likewise gets read_timeout_ms per
//   chunk written.
// * Bodies are checked against their limit as soon as the header is read:
//   a Content-Length over it is answered 413 without reading the body; a
//   chunked body is answered 413 when it crosses the limit.
// * "Expect: 100-continue" is answered with 100 Continue before the body,
//   unless the request is refused first (413 for its Content-Length).
// * Response::body_file: the headers (Content-Length = the file's size when
//   opened) and the file's first 256 KiB go out in one write, the rest in
//   256 KiB writes as the socket drains; the file is read on the I/O thread.
//   HEAD gets the headers only. A file that cannot be opened, or is not a
//   regular file, is answered 404 {"error":{"code":"NOT_FOUND",..}} (the
//   connection stays open). A file that shrinks while being sent closes the
//   connection short of its Content-Length.
// * SSE (Response::sse set): "HTTP/1.1 200 OK", text/event-stream,
//   Cache-Control: no-cache, Connection: close and no Content-Length; then
//   frames as the stream produces them, a ": heartbeat" comment every
//   sse_heartbeat_ms; the connection closes when the stream is closed and
//   drained. When the client goes away the stream is abandoned, so the
//   producer's Send() returns false. A stream does not count in
//   inflight_requests() once its headers are written.
// * Deferred (Response::deferred set): nothing is written until some thread
//   calls Deferred::Complete(response); that response is then written on the
//   connection's I/O thread exactly like a handler's (one buffer,
//   keep-alive, HEAD, body_file, sse). No timeout applies meanwhile: the
//   producer owns the deadline. The connection reads no further request
//   until the answer is written (pipelined answers stay in order; up to
//   64 KiB of them is buffered), but keeps a read pending so that a client
//   that closes (EOF or reset) is noticed: the Deferred is cancelled() and
//   Complete() returns false. The request counts in inflight_requests()
//   until its answer is written. A Deferred completed before the handler
//   returns costs what a synchronous answer does; one completed later costs
//   a post to the I/O thread. A Deferred destroyed uncompleted is answered
//   500; one completed with a response that is itself deferred, 500.
// * The server installs no signal handlers.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/status.h"
#include "http/message.h"

namespace lathe::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0 picks a free port; see Server::port()
  int threads = 2;
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 8 * 1024 * 1024;
  int read_timeout_ms = 30'000;  // to receive one whole request
  int idle_timeout_ms = 60'000;  // between keep-alive requests
  int shutdown_grace_ms = 10'000;
  int sse_heartbeat_ms = 15'000;
  // Streaming request bodies. Called once a request's header is read (with
  // method, target, path, query and headers set; no body): 0 means "read the
  // body into Request::body" under max_body_bytes; N > 0 means "stream the
  // body to a temporary file in spool_dir" (Request::body_file), up to N
  // bytes: a larger body is answered 413 before or while it arrives and the
  // partial file is removed. Must be thread-safe and cheap (it runs on the I/O
  // thread). spool_dir must exist; files are created there with mode 0600.
  // The body is read through a 64 KiB buffer and written to the file as it
  // arrives (Content-Length or chunked), so memory stays bounded whatever
  // its size; read_timeout_ms applies per chunk of progress (see above).
  // The file is removed on any error, timeout or disconnect, and after the
  // handler returns unless the handler renamed it.
  std::function<uint64_t(const Request& head)> spool_body;
  std::string spool_dir;
};

class Server {
 public:
  // `handler` serves every request (the API layer puts a router and its
  // middleware behind it). It must be thread-safe.
  Server(ServerOptions options, std::function<void(Request&, Response&)> handler);
  ~Server();  // calls Shutdown() if still running

  // Binds and starts the I/O threads; returns once listening. UNAVAILABLE
  // when the address cannot be bound, INVALID_ARGUMENT for a bad host/port,
  // FAILED_PRECONDITION when called twice.
  Status Start();
  // The bound port (useful with port 0). Valid after Start().
  int port() const;
  // Stops accepting, waits for in-flight requests (up to the grace period),
  // closes all connections and joins the threads. Idempotent, thread-safe;
  // a concurrent second call waits for the first. In order: acceptors close
  // (new connections are refused), idle keep-alive connections close, a
  // request being read or handled finishes and is answered with
  // Connection: close, SSE streams are Close()d and drain, a pending
  // Deferred may still be completed (answered with Connection: close);
  // after at most shutdown_grace_ms whatever is left is closed (a Deferred
  // still pending is cancelled: its Complete() returns false). Must not be
  // called from a handler (it joins the I/O threads).
  void Shutdown();
  // Blocks until Shutdown() has completed (returns at once if it has, or if
  // Shutdown() ran without a successful Start()).
  void Wait();
  // Open connections, and requests being handled right now (a deferred
  // response counts until it is written).
  int64_t open_connections() const;
  int64_t inflight_requests() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lathe::http
