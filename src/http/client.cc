// The synchronous HTTP/1.1 client. Each call drives Beast's asynchronous
// operations on a private io_context until they finish, because only the
// asynchronous operations of beast::tcp_stream honour its timeouts.
#include "http/client.h"

#include <chrono>
#include <limits>
#include <optional>

#include <fmt/core.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include "base/strings.h"
#include "http/wire.h"

namespace lathe::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;

constexpr std::uint64_t kMaxResponseBody = std::uint64_t{1} << 40;
constexpr std::uint32_t kMaxResponseHeader = 1 << 20;

bool HasHeader(const Headers& headers, std::string_view lower_name) {
  for (const auto& [name, value] : headers) {
    if (AsciiLower(name) == lower_name) return true;
  }
  return false;
}

// The connection died under a request that had not started to get an answer:
// on a reused keep-alive connection that means the server had closed it.
bool IsStaleConnection(const ErrorCode& ec) {
  return ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::connection_aborted;
}

Status StatusForHttp(int status, std::string_view body) {
  std::string message = fmt::format("HTTP {}: {}", status, body);
  switch (status) {
    case 400: return InvalidArgumentError(std::move(message));
    case 401: return UnauthenticatedError(std::move(message));
    case 403: return PermissionDeniedError(std::move(message));
    case 404: return NotFoundError(std::move(message));
    case 409: return FailedPreconditionError(std::move(message));
    case 429: return ResourceExhaustedError(std::move(message));
    case 501: return UnimplementedError(std::move(message));
    case 503: return UnavailableError(std::move(message));
    case 504: return DeadlineExceededError(std::move(message));
    default: break;
  }
  if (status >= 500) return InternalError(std::move(message));
  return UnknownError(std::move(message));
}

}  // namespace

class Client::Impl {
 public:
  Impl(std::string host, std::string port, std::string prefix, int timeout_ms)
      : host_(std::move(host)),
        port_(std::move(port)),
        prefix_(std::move(prefix)),
        timeout_(std::chrono::milliseconds(timeout_ms)) {
    host_header_ = host_.find(':') != std::string::npos ? "[" + host_ + "]" : host_;
    if (port_ != "80") host_header_ += ":" + port_;
  }

  Status Connect();
  StatusOr<ClientResponse> Do(Method method, std::string_view path, const Headers& headers,
                              std::string_view body);
  Status Stream(std::string_view path, const Headers& headers,
                const std::function<bool(std::string_view, std::string_view)>& on_event);

 private:
  // Starts one asynchronous operation via `start(handler)` and runs the
  // io_context until it completes; returns its error.
  template <typename StartFn>
  ErrorCode Run(StartFn&& start) {
    ErrorCode result;
    start([&result](const ErrorCode& ec, auto&&...) { result = ec; });
    io_.restart();
    io_.run();
    return result;
  }

  void Disconnect() {
    stream_.close();
    buffer_.clear();
    connected_ = false;
  }

  std::string BuildRequest(Method method, std::string_view path, const Headers& headers,
                           std::string_view body) const;
  // Writes `wire`, then reads the response (its head only unless
  // `whole_message`) with `parser`, which is (re)created here with its
  // limits set and the body skipped for HEAD. Reconnects and retries once
  // when a reused connection turns out to be closed.
  template <typename Parser>
  Status Exchange(const std::string& wire, std::string_view what, bool head, bool whole_message,
                  std::optional<Parser>* parser);
  Status TransportError(const ErrorCode& ec, std::string_view what) const {
    if (ec == beast::error::timeout) {
      return DeadlineExceededError(
          fmt::format("{}: no answer from {} within {} ms", what, host_header_, timeout_.count()));
    }
    return UnavailableError(fmt::format("{}: {}: {}", what, host_header_, ec.message()));
  }

  asio::io_context io_{1};
  beast::tcp_stream stream_{io_};
  beast::flat_buffer buffer_;
  bool connected_ = false;
  std::string host_;
  std::string port_;
  std::string prefix_;
  std::string host_header_;
  std::chrono::milliseconds timeout_;
};

