// A small synchronous HTTP/1.1 client for the CLI and tests: keeps one
// keep-alive connection per Client and reconnects when the server closed it.
// Not thread-safe: use one Client per thread.
//
// Each call writes the request in one buffer and waits at most timeout_ms
// for the connect, the write and the response (DEADLINE_EXCEEDED after
// that; UNAVAILABLE for other transport errors). When a reused keep-alive
// connection fails before any byte of the answer arrives (the server closed
// it while idle), the request is sent once more on a new connection: note
// that this can repeat a non-idempotent request the server never answered.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "http/message.h"

namespace lathe::http {

struct ClientResponse {
  int status = 0;
  Headers headers;  // names lower-cased
  std::string body;
  std::string_view Header(std::string_view name) const;
};

class Client {
 public:
  // `base_url`: "http://host:port" (an optional path prefix is kept).
  // UNAVAILABLE errors when it cannot connect; INVALID_ARGUMENT for a bad URL.
  static StatusOr<std::unique_ptr<Client>> Make(std::string_view base_url, int timeout_ms = 30'000);
  ~Client();

  // Sends `method path` (path may include a query) with `headers` and
  // `body`, returns the response whatever its status. Content-Type is
  // application/json when a body is given and no Content-Type header is.
  // Host, Content-Length and Connection in `headers` are ignored (the client
  // sets them); `path` is appended to the base URL's prefix.
  StatusOr<ClientResponse> Do(Method method, std::string_view path, const Headers& headers = {},
                              std::string_view body = {});

  // Sends a GET and reads a text/event-stream response, calling
  // on_event(event, data) per event until it returns false or the server
  // closes the stream. Non-2xx answers return an error with their body.
  // `event` is "message" for frames without an "event:" line; multi-line
  // data is joined with '\n'; comments (heartbeats) are skipped. The
  // timeout applies to each read, so a live stream needs heartbeats more
  // often than timeout_ms. OK when the server ended the stream or on_event
  // returned false. The connection is closed afterwards (the next call
  // reconnects).
  Status Stream(std::string_view path, const Headers& headers,
                const std::function<bool(std::string_view event, std::string_view data)>& on_event);

 private:
  class Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lathe::http
