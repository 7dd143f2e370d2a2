// The CLI's view of a Lathe server: JSON in, JSON out, API errors turned
// back into Status (code, message and field from the error body).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/json.h"
#include "base/status.h"
#include "http/client.h"

namespace lathe::cli {

class ApiClient {
 public:
  // UNAVAILABLE when the server cannot be reached (on first use).
  static StatusOr<std::unique_ptr<ApiClient>> Make(const std::string& server,
                                                   const std::string& token);

  // Sends a request with an optional body (JSON unless `content_type`
  // says otherwise); returns the parsed JSON answer (an empty object for 204).
  StatusOr<JsonValue> Call(http::Method method, std::string_view path,
                           std::string_view body = {},
                           std::string_view content_type = "application/json");

  // GETs a text answer (job logs) as it came. `next_offset`, when not null,
  // receives the X-Lathe-Next-Offset header (-1 when absent).
  StatusOr<std::string> GetText(std::string_view path, int64_t* next_offset = nullptr);

  // GETs a server-sent-event stream, calling on_event(event, data) until it
  // returns false or the server ends the stream (http::Client::Stream).
  Status Stream(std::string_view path,
                const std::function<bool(std::string_view event, std::string_view data)>& on_event);

  // GETs every page of a list endpoint ({"items":[…],"next_page_token"})
  // and returns all items. With limit > 0, fetches one page of that size
  // starting at page_token and stores the next token in *next.
  StatusOr<std::vector<JsonValue>> List(std::string_view path, int64_t limit,
                                        const std::string& page_token, std::string* next);

  const std::string& server() const { return server_; }

 private:
  // The answer whatever it is, or the error an error answer carries.
  StatusOr<http::ClientResponse> Send(http::Method method, std::string_view path,
                                      std::string_view body, std::string_view content_type);

  ApiClient(std::unique_ptr<http::Client> client, std::string server, std::string token)
      : client_(std::move(client)), server_(std::move(server)), token_(std::move(token)) {}
  std::unique_ptr<http::Client> client_;
  std::string server_;
  std::string token_;
};

}  // namespace lathe::cli
