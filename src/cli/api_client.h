// The CLI's view of a Lathe server: JSON in, JSON out, API errors turned
// back into Status (code, message and field from the error body).
#pragma once

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

  // Sends a request with an optional JSON body; returns the parsed JSON
  // answer (an empty object for 204).
  StatusOr<JsonValue> Call(http::Method method, std::string_view path,
                           std::string_view body = {});

  // GETs every page of a list endpoint ({"items":[…],"next_page_token"})
  // and returns all items. With limit > 0, fetches one page of that size
  // starting at page_token and stores the next token in *next.
  StatusOr<std::vector<JsonValue>> List(std::string_view path, int64_t limit,
                                        const std::string& page_token, std::string* next);

  const std::string& server() const { return server_; }

 private:
  ApiClient(std::unique_ptr<http::Client> client, std::string server, std::string token)
      : client_(std::move(client)), server_(std::move(server)), token_(std::move(token)) {}
  std::unique_ptr<http::Client> client_;
  std::string server_;
  std::string token_;
};

}  // namespace lathe::cli
