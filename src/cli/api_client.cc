#include "cli/api_client.h"

#include <cstdlib>
#include <optional>

#include <fmt/core.h>

namespace lathe::cli {

namespace {

StatusCode CodeFromName(std::string_view name) {
  for (int c = 0; c <= static_cast<int>(StatusCode::kUnauthenticated); ++c) {
    if (StatusCodeName(static_cast<StatusCode>(c)) == name) return static_cast<StatusCode>(c);
  }
  return StatusCode::kUnknown;
}

// The Status an API error body {"error":{code,message,field}} carries, or
// nullopt when `body` is not one.
std::optional<Status> StatusFromErrorBody(std::string_view body) {
  auto json = ParseJson(body);
  if (!json.ok()) return std::nullopt;
  const JsonValue* err = json->Find("error");
  if (err == nullptr || !err->is_object()) return std::nullopt;
  const JsonValue* code = err->Find("code");
  const JsonValue* message = err->Find("message");
  const JsonValue* field = err->Find("field");
  return Status(code && code->is_string() ? CodeFromName(code->as_string()) : StatusCode::kUnknown,
                message && message->is_string() ? message->as_string() : std::string(body),
                field && field->is_string() ? field->as_string() : "");
}

}  // namespace

StatusOr<std::unique_ptr<ApiClient>> ApiClient::Make(const std::string& server,
                                                     const std::string& token) {
  if (server.empty()) {
    return FailedPreconditionError(
        "no server configured: run `lathe login --server URL --token-file FILE` or set "
        "LATHE_SERVER");
  }
  auto client = http::Client::Make(server);
  if (!client.ok()) {
    if (client.status().code() == StatusCode::kUnavailable) {
      return client.status().WithPrefix(fmt::format("cannot reach {}", server));
    }
    return client.status();
  }
  return std::unique_ptr<ApiClient>(new ApiClient(std::move(*client), server, token));
}

StatusOr<http::ClientResponse> ApiClient::Send(http::Method method, std::string_view path,
                                                std::string_view body,
                                                std::string_view content_type) {
  http::Headers headers;
  if (!token_.empty()) headers.emplace_back("Authorization", "Bearer " + token_);
  if (!body.empty()) headers.emplace_back("Content-Type", std::string(content_type));
  auto res = client_->Do(method, path, headers, body);
  if (!res.ok()) {
    return res.status().WithPrefix(fmt::format("cannot reach {}", server_));
  }
  if (res->status < 400) return res;
  if (res->body.empty()) return UnknownError(fmt::format("server answered HTTP {}", res->status));
  if (auto st = StatusFromErrorBody(res->body)) return *st;
  return UnknownError(fmt::format("server answered HTTP {}: {}", res->status, res->body));
}

StatusOr<JsonValue> ApiClient::Call(http::Method method, std::string_view path,
                                    std::string_view body, std::string_view content_type) {
  ASSIGN_OR_RETURN(http::ClientResponse res, Send(method, path, body, content_type));
  if (res.status == 204 || res.body.empty()) return JsonValue::MakeObject({});
  auto json = ParseJson(res.body);
  if (!json.ok()) return json.status().WithPrefix("server sent an unreadable answer");
  return json;
}

StatusOr<std::string> ApiClient::GetText(std::string_view path, int64_t* next_offset) {
  ASSIGN_OR_RETURN(http::ClientResponse res, Send(http::Method::kGet, path, {}, {}));
  if (next_offset != nullptr) {
    std::string_view h = res.Header("x-lathe-next-offset");
    *next_offset = h.empty() ? -1 : std::strtoll(std::string(h).c_str(), nullptr, 10);
  }
  return std::move(res.body);
}

Status ApiClient::Stream(
    std::string_view path,
    const std::function<bool(std::string_view event, std::string_view data)>& on_event) {
  http::Headers headers;
  if (!token_.empty()) headers.emplace_back("Authorization", "Bearer " + token_);
  Status st = client_->Stream(path, headers, on_event);
  // An error answer comes back as "HTTP 404: <body>".
  if (size_t colon = st.message().find(": {"); !st.ok() && st.message().rfind("HTTP ", 0) == 0 &&
                                               colon != std::string::npos) {
    if (auto api_error = StatusFromErrorBody(std::string_view(st.message()).substr(colon + 2))) {
      return *api_error;
    }
  }
  if (st.code() == StatusCode::kUnavailable || st.code() == StatusCode::kDeadlineExceeded) {
    return st.WithPrefix(fmt::format("stream from {} broke", server_));
  }
  return st;
}

StatusOr<std::vector<JsonValue>> ApiClient::List(std::string_view path, int64_t limit,
                                                 const std::string& page_token, std::string* next) {
  std::vector<JsonValue> items;
  std::string token = page_token;
  const char sep = path.find('?') == std::string_view::npos ? '?' : '&';
  while (true) {
    std::string url = fmt::format("{}{}limit={}", path, sep, limit > 0 ? limit : 1000);
    if (!token.empty()) url += "&page_token=" + http::PercentEncode(token);
    ASSIGN_OR_RETURN(JsonValue page, Call(http::Method::kGet, url));
    const JsonValue* page_items = page.Find("items");
    if (page_items == nullptr || !page_items->is_array()) {
      return UnknownError("server sent a list without \"items\"");
    }
    for (const JsonValue& item : page_items->items()) items.push_back(item);
    const JsonValue* next_token = page.Find("next_page_token");
    token = next_token && next_token->is_string() ? next_token->as_string() : "";
    if (limit > 0) {
      if (next != nullptr) *next = token;
      break;
    }
    if (token.empty()) break;
  }
  return items;
}

}  // namespace lathe::cli