Status Client::Impl::Connect() {
  Disconnect();
  tcp::resolver resolver(io_);
  ErrorCode ec;
  auto results = resolver.resolve(host_, port_, ec);
  if (ec) return UnavailableError(fmt::format("cannot resolve {}: {}", host_, ec.message()));
  stream_.expires_after(timeout_);
  ec = Run([&](auto handler) { stream_.async_connect(results, std::move(handler)); });
  if (ec) {
    stream_.close();
    return TransportError(ec, "connect");
  }
  stream_.socket().set_option(tcp::no_delay(true), ec);
  connected_ = true;
  return OkStatus();
}

std::string Client::Impl::BuildRequest(Method method, std::string_view path, const Headers& headers,
                                       std::string_view body) const {
  std::string wire;
  wire.reserve(256 + body.size());
  wire.append(MethodName(method));
  wire.push_back(' ');
  wire.append(prefix_);
  if (path.empty() || path.front() != '/') wire.push_back('/');
  wire.append(path);
  wire.append(" HTTP/1.1\r\nHost: ");
  wire.append(host_header_);
  wire.append("\r\n");
  for (const auto& [name, value] : headers) {
    std::string lower = AsciiLower(name);
    if (lower == "host" || lower == "content-length" || lower == "connection") continue;
    wire.append(name).append(": ").append(value).append("\r\n");
  }
  if (!HasHeader(headers, "user-agent")) wire.append("User-Agent: lathe\r\n");
  bool sends_body = !body.empty() || method == Method::kPost || method == Method::kPut ||
                    method == Method::kPatch;
  if (!body.empty() && !HasHeader(headers, "content-type")) {
    wire.append("Content-Type: application/json\r\n");
  }
  if (sends_body) wire.append(fmt::format("Content-Length: {}\r\n", body.size()));
  wire.append("\r\n");
  wire.append(body);
  return wire;
}

template <typename Parser>
Status Client::Impl::Exchange(const std::string& wire, std::string_view what, bool head, bool whole_message,
                              std::optional<Parser>* parser) {
  for (int attempt = 0;; ++attempt) {
    parser->emplace();
    (*parser)->header_limit(kMaxResponseHeader);
    (*parser)->body_limit(kMaxResponseBody);
    // A HEAD answer has no body whatever its Content-Length says.
    if (head) (*parser)->skip(true);
    const bool reused = connected_;
    if (!connected_) RETURN_IF_ERROR(Connect());
    stream_.expires_after(timeout_);
    ErrorCode ec = Run([&](auto handler) { asio::async_write(stream_, asio::buffer(wire), std::move(handler)); });
    if (!ec) {
      stream_.expires_after(timeout_);
      if (whole_message) {
        ec = Run([&](auto handler) { bhttp::async_read(stream_, buffer_, **parser, std::move(handler)); });
      } else {
        ec = Run([&](auto handler) { bhttp::async_read_header(stream_, buffer_, **parser, std::move(handler)); });
      }
    }
    if (!ec) return OkStatus();
    const bool nothing_received = !(*parser)->got_some();
    Disconnect();
    // The server closed the idle keep-alive connection: retry once on a new one.
    if (reused && attempt == 0 && nothing_received && IsStaleConnection(ec)) continue;
    return TransportError(ec, what);
  }
}

StatusOr<ClientResponse> Client::Impl::Do(Method method, std::string_view path, const Headers& headers,
                                          std::string_view body) {
  const std::string wire = BuildRequest(method, path, headers, body);
  const std::string what = fmt::format("{} {}", MethodName(method), path);
  std::optional<bhttp::response_parser<bhttp::string_body>> parser;
  RETURN_IF_ERROR(Exchange(wire, what, method == Method::kHead, /*whole_message=*/true, &parser));
  auto& msg = parser->get();
  ClientResponse res;
  res.status = static_cast<int>(msg.result_int());
  for (const auto& field : msg) {
    res.headers.emplace_back(AsciiLower(std::string_view(field.name_string().data(), field.name_string().size())),
                             std::string(field.value().data(), field.value().size()));
  }
  if (method != Method::kHead) res.body = std::move(msg.body());
  if (!msg.keep_alive()) Disconnect();
  return res;
}

