// Internal to src/http: the wire format pieces shared by server.cc,
// client.cc and the tests, kept free of Boost so they are cheap to compile
// and easy to unit-test. Not part of the public http interface.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "http/message.h"

namespace lathe::http {

// The whole HTTP/1.1 response (status line, Content-Type, Content-Length,
// Connection, the extra headers, blank line, body) as ONE string, so the
// server sends it with one write (Nagle + delayed ACK cost 40+ ms per
// response otherwise). `head`: headers only, with the body's Content-Length.
// 1xx/204/304 carry neither body nor Content-Length. Extra headers named
// Content-Length, Content-Type, Connection or Transfer-Encoding are dropped:
// the server owns them.
std::string SerializeResponse(const Response& res, bool keep_alive, bool head);
// Same, appended to `out` (lets a session reuse its buffer's capacity).
void AppendResponse(const Response& res, bool keep_alive, bool head, std::string* out);
// Only the status line and headers (through the blank line) of `res`, with
// Content-Length `content_length` instead of res.body's size: the head of a
// response whose body the caller appends itself (Response::body_file).
void AppendResponseHead(const Response& res, uint64_t content_length, bool keep_alive,
                        std::string* out);

// 1xx, 204 and 304 answers carry no body (and no Content-Length).
bool StatusHasNoBody(int status);

// The head of a text/event-stream response: 200, Content-Type
// text/event-stream, Cache-Control no-cache, Connection close, no
// Content-Length (the body ends when the connection closes), plus the extra
// headers of `res`.
std::string SerializeSseHead(const Response& res);

// {"error":{"code":"...","message":"...","field":"..."}} ("field" only when
// non-empty): the error body the server writes itself (400, 413, 500).
std::string ErrorJson(std::string_view code, std::string_view message, std::string_view field = {});

// Incremental text/event-stream parser (client side). Feed() any slice of
// the body; `on_event(event, data)` runs per complete event ("message" when
// the event has no "event:" field; multi-line data joined with '\n').
// Comments (":...") and "id:"/"retry:" lines are skipped. Feed returns false
// as soon as on_event does (the caller should stop reading).
class SseParser {
 public:
  using Callback = std::function<bool(std::string_view event, std::string_view data)>;
  bool Feed(std::string_view bytes, const Callback& on_event);

 private:
  bool Line(std::string_view line, const Callback& on_event);
  std::string partial_;  // an unterminated line
  std::string event_;
  std::string data_;
  bool has_data_ = false;
};

}  // namespace lathe::http
