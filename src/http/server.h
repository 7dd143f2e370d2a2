// The HTTP/1.1 server (Boost.Beast underneath, hidden in server.cc).
//
// * N I/O threads, each with its own acceptor on the same port
//   (SO_REUSEPORT), TCP_NODELAY on every socket, keep-alive.
// * Each response is serialized into one buffer and sent with one write.
// * Limits: header and body size (413 with a JSON error when the body is too
//   big), read timeout for a request in progress, idle timeout between
//   keep-alive requests.
// * Handlers run on the I/O thread that read the request; they may block
//   briefly (a store transaction) but must not wait on other requests.
// * Shutdown(): stop accepting, let in-flight requests finish (up to the
//   grace period), close idle connections, then return.
#pragma once

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
};

class Server {
 public:
  // `handler` serves every request (the API layer puts a router and its
  // middleware behind it). It must be thread-safe.
  Server(ServerOptions options, std::function<void(Request&, Response&)> handler);
  ~Server();  // calls Shutdown() if still running

  // Binds and starts the I/O threads; returns once listening.
  Status Start();
  // The bound port (useful with port 0). Valid after Start().
  int port() const;
  // Stops accepting, waits for in-flight requests (up to the grace period),
  // closes all connections and joins the threads. Idempotent, thread-safe.
  void Shutdown();
  // Blocks until Shutdown() has completed.
  void Wait();
  // Open connections and requests being handled right now.
  int64_t open_connections() const;
  int64_t inflight_requests() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lathe::http