Status Client::Impl::Stream(std::string_view path, const Headers& headers,
                            const std::function<bool(std::string_view, std::string_view)>& on_event) {
  Headers all = headers;
  if (!HasHeader(all, "accept")) all.emplace_back("Accept", "text/event-stream");
  const std::string wire = BuildRequest(Method::kGet, path, all, {});
  const std::string what = fmt::format("GET {}", path);
  std::optional<bhttp::response_parser<bhttp::buffer_body>> parser_storage;
  RETURN_IF_ERROR(Exchange(wire, what, /*head=*/false, /*whole_message=*/false, &parser_storage));
  auto& parser = *parser_storage;

  const int status = static_cast<int>(parser.get().result_int());
  const bool ok = status >= 200 && status < 300;
  std::string error_body;
  SseParser sse;
  char chunk[16 * 1024];
  Status result;
  while (!parser.is_done()) {
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof chunk;
    // Each read waits at most the client timeout: a live stream sends at
    // least a heartbeat comment more often than that.
    stream_.expires_after(timeout_);
    ErrorCode ec = Run([&](auto handler) { bhttp::async_read_some(stream_, buffer_, parser, std::move(handler)); });
    if (ec == bhttp::error::need_buffer) ec = {};
    const size_t got = sizeof chunk - parser.get().body().size;
    if (ok) {
      if (!sse.Feed(std::string_view(chunk, got), on_event)) break;  // the caller is done
    } else {
      error_body.append(chunk, got);
    }
    if (ec) {
      if (ec != bhttp::error::end_of_stream) result = TransportError(ec, what);
      break;
    }
  }
  // The stream used the connection up (it is close-delimited, or the caller
  // stopped reading); the next request connects afresh.
  Disconnect();
  if (!ok) return StatusForHttp(status, error_body);
  return result;
}

StatusOr<std::unique_ptr<Client>> Client::Make(std::string_view base_url, int timeout_ms) {
  constexpr std::string_view kScheme = "http://";
  if (base_url.substr(0, kScheme.size()) != kScheme) {
    return InvalidArgumentError(fmt::format("base URL \"{}\" must start with http://", base_url), "url");
  }
  std::string_view rest = base_url.substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string prefix(slash == std::string_view::npos ? std::string_view() : rest.substr(slash));
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  std::string host;
  std::string port = "80";
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return InvalidArgumentError(fmt::format("bad IPv6 host in \"{}\"", base_url), "url");
    }
    host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return InvalidArgumentError(fmt::format("bad URL \"{}\"", base_url), "url");
      port = std::string(after.substr(1));
    }
  } else {
    size_t colon = authority.rfind(':');
    host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = std::string(authority.substr(colon + 1));
  }
  if (host.empty()) return InvalidArgumentError(fmt::format("no host in \"{}\"", base_url), "url");
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) > 65535 || std::stoi(port) == 0) {
    return InvalidArgumentError(fmt::format("bad port in \"{}\"", base_url), "url");
  }
  auto impl = std::make_unique<Impl>(std::move(host), std::move(port), std::move(prefix),
                                     timeout_ms > 0 ? timeout_ms : 30'000);
  RETURN_IF_ERROR(impl->Connect());
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

StatusOr<ClientResponse> Client::Do(Method method, std::string_view path, const Headers& headers,
                                    std::string_view body) {
  return impl_->Do(method, path, headers, body);
}

Status Client::Stream(std::string_view path, const Headers& headers,
                      const std::function<bool(std::string_view event, std::string_view data)>& on_event) {
  return impl_->Stream(path, headers, on_event);
}

std::string_view ClientResponse::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < key.size() && same; ++i) {
      char c = name[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      same = key[i] == c;
    }
    if (same) return value;
  }
  return {};
}

}  // namespace lathe::http
