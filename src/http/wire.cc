#include "http/wire.h"

#include <fmt/core.h>

#include "base/json.h"
#include "base/strings.h"

namespace lathe::http {
namespace {

bool OwnedByServer(std::string_view name) {
  return EqualsIgnoreCaseAscii(name, "content-length") || EqualsIgnoreCaseAscii(name, "content-type") ||
         EqualsIgnoreCaseAscii(name, "connection") || EqualsIgnoreCaseAscii(name, "transfer-encoding");
}

void AppendStatusLine(int status, std::string* out) {
  out->append("HTTP/1.1 ");
  fmt::format_to(std::back_inserter(*out), "{}", status);
  out->push_back(' ');
  out->append(StatusReason(status));
  out->append("\r\n");
}

void AppendHeader(std::string_view name, std::string_view value, std::string* out) {
  out->append(name);
  out->append(": ");
  // A CR or LF in a value would split the response (header injection).
  for (char c : value) out->push_back(c == '\r' || c == '\n' ? ' ' : c);
  out->append("\r\n");
}

}  // namespace

bool StatusHasNoBody(int status) {
  return (status >= 100 && status < 200) || status == 204 || status == 304;
}

void AppendResponseHead(const Response& res, uint64_t content_length, bool keep_alive,
                        std::string* out) {
  const int status = res.status;
  const bool no_body = StatusHasNoBody(status);
  AppendStatusLine(status, out);
  if (!res.content_type.empty() && !no_body) AppendHeader("Content-Type", res.content_type, out);
  if (!no_body) {
    out->append("Content-Length: ");
    fmt::format_to(std::back_inserter(*out), "{}", content_length);
    out->append("\r\n");
  }
  out->append(keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
  for (const auto& [name, value] : res.headers) {
    if (!OwnedByServer(name)) AppendHeader(name, value, out);
  }
  out->append("\r\n");
}

void AppendResponse(const Response& res, bool keep_alive, bool head, std::string* out) {
  out->reserve(out->size() + 160 + res.body.size());
  AppendResponseHead(res, res.body.size(), keep_alive, out);
  if (!head && !StatusHasNoBody(res.status)) out->append(res.body);
}

std::string SerializeResponse(const Response& res, bool keep_alive, bool head) {
  std::string out;
  AppendResponse(res, keep_alive, head, &out);
  return out;
}

std::string SerializeSseHead(const Response& res) {
  std::string out =
      "HTTP/1.1 200 OK\r\n"
      "Content-Type: text/event-stream\r\n"
      "Cache-Control: no-cache\r\n"
      "Connection: close\r\n";
  for (const auto& [name, value] : res.headers) {
    if (!OwnedByServer(name) && !EqualsIgnoreCaseAscii(name, "cache-control")) AppendHeader(name, value, &out);
  }
  out.append("\r\n");
  return out;
}

std::string ErrorJson(std::string_view code, std::string_view message, std::string_view field) {
  std::string out = "{\"error\":{\"code\":";
  AppendJsonString(&out, code);
  out.append(",\"message\":");
  AppendJsonString(&out, message);
  if (!field.empty()) {
    out.append(",\"field\":");
    AppendJsonString(&out, field);
  }
  out.append("}}");
  return out;
}

bool SseParser::Feed(std::string_view bytes, const Callback& on_event) {
  while (!bytes.empty()) {
    size_t nl = bytes.find('\n');
    if (nl == std::string_view::npos) {
      partial_.append(bytes);
      return true;
    }
    std::string_view piece = bytes.substr(0, nl);
    bytes.remove_prefix(nl + 1);
    bool go_on;
    if (partial_.empty()) {
      go_on = Line(piece, on_event);
    } else {
      partial_.append(piece);
      std::string line = std::move(partial_);
      partial_.clear();
      go_on = Line(line, on_event);
    }
    if (!go_on) return false;
  }
  return true;
}

bool SseParser::Line(std::string_view line, const Callback& on_event) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty()) {
    if (!has_data_ && event_.empty()) return true;
    bool go_on = on_event(event_.empty() ? std::string_view("message") : std::string_view(event_), data_);
    event_.clear();
    data_.clear();
    has_data_ = false;
    return go_on;
  }
  if (line.front() == ':') return true;  // a comment (heartbeat)
  size_t colon = line.find(':');
  std::string_view field = line.substr(0, colon);
  std::string_view value = colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (field == "event") {
    event_.assign(value);
  } else if (field == "data") {
    if (has_data_) data_.push_back('\n');
    data_.append(value);
    has_data_ = true;
  }
  return true;
}

}  // namespace lathe::http
